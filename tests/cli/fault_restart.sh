#!/usr/bin/env bash
# label: slow
# Faults: the relay is killed with SIGKILL while zpub streams 200 000 acknowledged lines, then
# started again on the same endpoints. zpub must reconnect, resend what was not acknowledged and
# exit 0; zsub (--dedup) must see every line once, except lines the dead relay had acknowledged
# but not yet delivered, which it must report as a gap: received + reported missing == sent.
# Then a relay that never comes back: zpub gives up after its retries, saying how many lines
# were not acknowledged, with status 4.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMD_LIMIT=60

N=200000
seq -f '%06g' 1 "$N" >"$TEST_TMP/in"
sed -n '1,100000p' "$TEST_TMP/in" >"$TEST_TMP/first"
sed -n '100001,190000p' "$TEST_TMP/in" >"$TEST_TMP/second"
sed -n '190001,$p' "$TEST_TMP/in" >"$TEST_TMP/third"

# --- killed and restarted -------------------------------------------------------------------
start_relay --heartbeat 200
eps=(--pub-bind "$PUB_EP" --sub-bind "$SUB_EP" --ack-bind "$ACK_EP" --heartbeat 200)
bg "$TEST_TMP/out" "$TEST_TMP/sub.err" "$ZSUB" -t t --sub-connect "$SUB_EP" --dedup -W 4 --heartbeat 200
sub_pid=$BG_PID
wait_subscribed t
# The input comes from a writer process (not this shell: a relay started later would inherit the
# pipe and zpub would never see its end): 100 000 lines at once, 90 000 on "go", 10 000 on "go".
# The writer holds the control fifo open for reading and this shell for writing: reopening it
# between lines could let a read see end-of-file and end the writer early.
mkfifo "$TEST_TMP/feed" "$TEST_TMP/go"
(exec 3<"$TEST_TMP/go" && cat "$TEST_TMP/first" && read -r _ <&3 && cat "$TEST_TMP/second" &&
  read -r _ <&3 && cat "$TEST_TMP/third") >"$TEST_TMP/feed" &
track_bg $!
BG_STDIN=$TEST_TMP/feed bg "$TEST_TMP/pub.out" "$TEST_TMP/pub.err" \
  "$ZPUB" -t t --ack-connect "$ACK_EP" --ack-timeout 300 --retries 40 --heartbeat 200 --stats
pub_pid=$BG_PID
exec {gofd}>"$TEST_TMP/go"  # after zpub opens the feed: the writer opens the fifos in that order
wait_for_line "$TEST_TMP/out" 050000 || fail "zsub did not receive line 050000; stderr: $(cat "$TEST_TMP/sub.err")"
# Freeze the relay so that what zpub sends next is certainly unacknowledged when it dies.
kill -STOP "$RELAY_PID"
nudge() { (echo go >&"$1") 2>/dev/null ||
  fail "zpub stopped reading its input; its stderr: $(cat "$TEST_TMP/pub.err" "$TEST_TMP/pub2.err" 2>/dev/null)"; }
nudge "$gofd"
wait_for_text "$TEST_TMP/pub.err" "lost the relay" || fail "zpub did not notice the frozen relay"
kill_relay
note "relay killed with SIGKILL with zpub's window in flight; restarting on $ACK_EP"
start_relay "${eps[@]}"
wait_subscribed t # zsub reconnected and subscribed again by itself
nudge "$gofd" # the last lines come after that, so a loss anywhere before shows as a gap
wait_bg "$pub_pid"
[[ $BG_STATUS == 0 ]] || fail "zpub exited $BG_STATUS after the restart (expected 0); stderr: $(cat "$TEST_TMP/pub.err")"
wait_bg "$sub_pid"
[[ $BG_STATUS == 5 ]] || fail "zsub should end on -W (status 5), got $BG_STATUS; stderr: $(cat "$TEST_TMP/sub.err")"

got=$(wc -l <"$TEST_TMP/out")
missing=$(grep -o '[0-9]* message(s) missing' "$TEST_TMP/sub.err" | awk '{ s += $1 } END { print s + 0 }')
note "received $got of $N lines, $missing reported missing"
[[ -z $(sort "$TEST_TMP/out" | uniq -d | head -n 3) ]] || fail "zsub --dedup printed a line twice"
sort -c "$TEST_TMP/out" 2>/dev/null || fail "lines arrived out of order"
[[ -z $(comm -23 "$TEST_TMP/out" "$TEST_TMP/in" | head -n 3) ]] || fail "zsub printed lines nobody sent"
((got + missing == N)) || fail "received $got + reported missing $missing != $N sent: something was lost silently"
grep -q "lost the relay" "$TEST_TMP/sub.err" || fail "zsub did not report losing the relay; stderr: $(cat "$TEST_TMP/sub.err")"
retried=$(grep -o 'retried=[0-9]*' "$TEST_TMP/pub.err" | cut -d= -f2)
((${retried:-0} > 0)) || fail "zpub resent nothing, so the restart was not exercised: $(cat "$TEST_TMP/pub.err")"
grep -q "reconnected" "$TEST_TMP/pub.err" || fail "zpub did not report reconnecting; stderr: $(cat "$TEST_TMP/pub.err")"
stop_relay

# --- killed for good -------------------------------------------------------------------------
start_relay
mkfifo "$TEST_TMP/feed2" "$TEST_TMP/go2"
(exec 3<"$TEST_TMP/go2" && head -n 1000 "$TEST_TMP/in" && read -r _ <&3 && tail -n 500 "$TEST_TMP/in") >"$TEST_TMP/feed2" &
track_bg $!
BG_STDIN=$TEST_TMP/feed2 bg "$TEST_TMP/pub2.out" "$TEST_TMP/pub2.err" \
  "$ZPUB" -t t --ack-connect "$ACK_EP" --ack-timeout 200 --retries 2 --heartbeat 200
pub_pid=$BG_PID
exec {gofd}>"$TEST_TMP/go2"  # after zpub opens the feed: the writer opens the fifos in that order
wait_for_text "$RELAY_ERR" "connected, starting at sequence" || fail "zpub's first batch never reached the relay"
kill_relay
nudge "$gofd"
wait_bg "$pub_pid"
[[ $BG_STATUS == 4 ]] || fail "zpub exited $BG_STATUS with the relay gone (expected 4); stderr: $(cat "$TEST_TMP/pub2.err")"
grep -Eq "no acknowledgment from $ACK_EP after 2 retries; [0-9]+ message\(s\) not acknowledged" "$TEST_TMP/pub2.err" ||
  fail "zpub's message does not say how many were not acknowledged: $(cat "$TEST_TMP/pub2.err")"
unacked=$(grep -Eo '[0-9]+ message\(s\) not acknowledged' "$TEST_TMP/pub2.err" | grep -Eo '^[0-9]+')
((unacked >= 500)) || fail "zpub reports $unacked unacknowledged, but 500 lines were written after the relay died"
pass "restart: $got received + $missing reported missing = $N, zpub resent $retried; relay gone: status 4, $unacked not acknowledged"
