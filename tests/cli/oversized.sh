#!/usr/bin/env bash
# A message over the relay's --max-msg-size never vanishes, and does not take the next one with it:
#  1. fire and forget, relay with the default limit (1 MiB): a 2 MB line, then a short one, from
#     zpub --no-ack --plain and from zpub --no-ack (a batch): the relay drops the big one, logs it
#     (with its size) and counts it (refused), and zsub gets the short line;
#  2. acked, relay --max-msg-size 1000, zpub --max-msg-size 0 (so zpub sends what the relay will
#     refuse): a 200 KB line, then a short one: zpub exits 3 with the relay's NACK "too large"
#     naming the record's size, and zsub gets the short line.
source "$(dirname "$0")/lib.sh"

big=$TEST_TMP/big.in
{ head -c 2000000 /dev/zero | tr '\0' B; printf '\nafter the big one\n'; } >"$big"

# ---- 1. fire and forget ------------------------------------------------------------------------
start_relay
# no_ack NAME NTH [ZPUB ARGS...]: zpub --no-ack ARGS <$big, and zsub -t NAME gets the short line.
no_ack() {
  local name=$1 nth=$2
  shift 2
  bg "$TEST_TMP/$name.out" "$TEST_TMP/$name.err" "$ZSUB" -t "$name" --sub-connect "$SUB_EP" -C 1 -W 5
  local sub=$BG_PID
  wait_subscribed "$name" "$nth"
  expect_status 0 "$ZPUB" -t "$name" --no-ack --max-msg-size 0 --pub-connect "$PUB_EP" "$@" <"$big"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 && $(cat "$TEST_TMP/$name.out") == 'after the big one' ]] ||
    fail "$name: after a 2 MB line, zsub got '$(head -c 100 "$TEST_TMP/$name.out")' (status $BG_STATUS, 5: nothing" \
      "came), expected the short line; relay stderr: $(tail -n 5 "$RELAY_ERR")"
}
no_ack plain 1 --plain
no_ack batch 1
want='zrelay: warning: dropped 1 message(s) from a fire-and-forget publisher: a message of 2000000 bytes exceeds the limit of 1048576'
n=$(grep -a -c -F -x -- "$want" "$RELAY_ERR")
[[ $n == 2 ]] || fail "the relay (-v) logged '$want' $n time(s), expected 2 (one per big line); its stderr: $(tail -n 5 "$RELAY_ERR")"
stop_relay
[[ $(relay_counter refused) == 2 ]] || fail "the relay counted refused=$(relay_counter refused), expected 2: $RELAY_FINAL"
[[ $(relay_counter msgs_out) == 2 ]] || fail "the relay forwarded msgs_out=$(relay_counter msgs_out), expected 2: $RELAY_FINAL"
note "fire and forget: both 2 MB lines dropped, logged and counted; the lines after them delivered"

# ---- 2. acked ------------------------------------------------------------------------------------
start_relay --max-msg-size 1000
{ head -c 200000 /dev/zero | tr '\0' L; printf '\nthe short line\n'; } >"$TEST_TMP/long.in"
bg "$TEST_TMP/long.out" "$TEST_TMP/long.err" "$ZSUB" -t long --sub-connect "$SUB_EP" -C 1 -W 5
sub=$BG_PID
wait_subscribed long
expect_status 3 "$ZPUB" -t long --max-msg-size 0 --ack-connect "$ACK_EP" <"$TEST_TMP/long.in"
expect_stderr_contains "zpub: error: relay refused 1 message(s): too large: a message of 200000 bytes exceeds the limit of 1000"
expect_stderr_one_line
wait_bg "$sub"
[[ $BG_STATUS == 0 && $(cat "$TEST_TMP/long.out") == 'the short line' ]] ||
  fail "after a 200 KB line refused by the relay, zsub got '$(head -c 100 "$TEST_TMP/long.out")' (status $BG_STATUS)," \
    "expected the short line"
stop_relay
[[ $(relay_counter nacks) == 1 ]] || fail "the relay counted nacks=$(relay_counter nacks), expected 1: $RELAY_FINAL"
pass "oversized messages were refused, logged and counted, and the messages after them delivered"
