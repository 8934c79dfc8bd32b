#!/usr/bin/env bash
# The SimpleMQTT way, with stdin a terminal (util-linux `script` gives the binaries a pty):
#  - zpub with no -t/-m/-f/-s asks for a topic, then messages, shows an acknowledgment for each,
#    and ends on Ctrl-D with status 0; the subscriber receives both messages;
#  - zsub with no -t asks for the topic and then receives on it.
source "$(dirname "$0")/lib.sh"

command -v script >/dev/null || skip "util-linux 'script' is not installed: cannot give zpub a terminal"
script -qec true /dev/null </dev/null >/dev/null 2>&1 || skip "'script' cannot allocate a pseudo-terminal here"

start_relay

# --- zpub prompts -------------------------------------------------------------------------------
bg "$TEST_TMP/sub.out" "$TEST_TMP/sub.err" "$ZSUB" -t prompted --sub-connect "$SUB_EP" -C 2
sub=$BG_PID
wait_subscribed prompted

# Topic, two messages, then Ctrl-D (EOF at the start of a line of a terminal).
printf 'prompted\nfirst message\nsecond message\n\004' >"$TEST_TMP/keys"
run_cmd script -qec "$(printf '%q ' "$ZPUB" --ack-connect "$ACK_EP")" /dev/null <"$TEST_TMP/keys"
tr -d '\r' <"$TEST_TMP/last.out" >"$TEST_TMP/screen"
[[ $LAST_STATUS == 0 ]] ||
  fail "zpub at a terminal exited with status $LAST_STATUS, expected 0 after Ctrl-D; screen: $(cat "$TEST_TMP/screen"); stderr: $(cat "$TEST_TMP/last.err")"
grep -q 'Topic: ' "$TEST_TMP/screen" || fail "zpub did not ask for a topic; screen: $(cat "$TEST_TMP/screen")"
acks=$(grep -o 'acknowledged in [0-9.]* ms' "$TEST_TMP/screen" | wc -l)
[[ $acks == 2 ]] || fail "zpub showed $acks acknowledgment(s) for two messages; screen: $(cat "$TEST_TMP/screen")"
wait_bg "$sub"
[[ $BG_STATUS == 0 ]] || fail "zsub -t prompted -C 2 exited with status $BG_STATUS; got '$(cat "$TEST_TMP/sub.out")'"
printf 'first message\nsecond message\n' | cmp -s - "$TEST_TMP/sub.out" ||
  fail "the subscriber got '$(cat "$TEST_TMP/sub.out")', expected 'first message' and 'second message'"
note "zpub prompt: $(grep -o 'acknowledged in [0-9.]* ms' "$TEST_TMP/screen" | paste -sd, -)"

# --- zsub prompts for its topic -------------------------------------------------------------------
printf 'asked-topic\n' >"$TEST_TMP/sub-keys"
BG_STDIN=$TEST_TMP/sub-keys bg "$TEST_TMP/tsub.out" "$TEST_TMP/tsub.err" \
  script -qec "$(printf '%q ' "$ZSUB" --sub-connect "$SUB_EP" -C 1)" /dev/null
tsub=$BG_PID
wait_subscribed asked-topic
expect_status 0 "$ZPUB" -t asked-topic.x --ack-connect "$ACK_EP" -m 'to the prompted subscriber'
wait_bg "$tsub"
tr -d '\r' <"$TEST_TMP/tsub.out" >"$TEST_TMP/tscreen"
[[ $BG_STATUS == 0 ]] || fail "zsub at a terminal exited with status $BG_STATUS; screen: $(cat "$TEST_TMP/tscreen")"
grep -q 'Topic to subscribe to' "$TEST_TMP/tscreen" || fail "zsub did not ask for a topic; screen: $(cat "$TEST_TMP/tscreen")"
grep -q 'to the prompted subscriber$' "$TEST_TMP/tscreen" ||
  fail "zsub did not print the message; screen: $(cat "$TEST_TMP/tscreen")"

stop_relay
pass "zpub and zsub prompt at a terminal; two acknowledgments shown, messages delivered"
