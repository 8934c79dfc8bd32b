#!/usr/bin/env bash
# zsub's replay options pointed where no replay is served: a clear one-line error and status 1,
# never a silent wait. Nothing listening (a relay without --journal has no replay socket): the
# error says a replay needs --journal. Another ROUTER socket (the relay's --ack-bind, which
# answers a replay request with a NACK): the error says it is not a replay socket.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

no_journal() {
  # A port nothing listens on: the replay socket of a journaling relay that has stopped.
  start_relay --journal "$TEST_TMP/j"
  local gone=$REPLAY_EP
  stop_relay
  start_relay
  expect_status 1 "$ZSUB" -t x --all --replay-connect "$gone" --connect-timeout 500
  expect_stderr_one_line
  expect_stderr_contains "zsub: error: cannot connect to '$gone'"
  expect_stderr_contains "with --journal?"
  stop_relay
}

ack_socket() {
  start_relay --journal "$TEST_TMP/j2"
  # No -W: a zsub that waited for a START that never comes would hang until CMD_LIMIT.
  expect_status 1 "$ZSUB" -t x --all --replay-connect "$ACK_EP"
  expect_stderr_one_line
  expect_stderr_contains "zsub: error: '$ACK_EP' is not a replay socket"
  expect_relay_alive
  # The real replay socket still works.
  run_cmd "$ZPUB" -t x --ack-connect "$ACK_EP" -m one
  [[ $LAST_STATUS == 0 ]] || fail "zpub exited $LAST_STATUS: $(cat "$TEST_TMP/last.err")"
  expect_status 0 "$ZSUB" -t x --all --replay-connect "$REPLAY_EP" -C 1
  [[ $(cat "$TEST_TMP/last.out") == one ]] || fail "the replay gave '$(cat "$TEST_TMP/last.out")', not 'one'"
  stop_relay
}

case_ "no replay socket there: the error names --journal" no_journal
case_ "the ack socket is not a replay socket" ack_socket
cases_passed
pass
