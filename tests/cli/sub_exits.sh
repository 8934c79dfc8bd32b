#!/usr/bin/env bash
# How zsub ends when it cannot go on, or is told to: a relay that refuses its subscription (a topic
# over --max-topic) makes it exit 3 at once instead of reconnecting forever, and a relay with a
# larger limit does not; a closed standard output is named as such (status 1); SIGHUP, a closed
# terminal, ends it cleanly as SIGTERM does (status 0, stats printed).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

long=$(head -c 2000 /dev/zero | tr '\0' T)

start_relay
# Refused: ZeroMQ closes the connection at the subscription's size header, every time.
expect_status 3 "$ZSUB" -t "$long" -W 10 --sub-connect "$SUB_EP"
expect_stderr_contains "zsub: error: the relay at $SUB_EP refused the subscription"
expect_stderr_contains "the longest topic here is 2000 bytes"
expect_relay_alive "after a refused subscription"

# Standard output closed: zsub says so rather than writing into whatever descriptor took its place.
LAST_CMD="zsub -t x -W 5 >&-"
timeout -k 2 "$CMD_LIMIT" "$ZSUB" -t x --sub-connect "$SUB_EP" -W 5 >&- 2>"$TEST_TMP/last.err"
LAST_STATUS=$?
[[ $LAST_STATUS == 1 ]] || fail "zsub >&- exited $LAST_STATUS, expected 1; stderr: $(cat "$TEST_TMP/last.err")"
expect_stderr_contains "zsub: error: cannot write output: standard output is closed"
expect_stderr_one_line

# SIGHUP ends it as SIGTERM does.
bg "$TEST_TMP/hup.out" "$TEST_TMP/hup.err" "$ZSUB" -t hup --sub-connect "$SUB_EP" --stats
hup_tpid=$BG_PID
wait_subscribed hup
hup_pid=$(child_pid "$hup_tpid")
[[ -n $hup_pid ]] || fail "cannot find zsub's pid"
kill -HUP "$hup_pid"
wait_bg "$hup_tpid"
[[ $BG_STATUS == 0 ]] || fail "zsub exited $BG_STATUS on SIGHUP, expected 0 (129: killed by it); stderr: $(cat "$TEST_TMP/hup.err")"
grep -q '^zsub: stats received=0 ' "$TEST_TMP/hup.err" || fail "zsub printed no stats on SIGHUP: $(cat "$TEST_TMP/hup.err")"
stop_relay

# A relay whose limit allows the topic keeps the subscriber: -W ends it, with status 5.
start_relay --max-topic 4096
expect_status 5 "$ZSUB" -t "$long" -W 1.5 --sub-connect "$SUB_EP"
! grep -q 'refused' "$TEST_TMP/last.err" || fail "zsub took an accepted subscription for a refused one: $(cat "$TEST_TMP/last.err")"
stop_relay
pass "refused subscription: status 3; closed output named; SIGHUP: status 0 with stats"
