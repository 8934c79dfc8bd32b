#!/usr/bin/env bash
# label: slow
# Faults: the relay is frozen (SIGSTOP) for longer than the heartbeat timeout, then thawed
# (SIGCONT). zpub and zsub must notice (heartbeats), say so on stderr, and recover without
# being restarted: zpub exits 0 with everything acknowledged, zsub gets the messages sent after.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMD_LIMIT=60 # slow builds (sanitizers) take a while to reconnect

start_relay --heartbeat 200
bg "$TEST_TMP/out" "$TEST_TMP/sub.err" "$ZSUB" -t t --sub-connect "$SUB_EP" --heartbeat 200 -C 2
sub_pid=$BG_PID
wait_subscribed t
# zpub reads from a writer process (see fault_restart.sh): "first", then a "second" line for each
# "go" on the control fifo, until "stop". The writer holds the control fifo open for reading and
# this shell holds it open for writing, so no reopening race can end the writer early.
mkfifo "$TEST_TMP/feed" "$TEST_TMP/go"
(exec 3<"$TEST_TMP/go" && echo first && while read -r line <&3 && [[ $line == go ]]; do echo second; done) >"$TEST_TMP/feed" &
writer=$!
track_bg "$writer"
BG_STDIN=$TEST_TMP/feed bg "$TEST_TMP/pub.out" "$TEST_TMP/pub.err" \
  "$ZPUB" -t t --ack-connect "$ACK_EP" --heartbeat 200 --ack-timeout 1000 --retries 40
pub_pid=$BG_PID
exec {gofd}>"$TEST_TMP/go"  # after zpub opens the feed: the writer opens the fifos in that order
wait_for_line "$TEST_TMP/out" first || fail "zsub did not receive the first line; stderr: $(cat "$TEST_TMP/sub.err")"

kill -STOP "$RELAY_PID"
wait_for_text "$TEST_TMP/sub.err" "lost the relay" || fail "zsub did not report the frozen relay: $(cat "$TEST_TMP/sub.err")"
wait_for_text "$TEST_TMP/pub.err" "lost the relay" || fail "zpub did not report the frozen relay: $(cat "$TEST_TMP/pub.err")"
kill -CONT "$RELAY_PID"
wait_for_text "$TEST_TMP/sub.err" "reconnected" || fail "zsub did not reconnect: $(cat "$TEST_TMP/sub.err")"

# zsub has resubscribed by itself, but whether the relay has taken the new subscription in yet
# cannot be seen from outside (it is the same topic): offer "second" until it arrives.
# A writer gone with zpub (it died) makes the write fail (SIGPIPE in the subshell): say so.
nudge() { (echo "$1" >&"$gofd") 2>/dev/null ||
  fail "zpub stopped reading its input; its stderr: $(cat "$TEST_TMP/pub.err")"; }
for _ in $(seq 1 30); do
  nudge go
  WAIT_LIMIT=1 wait_for_line "$TEST_TMP/out" second && break
done
nudge stop
wait_bg "$sub_pid"
[[ $BG_STATUS == 0 ]] || fail "zsub exited $BG_STATUS (expected 0 after -C 2); stderr: $(cat "$TEST_TMP/sub.err")"
[[ $(cat "$TEST_TMP/out") == $'first\nsecond' ]] || fail "zsub printed '$(cat "$TEST_TMP/out")'"
wait_bg "$pub_pid"
[[ $BG_STATUS == 0 ]] || fail "zpub exited $BG_STATUS after the relay came back (expected 0); stderr: $(cat "$TEST_TMP/pub.err")"
grep -q "reconnected" "$TEST_TMP/pub.err" || fail "zpub did not report reconnecting: $(cat "$TEST_TMP/pub.err")"
expect_relay_alive
pass "both clients reported the frozen relay and recovered without a restart"
