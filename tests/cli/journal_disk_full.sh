#!/usr/bin/env bash
# label: slow
# The journal on a full disk (root: a small tmpfs this test mounts and unmounts): what cannot be
# stored is not acked — acked publishers get NACK "unavailable" and keep their messages — live
# subscribers are still served, and when space returns the relay goes on by itself: zpub ends
# with every line acked, and `zsub --all` has each line once, in order. GET /healthz (--metrics-bind)
# answers 503 while the journal cannot store, 200 again once it can.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMD_LIMIT=90
[[ $(id -u) == 0 ]] || skip "needs root to mount a small tmpfs"

SMALL=$TEST_TMP/small
mkdir "$SMALL"
mount -t tmpfs -o size=3m zrelay-test "$SMALL" || skip "cannot mount a tmpfs here"
unmount_small() { umount "$SMALL" 2>/dev/null || umount -l "$SMALL" 2>/dev/null; }
CLEANUP_HOOKS+=(unmount_small)

N=30000
seq -f 'line %06g of the disk-full test, padded to about a hundred bytes ..........................' 1 "$N" >"$TEST_TMP/in"
# wait_health STATUS: GET /healthz until it answers STATUS, within WAIT_LIMIT seconds (each try a request).
wait_health() {
  local deadline=$((SECONDS + WAIT_LIMIT)) got
  while :; do
    got=$(timeout "$CMD_LIMIT" curl -sS -o /dev/null -w '%{http_code}' "$METRICS_URL/healthz")
    [[ $got == "$1" ]] && return 0
    ((SECONDS < deadline)) || fail "GET /healthz answered '$got' for ${WAIT_LIMIT}s, expected $1"
  done
}
start_relay --journal "$SMALL/j" --journal-segment-size 256k --journal-max-bytes 1G --metrics-bind 127.0.0.1:0
wait_health 200
bg "$TEST_TMP/live" "$TEST_TMP/live.err" "$ZSUB" -t f --sub-connect "$SUB_EP" -C 1 -W 60
live=$BG_PID
wait_subscribed f
# Leave about 400 KiB free: the lines (3 MB) cannot all fit.
avail=$(df -B1 --output=avail "$SMALL" | tail -n1)
dd if=/dev/zero of="$SMALL/filler" bs=64k count=$(((avail - 400 * 1024) / 65536)) status=none 2>/dev/null
BG_STDIN=$TEST_TMP/in bg "$TEST_TMP/pub.out" "$TEST_TMP/pub.err" \
  "$ZPUB" -t t --ack-connect "$ACK_EP" --ack-timeout 200 --retries 300 --stats
pub=$BG_PID
wait_for_text "$RELAY_ERR" "journal unavailable" || fail "the relay never said its journal was unavailable: $(tail -n 5 "$RELAY_ERR")"
grep -a "journal unavailable" "$RELAY_ERR" | head -n1 | grep -q "No space left on device" ||
  fail "the relay did not say why: $(grep -a 'journal unavailable' "$RELAY_ERR" | head -n1)"
kill -0 "$pub" 2>/dev/null || fail "zpub ended while the disk was full: $(cat "$TEST_TMP/pub.err")"
wait_health 503
# Live delivery goes on while the disk is full.
run_cmd "$ZPUB" -t f --no-ack --pub-connect "$PUB_EP" -m "while full"
wait_bg "$live"
[[ $BG_STATUS == 0 && $(cat "$TEST_TMP/live") == "while full" ]] ||
  fail "a live subscriber was not served while the disk was full: status $BG_STATUS, '$(cat "$TEST_TMP/live")'"
rm -f "$SMALL/filler"
note "space freed; waiting for zpub"
wait_bg "$pub"
[[ $BG_STATUS == 0 ]] || fail "zpub exited $BG_STATUS after space returned (expected 0): $(cat "$TEST_TMP/pub.err")"
grep -q "could not store" "$TEST_TMP/pub.err" || fail "zpub did not say the relay could not store some: $(cat "$TEST_TMP/pub.err")"
wait_for_text "$RELAY_ERR" "journal available again" || fail "the relay did not say the journal is back"
wait_health 200
run_cmd "$ZSUB" -t t --all --replay-connect "$REPLAY_EP" -C "$N" -W 10
[[ $LAST_STATUS == 0 ]] || fail "zsub --all exited $LAST_STATUS: $(cat "$TEST_TMP/last.err")"
cmp -s "$TEST_TMP/last.out" "$TEST_TMP/in" ||
  fail "zsub --all did not print each line once in order ($(wc -l <"$TEST_TMP/last.out") lines; $(cmp "$TEST_TMP/last.out" "$TEST_TMP/in" 2>&1 | head -n1))"
stop_relay
errors=$(relay_counter journal_errors)
((errors > 0)) || fail "journal_errors is 0 though writes failed: $RELAY_FINAL"
pass "nothing acked was lost on a full disk ($errors failed writes); the relay recovered by itself"
