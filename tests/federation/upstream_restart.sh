#!/usr/bin/env bash
# Federation, the upstream killed with SIGKILL mid-stream and restarted on the same address. Tree: edge1
# and edge2 with --upstream CORE, each relay in a network namespace of its own on the default ports.
# zpub at edge1 streams N acknowledged lines to the zsub (--dedup --stats) at edge2; once edge2 has
# line 10 000 the core is frozen (SIGSTOP), the next 15 000 lines go to edge1 (which keeps acknowledging
# its publisher and sends them on into the frozen core), then the core is killed with SIGKILL and
# started again - with edge2 frozen until the new core has acked all edge1 held for it (the order in which
# the edges come back that is harder for the core). Once the way through is open again (probes) the last
# 5 000 follow, then a fence. (zsub runs with --heartbeat 0, so that edge2's freeze does not cost it its
# connection.)
#  - without journals: zpub exits 0; what zsub printed plus what it reports missing accounts for every
#    line (nothing lost silently), no line twice, none that was not sent;
#  - with --journal on every relay: all N arrive, nothing missing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMD_LIMIT=60
N=60000
seq -f '%06g' 1 "$N" >"$TEST_TMP/in"
sed -n '1,40000p' "$TEST_TMP/in" >"$TEST_TMP/first"
sed -n '40001,55000p' "$TEST_TMP/in" >"$TEST_TMP/second"
sed -n '55001,$p' "$TEST_TMP/in" >"$TEST_TMP/third"

node core
node edge1
node edge2

# round MODE: plain (no journals) or journal (--journal on all three).
round() {
  local mode=$1
  local d=$TEST_TMP/$mode
  mkdir "$d" || fail "cannot make $d"
  local core_args=() edge1_args=(--upstream "${NODE_ADDR[core]}") edge2_args=(--upstream "${NODE_ADDR[core]}")
  if [[ $mode == journal ]]; then
    core_args+=(--journal "$d/core") edge1_args+=(--journal "$d/edge1") edge2_args+=(--journal "$d/edge2")
  fi
  start_node core "${core_args[@]}"
  start_node edge1 "${edge1_args[@]}"
  start_node edge2 "${edge2_args[@]}"
  wait_link_up edge1 core
  wait_link_up edge2 core

  node_bg edge2 "$d/out" "$d/sub.err" "$ZSUB" -t t -H "${NODE_ADDR[edge2]}" --dedup --stats -W 50 --heartbeat 0
  local sub=$BG_PID
  wait_node_subscribed edge2 t
  wait_stat edge1 link_subs_in -ge 1
  # The input comes from a writer process (as in tests/cli/fault_restart.sh): the first part at once,
  # the second and third each on "go".
  mkfifo "$d/feed" "$d/go"
  (exec 3<"$d/go" && cat "$TEST_TMP/first" && read -r _ <&3 && cat "$TEST_TMP/second" &&
    read -r _ <&3 && cat "$TEST_TMP/third") >"$d/feed" &
  track_bg $!
  BG_STDIN=$d/feed node_bg edge1 "$d/pub.out" "$d/pub.err" "$ZPUB" -t t -H "${NODE_ADDR[edge1]}" --retries 20 --stats
  local pub=$BG_PID gofd
  exec {gofd}>"$d/go"
  nudge() { (echo go >&"$gofd") 2>/dev/null || fail "$mode: zpub stopped reading its input; its stderr: $(cat "$d/pub.err")"; }

  WAIT_LIMIT=30 wait_for_line "$d/out" 010000 ||
    fail "$mode: zsub at edge2 did not get line 010000 within 30s (it has $(wc -l <"$d/out")); stderr: $(cat "$d/sub.err")"
  # Freeze the core first, so that what edge1 forwards next is certainly in flight when it dies.
  kill -STOP "${NODE_PID[core]}"
  local at_stop
  at_stop=$(wc -l <"$d/out")
  nudge
  # edge1 keeps acknowledging its publisher with the core frozen: the second part is in.
  wait_stat edge1 msgs_in -ge 55000 30
  kill_node core
  note "$mode: core frozen with edge2 at $at_stop lines, killed with SIGKILL once edge1 had accepted 55000"
  wait_for_text "${NODE_ERR[edge1]}" "zrelay: link to upstream $(up_ep core): down" ||
    fail "$mode: edge1 did not log its link to the core down; its stderr: $(tail -n 5 "${NODE_ERR[edge1]}")"
  # The edges come back in the order that is harder for the core: edge1 first, with what it holds for
  # the core (the frozen core never acked it), and edge2 only once the core has taken all of that.
  kill -STOP "${NODE_PID[edge2]}"
  start_node core "${core_args[@]}"
  WAIT_LIMIT=30 wait_link_up edge1 core 2
  wait_link edge1 up unacked -eq 0 30
  kill -CONT "${NODE_PID[edge2]}"
  WAIT_LIMIT=30 wait_link_up edge2 core 2
  wait_path edge1 t "$d/out" 40
  nudge
  wait_bg "$pub"
  [[ $BG_STATUS == 0 ]] || fail "$mode: zpub at edge1 exited $BG_STATUS (expected 0: edge1 acknowledges); stderr: $(cat "$d/pub.err")"
  node_expect edge1 0 "$ZPUB" -t t -H "${NODE_ADDR[edge1]}" -m fence
  WAIT_LIMIT=40 wait_for_line "$d/out" fence || fail "$mode: the fence published after the stream did not reach edge2 within 40s"
  kill -TERM "$sub"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 ]] || fail "$mode: zsub at edge2 exited $BG_STATUS on SIGTERM; stderr: $(cat "$d/sub.err")"

  local stats got missing
  stats=$(grep -a '^zsub: stats ' "$d/sub.err" | tail -n1)
  [[ $stats == *' missing='* ]] || fail "$mode: zsub's count of missing messages is not exact: '$stats'"
  missing=$(tr ' ' '\n' <<<"$stats" | sed -n 's/^missing=//p')
  grep -v -e '^probe-' -e '^fence$' "$d/out" >"$d/lines"
  got=$(wc -l <"$d/lines")
  note "$mode: received $got of $N lines, $missing reported missing; edge1 link_resent=$(node_stat edge1 link_resent) link_dropped=$(node_stat edge1 link_dropped)"
  [[ -z $(sort "$d/lines" | uniq -d | head -n 3) ]] || fail "$mode: zsub --dedup printed a line twice: $(sort "$d/lines" | uniq -d | head -n 3)"
  [[ -z $(sort "$d/lines" | comm -23 - "$TEST_TMP/in" | head -n 3) ]] || fail "$mode: zsub printed lines nobody sent"
  local lost=
  if ((got < N)); then
    lost=$(sort "$d/lines" | comm -13 - "$TEST_TMP/in" | awk 'NR == 1 { f = $0 } { l = $0 } END { print "lines " f " to " l " are missing" }')
    lost="$lost; the new core: link_msgs_in=$(node_stat core link_msgs_in) link_msgs_out=$(node_stat core link_msgs_out) msgs_in=$(node_stat core msgs_in); edge2: link_msgs_in=$(node_stat edge2 link_msgs_in)"
    note "$mode: $lost"
  fi
  ((got + missing == N)) || fail "$mode: received $got + reported missing $missing != $N sent: lost silently; zsub: $stats"
  if [[ $mode == journal ]]; then
    ((got == N)) || fail "$mode: with journals on every relay, $((N - got)) of $N lines were lost ($missing reported missing): $lost"
  fi
  exec {gofd}>&-
  stop_node edge2
  stop_node edge1
  stop_node core
  RESULT+=("$mode: $got received + $missing missing = $N")
}
RESULT=()
round plain
round journal
pass "${RESULT[*]}"
