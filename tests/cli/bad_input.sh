#!/usr/bin/env bash
# Every bad input gets a clear error on stderr and its documented exit status, and the relay stays
# up: malformed endpoints, a port in use, unknown flags, an unreachable or unresolvable relay, missing
# or empty topics, zsub -W with nothing published, a message over --max-msg-size, a relay that stops
# answering. Each case runs on its own; all failures are listed at the end.
source "$(dirname "$0")/lib.sh"


# A relay that is then stopped: its ports are (almost certainly) closed afterwards.
start_relay
DEAD_ACK=$ACK_EP DEAD_PUB=$PUB_EP
stop_relay

start_relay --max-msg-size 1k
note "relay: pub=$PUB_EP sub=$SUB_EP ack=$ACK_EP"
ANY='tcp://127.0.0.1:*'

malformed_endpoints() {
  local ep
  for ep in 'tcp//x' 'tcp://127.0.0.1:99999' 'foo://x' 'tcp://' 'tcp://127.0.0.1'; do
    expect_status 2 "$ZRELAY" --pub-bind "$ep" --sub-bind "$ANY" --ack-bind "$ANY"
    expect_stderr_contains "zrelay: error: "
    expect_stderr_contains "$ep"
    expect_stderr_contains "see 'zrelay --help'"
    expect_stderr_one_line
    [[ ! -s $TEST_TMP/last.out ]] || fail "zrelay printed '$(cat "$TEST_TMP/last.out")' on stdout for a malformed endpoint"
  done
  expect_status 2 "$ZPUB" -t x -m hi --ack-connect 'tcp//x'
  expect_stderr_contains "see 'zpub --help'"
  expect_status 2 "$ZSUB" -t x --sub-connect 'tcp://127.0.0.1:0x'
  expect_stderr_contains "see 'zsub --help'"
}

unresolvable_bind() {
  # A name that does not resolve is a runtime error that says so (not libzmq's "No such device").
  expect_status 1 "$ZRELAY" --control-bind off --pub-bind 'tcp://no-such-host.invalid:5559' --sub-bind "$ANY" --ack-bind "$ANY"
  expect_stderr_contains "no such host or interface 'no-such-host.invalid'"
  expect_stderr_one_line
}

port_in_use() {
  local which
  for which in pub sub ack; do
    local -A ep=([pub]=$ANY [sub]=$ANY [ack]=$ANY)
    case $which in pub) ep[pub]=$PUB_EP ;; sub) ep[sub]=$SUB_EP ;; ack) ep[ack]=$ACK_EP ;; esac
    expect_status 1 "$ZRELAY" --control-bind off --pub-bind "${ep[pub]}" --sub-bind "${ep[sub]}" --ack-bind "${ep[ack]}"
    expect_stderr_contains "Address already in use"
    expect_stderr_contains "cannot bind '${ep[$which]}'"
    expect_stderr_one_line
    [[ ! -s $TEST_TMP/last.out ]] || fail "zrelay printed a ready line although it could not bind: $(cat "$TEST_TMP/last.out")"
  done
  expect_relay_alive "after a second relay tried its ports"
}

unknown_flags() {
  local tool
  for tool in zrelay zpub zsub; do
    local bin=$ZRELAY
    [[ $tool == zpub ]] && bin=$ZPUB
    [[ $tool == zsub ]] && bin=$ZSUB
    expect_status 2 "$bin" --no-such-flag </dev/null
    expect_stderr_contains "$tool: error: "
    expect_stderr_contains "no-such-flag"
    expect_stderr_contains "see '$tool --help'"
    expect_stderr_one_line
    expect_status 2 "$bin" -t x --sub-connect "$SUB_EP" --ack-connect "$ACK_EP" stray-argument </dev/null
    expect_stderr_contains "see '$tool --help'"
  done
}

unreachable_relay() {
  local t0 t1
  t0=$(date +%s%N)
  expect_status 1 "$ZPUB" -t x -m hi --ack-connect "$DEAD_ACK" --connect-timeout 500
  t1=$(date +%s%N)
  expect_stderr_contains "zpub: error: cannot connect to '$DEAD_ACK'"
  expect_stderr_one_line
  (((t1 - t0) / 1000000 < 5000)) || fail "zpub took $(((t1 - t0) / 1000000)) ms to give up with --connect-timeout 500"
  expect_status 1 "$ZPUB" -t x -m hi --no-ack --pub-connect "$DEAD_PUB" --connect-timeout 500
  expect_stderr_contains "cannot connect to '$DEAD_PUB'"
  expect_status 1 "$ZSUB" -t x --sub-connect "$DEAD_ACK" --connect-timeout 500
  expect_stderr_contains "cannot connect to '$DEAD_ACK'"
}

unresolvable_host() {
  expect_status 1 "$ZPUB" -H no-such-host.invalid -t x -m hi
  expect_stderr_contains "cannot resolve"
  expect_stderr_contains "no-such-host.invalid"
  expect_stderr_one_line
  expect_status 1 "$ZSUB" -H no-such-host.invalid -t x
  expect_stderr_contains "cannot resolve"
}

topics() {
  expect_status 2 "$ZPUB" -t "" -m hi --ack-connect "$ACK_EP"
  expect_stderr_contains "topic must not be empty"
  expect_stderr_one_line
  # stdin is not a terminal here (a file), so there is no prompt to fall back on
  expect_status 2 "$ZPUB" --ack-connect "$ACK_EP" <<<"hello"
  expect_stderr_contains "no topic"
  expect_stderr_contains "see 'zpub --help'"
  expect_stderr_one_line
  expect_status 2 "$ZSUB" --sub-connect "$SUB_EP" </dev/null
  expect_stderr_contains "no topic"
  expect_stderr_contains "see 'zsub --help'"
  expect_stderr_one_line
}

idle_subscriber() {
  expect_status 5 "$ZSUB" -t idle -W 0.3 --sub-connect "$SUB_EP"
  expect_stderr_contains "no message for 0.3 s"
  [[ ! -s $TEST_TMP/last.out ]] || fail "zsub -W printed '$(cat "$TEST_TMP/last.out")' with nothing published"
  expect_status 2 "$ZSUB" -t idle -W 0 --sub-connect "$SUB_EP"
  expect_status 2 "$ZSUB" -t idle -W soon --sub-connect "$SUB_EP"
}

too_large() {
  local big
  big=$(head -c 2048 /dev/zero | tr '\0' B)
  expect_status 3 "$ZPUB" -t big -m "$big" --ack-connect "$ACK_EP"
  expect_stderr_contains "too large"
  expect_stderr_contains "relay refused 1 message(s)"
  expect_stderr_one_line
  # Small messages around an oversized one are still delivered: only the big one is refused.
  bg "$TEST_TMP/big.out" "$TEST_TMP/big.err" "$ZSUB" -t big --sub-connect "$SUB_EP" -C 2 -W 2
  local sub=$BG_PID
  wait_subscribed big
  printf 'small before\n%s\nsmall after\n' "$big" >"$TEST_TMP/big.in"
  expect_status 3 "$ZPUB" -t big --ack-connect "$ACK_EP" <"$TEST_TMP/big.in"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 && $(cat "$TEST_TMP/big.out") == $'small before\nsmall after' ]] ||
    fail "piping 'small before', a 2 KiB line, 'small after' into zpub (relay --max-msg-size 1k): the small lines" \
      "were not delivered (zsub status $BG_STATUS, got '$(cat "$TEST_TMP/big.out")'); zpub said: $(cat "$TEST_TMP/last.err")"
  expect_stderr_contains "relay refused 1 message(s): too large"
}

relay_stops_answering() {
  # zpub connects and gets its first message through; then the relay is frozen (SIGSTOP) so the
  # second is never acknowledged: after --retries 2 resends zpub gives up with status 4.
  local fifo=$TEST_TMP/stop.fifo w sub pub
  mkfifo "$fifo"
  bg "$TEST_TMP/stop-sub.out" "$TEST_TMP/stop-sub.err" "$ZSUB" -t frozen --sub-connect "$SUB_EP" -C 1
  sub=$BG_PID
  wait_subscribed frozen
  BG_STDIN=$fifo bg "$TEST_TMP/stop.out" "$TEST_TMP/stop.err" "$ZPUB" -t frozen --ack-connect "$ACK_EP" \
    --ack-timeout 200 --retries 2
  pub=$BG_PID
  exec {w}>"$fifo"
  echo "before the freeze" >&"$w"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 ]] || fail "the first message did not arrive (zsub status $BG_STATUS)"
  kill -STOP "$RELAY_PID"
  echo "during the freeze" >&"$w"
  exec {w}>&-
  local t0 t1
  t0=$(date +%s%N)
  wait_bg "$pub"
  t1=$(date +%s%N)
  kill -CONT "$RELAY_PID"
  [[ $BG_STATUS == 4 ]] ||
    fail "zpub to a frozen relay exited with status $BG_STATUS (124: hung), expected 4; stderr: $(cat "$TEST_TMP/stop.err")"
  LAST_CMD="zpub --ack-timeout 200 --retries 2 (frozen relay)"
  cp "$TEST_TMP/stop.err" "$TEST_TMP/last.err"
  expect_stderr_contains "no acknowledgment from $ACK_EP after 2 retries"
  expect_stderr_contains "not acknowledged"
  expect_stderr_one_line
  (((t1 - t0) / 1000000 < 5000)) || fail "zpub took $(((t1 - t0) / 1000000)) ms to give up (--ack-timeout 200 --retries 2)"
}
limits() {
  expect_status 2 "$ZRELAY" --max-topic 511 --pub-bind "$ANY" --sub-bind "$ANY" --ack-bind "$ANY"
  expect_stderr_contains "--max-topic must be from 512 to 65536 bytes"
  expect_stderr_one_line
  expect_status 2 "$ZRELAY" --max-topic 65537 --pub-bind "$ANY" --sub-bind "$ANY" --ack-bind "$ANY"
  expect_status 2 "$ZRELAY" --max-topic lots --pub-bind "$ANY" --sub-bind "$ANY" --ack-bind "$ANY"
  local long
  long=$(head -c 2000 /dev/zero | tr '\0' T)
  # The relay's default --max-topic is 1024: a NACK for the publisher; the subscriber is warned,
  # and stops with status 3 once the relay has dropped its connection at the subscription frame.
  expect_status 3 "$ZPUB" -t "$long" -m hi --ack-connect "$ACK_EP"
  expect_stderr_contains "relay refused 1 message(s): too large: a topic of 2000 bytes exceeds the limit of 1024"
  expect_stderr_one_line
  expect_status 3 "$ZSUB" -t "$long" -W 10 --sub-connect "$SUB_EP"
  expect_stderr_contains "a topic of 2000 bytes is over zrelay's default --max-topic (1024)"
  expect_stderr_contains "refused the subscription"
  # One 64 MiB line with no newline is refused by zpub itself, without holding it.
  head -c 64M /dev/zero | tr '\0' L >"$TEST_TMP/line.in"
  expect_status 3 "$ZPUB" -t big --max-msg-size 1k --ack-connect "$ACK_EP" <"$TEST_TMP/line.in"
  expect_stderr_contains "1 message(s) larger than --max-msg-size (1024 bytes) not sent (first: record 1, 67108864 bytes)"
  rm -f "$TEST_TMP/line.in"
}

case_ "malformed endpoints (status 2)" malformed_endpoints
case_ "zrelay binding a name that does not resolve (status 1, no such host)" unresolvable_bind
case_ "port already in use (status 1)" port_in_use
case_ "unknown flags and stray arguments (status 2)" unknown_flags
case_ "unreachable relay (status 1, cannot connect)" unreachable_relay
case_ "zpub/zsub -H no-such-host.invalid (status 1, cannot resolve)" unresolvable_host
case_ "empty or missing topics (status 2)" topics
case_ "zsub -W with nothing published (status 5)" idle_subscriber
case_ "message over --max-msg-size (status 3, too large)" too_large
case_ "topics over --max-topic, a 64 MiB line, bad limits (status 3, 2)" limits
case_ "relay stops answering (status 4, after 2 retries)" relay_stops_answering

# Whatever happened above, the relay still serves.
expect_relay_alive "after the bad inputs"
check_pubsub after 'still serving'
stop_relay

cases_passed
pass "every bad input got its status and message; the relay kept serving"
