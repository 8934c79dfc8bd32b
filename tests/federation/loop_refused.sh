#!/usr/bin/env bash
# Federation, a configured loop is refused and no message circulates. Each relay in a network namespace
# of its own on the default ports.
#  - a pair: alpha --upstream BRAVO, bravo --upstream ALPHA;
#  - a ring of three: charlie --upstream DELTA, delta --upstream ECHO, echo --upstream CHARLIE.
# In each, within a deadline a relay logs a refusal with "loop" naming every relay of the loop (by its
# host name, relay id or address), links_refused counts it, and not every relay has its upstream link up
# (upstream_up: the ring is cut). With a zsub at every relay, once each link that is active has told the
# other side of its subscriber, one message published at the first relay reaches the zsub there once and
# no zsub twice, crosses links at most once per link of a tree (relays - 1), and nothing moves after it
# (a fresh zsub there waiting 3 s sees nothing, the counters stay put). Whether a relay beyond the cut
# gets it is not asked: the contract is only that nothing circulates.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOOP_LIMIT=30

node alpha
node bravo
node charlie
node delta
node echo

# sum_stat COUNTER NODE...: the sum of COUNTER over the nodes' relays.
sum_stat() {
  local c=$1 n s=0
  shift
  for n in "$@"; do s=$((s + $(node_stat "$n" "$c"))); done
  echo "$s"
}

# loop_case NAME NODE... : NODE i links to NODE i+1, the last to the first; the message is published at
# the first. Run by case_ (a failure ends only this case; the other still runs on nodes of its own).
loop_case() {
  local name=$1 i n up
  shift
  local nodes=("$@") count=$#
  for ((i = 0; i < count; i++)); do
    n=${nodes[i]} up=${nodes[(i + 1) % count]}
    start_node "$n" --upstream "${NODE_ADDR[$up]}"
  done
  # The loop line, from any of them (tail -F on every relay's stderr, with a deadline).
  local errs=() line fd tailpid
  for n in "${nodes[@]}"; do errs+=("${NODE_ERR[$n]}"); done
  exec {fd}< <(exec timeout "$LOOP_LIMIT" tail -q -n +1 -F "${errs[@]}" 2>/dev/null)
  tailpid=$!
  # (A link waiting to hear whether its upstream reached the root of the tree mentions a loop too.)
  line=$(grep -a -m1 -E 'refus.*loop' <&"$fd")
  exec {fd}<&-
  kill "$tailpid" 2>/dev/null
  # tail interleaves the files by the write, and zrelay writes a line's prefix apart from its text: take
  # the whole line from its file.
  [[ -n $line ]] && line=$(grep -a -h -m1 -E '^zrelay: .*refus.*loop' "${errs[@]}" | head -n1)
  [[ -n $line ]] || fail "$name: no relay logged a refusal with 'loop' within ${LOOP_LIMIT}s; stderr: $(tail -n 3 "${errs[@]}")"
  note "$name: $line"
  local id
  for n in "${nodes[@]}"; do
    id=$(node_stat "$n" relay)
    [[ $line == *"$n"* || $line == *"$id"* || $line == *"${NODE_ADDR[$n]}"* ]] ||
      fail "$name: the loop line does not name $n (host name $n, relay $id, address ${NODE_ADDR[$n]}): $line"
  done
  [[ $(sum_stat links_refused "${nodes[@]}") -ge 1 ]] || fail "$name: no relay counts links_refused"
  local up
  up=$(sum_stat upstream_up "${nodes[@]}")
  ((up < count)) || fail "$name: all $count relays have their upstream link up: the loop is not cut"

  local d=$TEST_TMP/$name
  mkdir "$d"
  declare -A sub
  for n in "${nodes[@]}"; do
    node_bg "$n" "$d/$n.out" "$d/$n.err" "$ZSUB" -t lp. -H "${NODE_ADDR[$n]}"
    sub[$n]=$BG_PID
    wait_node_subscribed "$n" lp.
  done
  # Every link that is active has told the other side of its subscriber (subs_out), so a message could
  # go round if a loop were left.
  local deadline=$((SECONDS + WAIT_LIMIT)) untold
  while :; do
    untold=
    for n in "${nodes[@]}"; do
      node_stats "$n" | "$FED_PYTHON" -c 'import json, sys
sys.exit(any(l.get("state") == "active" and l.get("subs_out", 0) < 1 for l in json.load(sys.stdin).get("links", [])))' ||
        untold+=" $n"
    done
    [[ -z $untold ]] && break
    ((SECONDS < deadline)) || fail "$name: active links of$untold have not passed on their subscription within ${WAIT_LIMIT}s"
  done
  local before after
  before=$(sum_stat link_msgs_out "${nodes[@]}")
  node_expect "${nodes[0]}" 0 "$ZPUB" -t lp.msg -H "${NODE_ADDR[${nodes[0]}]}" -m the-message
  wait_for_line "$d/${nodes[0]}.out" the-message || fail "$name: the zsub at ${nodes[0]} did not get the message published there"
  # Then quiet: a fresh zsub at the first relay sees nothing on lp. for 3 s (a message that circulated would
  # come by again and again), and the counters stay where they are.
  local mid got reached=
  mid=$(sum_stat link_msgs_out "${nodes[@]}")
  node_expect "${nodes[0]}" 5 "$ZSUB" -t lp. -H "${NODE_ADDR[${nodes[0]}]}" -C 1 -W 3
  for n in "${nodes[@]}"; do
    kill -TERM "${sub[$n]}"
    wait_bg "${sub[$n]}"
    [[ $BG_STATUS == 0 ]] || fail "$name: zsub at $n exited $BG_STATUS on SIGTERM; stderr: $(cat "$d/$n.err")"
    got=$(grep -c -x the-message "$d/$n.out")
    [[ $n != "${nodes[0]}" || $got == 1 ]] || fail "$name: the zsub at $n, where it was published, got the message $got times"
    ((got <= 1)) || fail "$name: the zsub at $n got the message $got times"
    reached+=" $n:$got"
  done
  after=$(sum_stat link_msgs_out "${nodes[@]}")
  ((after - before <= count - 1)) ||
    fail "$name: the message crossed links $((after - before)) times, more than the $((count - 1)) links of a tree"
  ((after == mid)) || fail "$name: link_msgs_out went on from $mid to $after after the message had arrived everywhere"
  for n in "${nodes[@]}"; do
    node_alive "$n"
    stop_node "$n"
  done
  note "$name: refused ('$line'); upstream links up: $up of $count; the message at$reached, crossed links $((after - before)) times"
}
case_ pair loop_case pair alpha bravo
case_ ring loop_case ring charlie delta echo
cases_passed
pass "a pair and a ring of three: refused, nothing circulates"
