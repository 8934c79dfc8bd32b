#!/usr/bin/env bash
# CURVE end to end with real key pairs: `zrelay keygen`, a relay with --curve-key/--allow-keys,
# a listed client publishes (acked) and subscribes; an unlisted key and a client without CURVE
# are refused at once (exit 1, a message saying why), not left hanging.
source "$(dirname "$0")/lib.sh"

cd "$TEST_TMP" || fail "cannot enter $TEST_TMP"

# keygen writes NAME.key (0600) and NAME.pub, says so, and never overwrites.
for name in relay alice mallory; do
  expect_status 0 "$ZRELAY" keygen "$name"
  grep -q -F "wrote $name.key" "$TEST_TMP/last.out" || fail "zrelay keygen $name printed: $(cat "$TEST_TMP/last.out")"
  [[ $(stat -c %a "$name.key") == 600 ]] || fail "$name.key has mode $(stat -c %a "$name.key"), expected 600"
  [[ $(wc -l <"$name.pub") == 1 && $(head -c 40 "$name.pub" | wc -c) == 40 ]] ||
    fail "$name.pub is not one 40-character line: $(cat "$name.pub")"
done
expect_status 1 "$ZRELAY" keygen relay
expect_stderr_contains "zrelay: error: 'relay.key' already exists; not overwriting it"
expect_status 2 "$ZRELAY" keygen

{
  echo "# clients allowed in"
  echo "$(cat alice.pub)  # alice"
} >allow.txt

# The relay will not run CURVE that authenticates nobody; a bad allowlist names its line.
expect_status 2 "$ZRELAY" --curve-key relay.key
expect_stderr_contains "CURVE without --allow-keys would encrypt but authenticate nobody"
printf '%s\nnot-a-key\n' "$(cat alice.pub)" >bad-allow.txt
expect_status 1 "$ZRELAY" --curve-key relay.key --allow-keys bad-allow.txt
expect_stderr_contains "allowlist 'bad-allow.txt' line 2: 'not-a-key' is not a Z85 public key"

start_relay --curve-key relay.key --allow-keys allow.txt

# A listed client: zsub receives what zpub published, acknowledged, over CURVE.
ALICE=(--curve-key alice.key --curve-server-key relay.pub)
bg sub.out sub.err "$ZSUB" -t secure --sub-connect "$SUB_EP" -C 1 "${ALICE[@]}"
sub=$BG_PID
wait_subscribed secure
expect_status 0 "$ZPUB" -t secure --ack-connect "$ACK_EP" -m 'over curve' "${ALICE[@]}"
wait_bg "$sub"
[[ $BG_STATUS == 0 ]] || fail "zsub with alice's key exited with status $BG_STATUS; stderr: $(cat sub.err)"
[[ $(cat sub.out) == 'over curve' ]] || fail "zsub received '$(cat sub.out)', expected 'over curve'"
# The server key may also be given as Z85 text.
expect_status 0 "$ZPUB" -t secure --ack-connect "$ACK_EP" -m 'z85 text' --curve-key alice.key \
  --curve-server-key "$(cat relay.pub)"

# expect_refused TEXT CMD...: CMD exits 1 with TEXT on stderr, well within its connect timeout.
expect_refused() {
  local text=$1 started elapsed
  shift
  started=$(date +%s%N)
  expect_status 1 "$@" --connect-timeout 5000
  elapsed=$((($(date +%s%N) - started) / 1000000))
  expect_stderr_contains "$text"
  expect_stderr_one_line
  ((elapsed < 5000)) || fail "$LAST_CMD took ${elapsed} ms to report the refusal (connect timeout 5000 ms)"
}

MALLORY=(--curve-key mallory.key --curve-server-key relay.pub)
expect_refused "cannot connect to '$ACK_EP': the relay refused our credentials" \
  "$ZPUB" -t secure --ack-connect "$ACK_EP" -m 'let me in' "${MALLORY[@]}"
expect_refused "cannot connect to '$SUB_EP': the relay refused our credentials" \
  "$ZSUB" -t secure --sub-connect "$SUB_EP" "${MALLORY[@]}"
expect_refused "cannot connect to '$PUB_EP': the relay refused our credentials" \
  "$ZPUB" -t secure --no-ack --pub-connect "$PUB_EP" -m 'let me in' "${MALLORY[@]}"
# Without keys: ZeroMQ reports the mechanism mismatch, or (when the relay hangs up first) only
# that the handshake failed; either way the message points at the key options.
expect_refused "--curve-key and --curve-server-key" "$ZPUB" -t secure --ack-connect "$ACK_EP" -m 'no keys'
expect_stderr_contains "zpub: error: cannot connect to '$ACK_EP': "
expect_refused "--curve-key and --curve-server-key" "$ZSUB" -t secure --sub-connect "$SUB_EP"
expect_stderr_contains "zsub: error: cannot connect to '$SUB_EP': "
wait_for_text "$RELAY_ERR" "refused a CURVE client from 127.0.0.1 with key $(cat mallory.pub)" ||
  fail "the relay did not log the refused key; its stderr: $(tail -n 5 "$RELAY_ERR")"

# Half a pair is a usage error.
expect_status 2 "$ZPUB" -t secure --ack-connect "$ACK_EP" -m x --curve-key alice.key
expect_stderr_contains "give --curve-key and --curve-server-key together"

stop_relay
[[ $(relay_counter acks) -ge 2 ]] || fail "expected the two listed publishes to be acked: $RELAY_FINAL"
pass "keygen, a listed key served, unknown and missing keys refused with a message"
