#!/usr/bin/env bash
# Federation, a configured loop is refused and no message circulates. Each relay in a network namespace
# of its own on the default ports.
#  - a pair: alpha --upstream BRAVO, bravo --upstream ALPHA;
#  - a ring of three: charlie --upstream DELTA, delta --upstream ECHO, echo --upstream CHARLIE.
# In each, within a deadline a relay logs a refusal with "loop" naming every relay of the loop (by its
# host name, relay id or address), and links_refused counts it. What is left is a tree: once probes get
# through, one message published at the first relay reaches the zsub at every relay exactly once, crosses each
# remaining link once (the links' link_msgs_out grow by the number of relays - 1), and nothing moves
# after it (a zsub waiting 3 s for more sees nothing, the counters stay put).
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
  [[ -n $line ]] || fail "$name: no relay logged a refusal with 'loop' within ${LOOP_LIMIT}s; stderr: $(tail -n 3 "${errs[@]}")"
  note "$name: $line"
  local id
  for n in "${nodes[@]}"; do
    id=$(node_stat "$n" relay)
    [[ $line == *"$n"* || $line == *"$id"* || $line == *"${NODE_ADDR[$n]}"* ]] ||
      fail "$name: the loop line does not name $n (host name $n, relay $id, address ${NODE_ADDR[$n]}): $line"
  done
  [[ $(sum_stat links_refused "${nodes[@]}") -ge 1 ]] || fail "$name: no relay counts links_refused"

  local d=$TEST_TMP/$name
  mkdir "$d"
  declare -A sub
  for n in "${nodes[@]}"; do
    node_bg "$n" "$d/$n.out" "$d/$n.err" "$ZSUB" -t lp. -H "${NODE_ADDR[$n]}"
    sub[$n]=$BG_PID
    wait_node_subscribed "$n" lp.
  done
  for n in "${nodes[@]:1}"; do
    wait_path "${nodes[0]}" lp.probe "$d/$n.out"
  done
  local before after
  before=$(sum_stat link_msgs_out "${nodes[@]}")
  node_expect "${nodes[0]}" 0 "$ZPUB" -t lp.msg -H "${NODE_ADDR[${nodes[0]}]}" -m the-message
  for n in "${nodes[@]}"; do
    wait_for_line "$d/$n.out" the-message || fail "$name: the zsub at $n did not get the message published at ${nodes[0]}"
  done
  # Then quiet: a fresh zsub at the first relay sees nothing on lp. for 3 s (a message that circulated would
  # come by again and again), and the counters stay where they are.
  local mid
  mid=$(sum_stat link_msgs_out "${nodes[@]}")
  node_expect "${nodes[0]}" 5 "$ZSUB" -t lp. -H "${NODE_ADDR[${nodes[0]}]}" -C 1 -W 3
  for n in "${nodes[@]}"; do
    kill -TERM "${sub[$n]}"
    wait_bg "${sub[$n]}"
    [[ $BG_STATUS == 0 ]] || fail "$name: zsub at $n exited $BG_STATUS on SIGTERM; stderr: $(cat "$d/$n.err")"
    [[ $(grep -c -x the-message "$d/$n.out") == 1 ]] ||
      fail "$name: the zsub at $n got the message $(grep -c -x the-message "$d/$n.out") times"
  done
  after=$(sum_stat link_msgs_out "${nodes[@]}")
  ((after - before == count - 1)) ||
    fail "$name: the message crossed links $((after - before)) times, expected $((count - 1)) (once per link of the tree)"
  ((after == mid)) || fail "$name: link_msgs_out went on from $mid to $after after the message had arrived everywhere"
  for n in "${nodes[@]}"; do
    node_alive "$n"
    stop_node "$n"
  done
  note "$name: refused ('$line'), one copy each"
}
case_ pair loop_case pair alpha bravo
case_ ring loop_case ring charlie delta echo
cases_passed
pass "a pair and a ring of three: refused, one copy each"
