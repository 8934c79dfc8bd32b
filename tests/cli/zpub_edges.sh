#!/usr/bin/env bash
# zpub where a user noticed it going wrong: --topic-sep lines that name no topic, file errors that
# name the file, endpoints of the other delivery mode, SIGHUP (a closed terminal) ending zpub as
# SIGTERM does, and the time zpub takes to give up on a relay that is gone. Each case runs on its
# own; all failures are listed at the end.
source "$(dirname "$0")/lib.sh"


# expect_stderr_lines N: the last command's stderr has exactly N lines.
expect_stderr_lines() {
  local n
  n=$(wc -l <"$TEST_TMP/last.err")
  [[ $n == "$1" ]] || fail "stderr of $LAST_CMD has $n lines, expected $1: $(head -c 2000 "$TEST_TMP/last.err")"
}

# adopt_bg_output NAME ERR: make a finished background command's stderr the "last" one, for expect_*.
adopt_bg_output() {
  LAST_CMD=$1
  cp "$2" "$TEST_TMP/last.err"
}

# A listener that accepts connections and never answers, so a zpub connecting to it waits for the
# handshake; it prints its port, then a line for each connection. zpub makes its signal watch before
# it connects, so its connection arriving here means a signal meets that watch.
SILENT_OUT=$TEST_TMP/silent.out
bg "$SILENT_OUT" "$TEST_TMP/silent.err" /usr/bin/python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    print("accepted", flush=True)
'
wait_for_text "$SILENT_OUT" "" || fail "the silent listener did not start within ${WAIT_LIMIT}s"
SILENT_ACK=tcp://127.0.0.1:$(head -n 1 "$SILENT_OUT")

# The relay killed (SIGKILL) in the "relay gone" case.
start_relay
GONE_ACK=$ACK_EP GONE_PID=$RELAY_PID GONE_ERR=$RELAY_ERR
# The relay frozen (SIGSTOP) while zpub has messages in flight, then thawed.
start_relay
FROZEN_ACK=$ACK_EP FROZEN_PID=$RELAY_PID FROZEN_ERR=$RELAY_ERR
# The one that serves the other cases (current: check_pubsub and stop_relay use it).
start_relay
note "relay: pub=$PUB_EP sub=$SUB_EP ack=$ACK_EP"

topic_sep_lines() {
  # Record 1 is routed, 2 has an empty topic, 3 no separator, 4 the separator at its end (an empty
  # message on topic b). Without -t, 2 and 3 are errors, each said for what it is.
  bg "$TEST_TMP/sep.out" "$TEST_TMP/sep.err" "$ZSUB" -t "" -v --sub-connect "$SUB_EP" -C 2 -W 5
  local sub=$BG_PID
  wait_subscribed ""
  expect_status 1 "$ZPUB" --topic-sep : --ack-connect "$ACK_EP" <<<$'a:1\n:x\nnosep\nb:'
  expect_stderr_contains "zpub: error: 1 record(s) had an empty topic (nothing before ':') and there is no -t to fall back on (first: record 2)"
  expect_stderr_contains "zpub: error: 1 record(s) had no topic separator ':' and there is no -t to fall back on (first: record 3)"
  expect_stderr_lines 2
  wait_bg "$sub"
  [[ $BG_STATUS == 0 && $(cat "$TEST_TMP/sep.out") == $'a 1\nb ' ]] ||
    fail "zsub -v should have printed 'a 1' and 'b ' (status 0), got status $BG_STATUS: '$(cat "$TEST_TMP/sep.out")'"
  # Two lines with an empty topic: counted, the first one named.
  expect_status 1 "$ZPUB" --topic-sep '::' --ack-connect "$ACK_EP" <<<$'t::ok\n::one\n::two'
  expect_stderr_contains "zpub: error: 2 record(s) had an empty topic (nothing before '::') and there is no -t to fall back on (first: record 2)"
  expect_stderr_one_line
  # With -t, a record that names no topic goes there whole.
  bg "$TEST_TMP/fb.out" "$TEST_TMP/fb.err" "$ZSUB" -t fb --sub-connect "$SUB_EP" -C 2 -W 5
  sub=$BG_PID
  wait_subscribed fb
  expect_status 0 "$ZPUB" --topic-sep : -t fb --ack-connect "$ACK_EP" <<<$':x\nnosep'
  [[ ! -s $TEST_TMP/last.err ]] || fail "zpub --topic-sep : -t fb complained: $(cat "$TEST_TMP/last.err")"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 && $(cat "$TEST_TMP/fb.out") == $':x\nnosep' ]] ||
    fail "zsub -t fb should have received ':x' and 'nosep', got status $BG_STATUS: '$(cat "$TEST_TMP/fb.out")'"
}

file_errors() {
  local dir=$TEST_TMP/a-directory
  mkdir "$dir"
  expect_status 1 "$ZPUB" -t x -f "$dir" --ack-connect "$ACK_EP"
  expect_stderr_contains "zpub: error: cannot read '$dir': Is a directory"
  expect_stderr_one_line
  expect_status 1 "$ZPUB" -t x -l -f "$dir" --ack-connect "$ACK_EP"
  expect_stderr_contains "zpub: error: cannot read '$dir': Is a directory"
  expect_stderr_one_line
  expect_status 1 "$ZPUB" -t x --ack-connect "$ACK_EP" <"$dir"
  expect_stderr_contains "zpub: error: cannot read standard input: Is a directory"
  expect_stderr_one_line
  expect_status 1 "$ZPUB" -t x -f "$TEST_TMP/missing" --ack-connect "$ACK_EP"
  expect_stderr_contains "zpub: error: cannot open '$TEST_TMP/missing': No such file or directory"
  expect_stderr_one_line
  # A file that opens and then fails to read (offset 0 of a process's memory is never mapped).
  expect_status 1 "$ZPUB" -t x -f /proc/self/mem --ack-connect "$ACK_EP"
  expect_stderr_contains "zpub: error: cannot read '/proc/self/mem': Input/output error"
  expect_stderr_one_line
  # A file this user may not read; root reads a mode 000 file, so root runs zpub as nobody.
  local as=()
  if [[ $(id -u) == 0 ]]; then
    as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    "${as[@]}" "$ZPUB" --version >/dev/null 2>&1 || as=(skip)
  fi
  if [[ ${as[0]:-} != skip ]]; then
    chmod 711 "$TEST_TMP"
    echo secret >"$TEST_TMP/unreadable"
    chmod 000 "$TEST_TMP/unreadable"
    expect_status 1 "${as[@]}" "$ZPUB" -t x -f "$TEST_TMP/unreadable" --ack-connect "$ACK_EP"
    expect_stderr_contains "zpub: error: cannot open '$TEST_TMP/unreadable': Permission denied"
    expect_stderr_one_line
  else
    note "root cannot run zpub as nobody here (setpriv): the unreadable-file check is skipped"
  fi
}

endpoint_of_the_other_mode() {
  expect_status 2 "$ZPUB" -t x -m hi --ack-connect "$ACK_EP" --no-ack --connect-timeout 500
  expect_stderr_contains "zpub: error: --ack-connect does not apply with --no-ack (fire and forget goes to --pub-connect) (see 'zpub --help')"
  expect_stderr_one_line
  expect_status 2 "$ZPUB" -t x -m hi --pub-connect "$PUB_EP" --connect-timeout 500
  expect_stderr_contains "zpub: error: --pub-connect needs --no-ack (acknowledged messages go to --ack-connect) (see 'zpub --help')"
  expect_stderr_one_line
  # Each with its own mode is fine.
  expect_status 0 "$ZPUB" -t x -m hi --ack-connect "$ACK_EP"
  expect_status 0 "$ZPUB" -t x -m hi --no-ack --pub-connect "$PUB_EP"
}

# stop_while_connecting SIGNAL: zpub waiting for a relay that does not answer ends on SIGNAL with 0.
stop_while_connecting() {
  local sig=$1 pid nth
  nth=$(($(grep -c '^accepted$' "$SILENT_OUT") + 1))
  bg "$TEST_TMP/conn-$sig.out" "$TEST_TMP/conn-$sig.err" "$ZPUB" -t x -m hi --ack-connect "$SILENT_ACK" \
    --connect-timeout 60000
  local tpid=$BG_PID
  wait_for_line "$SILENT_OUT" accepted "$nth" || fail "zpub did not connect within ${WAIT_LIMIT}s"
  pid=$(child_pid "$tpid")
  [[ -n $pid ]] || fail "zpub is not running"
  kill "-$sig" "$pid"
  wait_bg "$tpid"
  [[ $BG_STATUS == 0 ]] ||
    fail "zpub waiting to connect exited with status $BG_STATUS on SIG$sig, expected 0 as on SIGTERM (129: killed by SIGHUP); stderr: $(cat "$TEST_TMP/conn-$sig.err")"
  [[ ! -s $TEST_TMP/conn-$sig.err ]] || fail "zpub said on SIG$sig: $(cat "$TEST_TMP/conn-$sig.err")"
}

# stop_with_messages_in_flight SIGNAL: the relay frozen, a line read and not acknowledged: SIGNAL
# makes zpub exit 4 and say how many were not acknowledged.
stop_with_messages_in_flight() {
  local sig=$1 fifo=$TEST_TMP/flight-$sig.fifo err=$TEST_TMP/flight-$sig.err w pub nth
  nth=$(($(grep -c ' connected, starting at sequence' "$FROZEN_ERR") + 1))
  mkfifo "$fifo"
  BG_STDIN=$fifo bg "$TEST_TMP/flight-$sig.out" "$err" "$ZPUB" -t flight --ack-connect "$FROZEN_ACK" \
    --heartbeat 300
  pub=$BG_PID
  exec {w}>"$fifo"
  echo "before the freeze" >&"$w"
  # The relay has the first batch, so zpub is connected.
  wait_for_text "$FROZEN_ERR" " connected, starting at sequence" "$nth" ||
    fail "the frozen relay never saw zpub's first batch; zpub: $(cat "$err")"
  kill -STOP "$FROZEN_PID"
  echo "during the freeze" >&"$w"
  # Lost after 3 heartbeats (0.9 s), long after the line written before was there to read.
  wait_for_text "$err" "lost the relay" || fail "zpub did not notice the frozen relay: $(cat "$err")"
  kill "-$sig" "$(child_pid "$pub")"
  wait_bg "$pub"
  exec {w}>&-
  kill -CONT "$FROZEN_PID"
  [[ $BG_STATUS == 4 ]] ||
    fail "zpub with a message in flight exited with status $BG_STATUS on SIG$sig, expected 4 as on SIGTERM (129: killed by SIGHUP); stderr: $(cat "$err")"
  adopt_bg_output "zpub (SIG$sig with a message in flight)" "$err"
  expect_stderr_contains "zpub: error: interrupted; "
  expect_stderr_contains " message(s) not acknowledged"
}

sighup_as_sigterm() {
  local sig
  for sig in TERM HUP; do
    stop_while_connecting "$sig"
    stop_with_messages_in_flight "$sig"
  done
}

relay_gone() {
  # The documented bound: a message unacknowledged for --ack-timeout x (--retries + 1) ends zpub
  # with status 4, here 4 s. zpub used to linger ack-timeout longer (8 s) for messages it had
  # already counted as lost. The bound allows 2 s for a loaded machine.
  local fifo=$TEST_TMP/gone.fifo err=$TEST_TMP/gone.err w pub t0 t1 ms
  mkfifo "$fifo"
  BG_STDIN=$fifo bg "$TEST_TMP/gone.out" "$err" "$ZPUB" -t gone --ack-connect "$GONE_ACK" \
    --ack-timeout 4000 --retries 0
  pub=$BG_PID
  exec {w}>"$fifo"
  echo "before the relay goes" >&"$w"
  wait_for_text "$GONE_ERR" " connected, starting at sequence" ||
    fail "the relay never saw zpub's first batch; zpub: $(cat "$err")"
  kill -KILL "$GONE_PID"
  t0=$(date +%s%N)
  echo "after the relay went" >&"$w"
  exec {w}>&-
  wait_bg "$pub"
  t1=$(date +%s%N)
  ms=$(((t1 - t0) / 1000000))
  [[ $BG_STATUS == 4 ]] ||
    fail "zpub with the relay gone exited with status $BG_STATUS (124: hung), expected 4; stderr: $(cat "$err")"
  adopt_bg_output "zpub --ack-timeout 4000 --retries 0 (relay gone)" "$err"
  expect_stderr_contains "zpub: error: no acknowledgment from $GONE_ACK after 0 retries; "
  expect_stderr_contains " message(s) not acknowledged"
  ((ms < 6000)) ||
    fail "zpub took $ms ms to exit after the relay went (--ack-timeout 4000 --retries 0: 4000 documented, 6000 allowed)"
  note "relay gone: zpub exited 4 after $ms ms (4000 documented)"
}

case_ "--topic-sep lines without a topic say which (status 1)" topic_sep_lines
case_ "file errors name the file (status 1)" file_errors
case_ "--ack-connect with --no-ack, --pub-connect without it (status 2)" endpoint_of_the_other_mode
case_ "SIGHUP ends zpub as SIGTERM does (0 while connecting, 4 with messages in flight)" sighup_as_sigterm
case_ "relay gone: status 4 within --ack-timeout x (--retries + 1)" relay_gone

expect_relay_alive "after the cases"
check_pubsub after 'still serving'
stop_relay

cases_passed
pass "every case got its status and message"
