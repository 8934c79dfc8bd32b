#!/usr/bin/env bash
# label: slow
# Faults: a stuck subscriber (a zsub frozen with SIGSTOP, so it never reads) under the default
# policy. The other subscriber must still get every line, zpub must exit 0, the relay must count
# drops and its memory must stay bounded (peak RSS well under 256 MiB).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMD_LIMIT=60

N=1000000 # 68 MB of 64-byte lines: more than the stuck subscriber's socket buffers can hide
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "%010d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", i }' >"$TEST_TMP/in"

start_relay --hwm 100
bg /dev/null "$TEST_TMP/stuck.err" "$ZSUB" -t t --sub-connect "$SUB_EP"
stuck_tpid=$BG_PID
wait_subscribed t
stuck=$(child_pid "$stuck_tpid")
[[ -n $stuck ]] || fail "cannot find the stuck zsub's pid"
kill -STOP "$stuck"

# The live subscriber also subscribes to a topic of its own: the relay logs only the first
# subscription to 't', and the second one tells us that the live one is in.
bg "$TEST_TMP/out" "$TEST_TMP/live.err" "$ZSUB" -t t -t live-ready --sub-connect "$SUB_EP" -C "$N"
live_pid=$BG_PID
wait_subscribed live-ready
BG_STDIN=$TEST_TMP/in bg "$TEST_TMP/pub.out" "$TEST_TMP/pub.err" "$ZPUB" -t t --ack-connect "$ACK_EP"
pub_pid=$BG_PID
wait_bg "$pub_pid"
[[ $BG_STATUS == 0 ]] || fail "zpub exited $BG_STATUS with a stuck subscriber (expected 0); stderr: $(cat "$TEST_TMP/pub.err")"
wait_bg "$live_pid"
[[ $BG_STATUS == 0 ]] || fail "the live zsub exited $BG_STATUS (expected 0); stderr: $(cat "$TEST_TMP/live.err")"
cmp -s "$TEST_TMP/in" "$TEST_TMP/out" || fail "the live subscriber's output differs from the input"

peak_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$RELAY_PID/status")
((peak_kib < 262144)) || fail "relay peak RSS ${peak_kib} KiB is over 256 MiB"
kill -CONT "$stuck"
stop_relay
dropped=$(relay_counter dropped)
((dropped > 0)) || fail "the relay counted no drops for the stuck subscriber: $RELAY_FINAL"
grep -q "not keeping up" "$RELAY_ERR" || fail "the relay did not warn about the stuck subscriber"
pass "live subscriber got all $N lines; relay dropped $dropped for the stuck one, peak RSS $((peak_kib / 1024)) MiB"
