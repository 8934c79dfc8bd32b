#!/usr/bin/env bash
# label: slow
# The journal across a crash: zrelay --journal DIR is killed with SIGKILL while zpub streams
# 200 000 acknowledged lines, then started again on the same DIR and endpoints. zpub must exit 0
# (what the dead relay had stored is acked again when resent, not stored twice: the sessions come
# back from the journal), and `zsub --all` must print every line exactly once, in order.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMD_LIMIT=90

N=200000
J=$TEST_TMP/journal
seq -f '%06g' 1 "$N" >"$TEST_TMP/in"
sed -n '1,100000p' "$TEST_TMP/in" >"$TEST_TMP/first"
sed -n '100001,$p' "$TEST_TMP/in" >"$TEST_TMP/second"

start_relay --journal "$J" --heartbeat 200
eps=(--pub-bind "$PUB_EP" --sub-bind "$SUB_EP" --ack-bind "$ACK_EP" --replay-bind "$REPLAY_EP" --heartbeat 200)
[[ -n $REPLAY_EP ]] || fail "zrelay --journal printed no replay endpoint on its ready line"
bg "$TEST_TMP/live" "$TEST_TMP/live.err" "$ZSUB" -t t --sub-connect "$SUB_EP" -W 30 --heartbeat 200
wait_subscribed t
# The input comes from a writer process: 100 000 lines at once, the rest on "go" (see fault_restart).
mkfifo "$TEST_TMP/feed" "$TEST_TMP/go"
(exec 3<"$TEST_TMP/go" && cat "$TEST_TMP/first" && read -r _ <&3 && cat "$TEST_TMP/second") >"$TEST_TMP/feed" &
track_bg $!
BG_STDIN=$TEST_TMP/feed bg "$TEST_TMP/pub.out" "$TEST_TMP/pub.err" \
  "$ZPUB" -t t --ack-connect "$ACK_EP" --ack-timeout 300 --retries 60 --heartbeat 200 --stats
pub_pid=$BG_PID
exec {gofd}>"$TEST_TMP/go"
# A live subscriber sees a line only once the journal holds it.
wait_for_line "$TEST_TMP/live" 050000 || fail "the live zsub did not receive line 050000; stderr: $(cat "$TEST_TMP/live.err")"
kill -STOP "$RELAY_PID"
echo go >&"$gofd" || fail "zpub stopped reading its input: $(cat "$TEST_TMP/pub.err")"
wait_for_text "$TEST_TMP/pub.err" "lost the relay" || fail "zpub did not notice the frozen relay"
kill_relay
note "relay killed with SIGKILL with zpub's window in flight; restarting on $J"
start_relay --journal "$J" "${eps[@]}"
grep -a "journal $J: " "$RELAY_ERR" || fail "the restarted relay did not report its journal: $(cat "$RELAY_ERR")"
wait_bg "$pub_pid"
[[ $BG_STATUS == 0 ]] || fail "zpub exited $BG_STATUS after the restart (expected 0); stderr: $(cat "$TEST_TMP/pub.err")"
retried=$(grep -o 'retried=[0-9]*' "$TEST_TMP/pub.err" | cut -d= -f2)
((${retried:-0} > 0)) || fail "zpub resent nothing, so the restart was not exercised: $(cat "$TEST_TMP/pub.err")"

run_cmd "$ZSUB" -t t --all --replay-connect "$REPLAY_EP" -C "$N" -W 10
[[ $LAST_STATUS == 0 ]] || fail "zsub --all exited $LAST_STATUS; stderr: $(cat "$TEST_TMP/last.err")"
cmp -s "$TEST_TMP/last.out" "$TEST_TMP/in" || {
  got=$(wc -l <"$TEST_TMP/last.out")
  fail "zsub --all did not print the $N lines once each in order (got $got lines; first difference: $(cmp "$TEST_TMP/last.out" "$TEST_TMP/in" 2>&1 | head -n1); duplicates: $(sort "$TEST_TMP/last.out" | uniq -d | head -n 3 | tr '\n' ' '))"
}
# Nothing more than the N lines is stored: a further message would be the next line of --all.
run_cmd "$ZSUB" -t t --from-seq "$((N + 1))" --replay-connect "$REPLAY_EP" -W 1
[[ $LAST_STATUS == 5 && ! -s $TEST_TMP/last.out ]] ||
  fail "the journal holds more than $N messages (zsub --from-seq $((N + 1)) printed: $(head -n 3 "$TEST_TMP/last.out"))"
stop_relay
dups=$(relay_counter duplicates)
note "zpub resent $retried line(s); the restarted relay re-acked $dups as duplicates"
pass "every acked line survived SIGKILL once, in order ($retried resent)"
