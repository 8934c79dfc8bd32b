#!/usr/bin/env bash
# The journal's directory and files as a user meets them: an unusable DIR is refused with one
# line and status 1 (a file, locked by another relay, no permission); a torn tail is cut off and
# said; a damaged entry in the middle is skipped and its journal sequences reported, with
# everything before and after still served; retention says where a replay starts; the replay
# forms --since and --last-per-topic; --journal-fsync off.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# publish DIR-LESS: one acked zpub run per argument (a journal entry each), on topic ${TOPIC:-t}.
publish() {
  local m
  for m in "$@"; do
    run_cmd "$ZPUB" -t "${TOPIC:-t}" --ack-connect "$ACK_EP" -m "$m"
    [[ $LAST_STATUS == 0 ]] || fail "zpub -m $m exited $LAST_STATUS: $(cat "$TEST_TMP/last.err")"
  done
}
# replay ARGS...: zsub on the current relay's replay socket; its output in $TEST_TMP/last.out.
replay() { run_cmd "$ZSUB" --replay-connect "$REPLAY_EP" -W 5 "$@"; }

unusable_file() {
  : >"$TEST_TMP/plainfile"
  expect_status 1 "$ZRELAY" --control-bind off --journal "$TEST_TMP/plainfile" --pub-bind 'tcp://127.0.0.1:*' \
    --sub-bind 'tcp://127.0.0.1:*' --ack-bind 'tcp://127.0.0.1:*' --replay-bind 'tcp://127.0.0.1:*'
  expect_stderr_one_line
  grep -qF "zrelay: error: journal directory $TEST_TMP/plainfile" "$TEST_TMP/last.err" || fail "the error does not start as expected: $(cat "$TEST_TMP/last.err")"
  grep -q 'not a directory' "$TEST_TMP/last.err" || fail "the error does not say 'not a directory': $(cat "$TEST_TMP/last.err")"
}

unusable_locked() {
  start_relay --journal "$TEST_TMP/shared"
  expect_status 1 "$ZRELAY" --control-bind off --journal "$TEST_TMP/shared" --pub-bind 'tcp://127.0.0.1:*' \
    --sub-bind 'tcp://127.0.0.1:*' --ack-bind 'tcp://127.0.0.1:*' --replay-bind 'tcp://127.0.0.1:*'
  expect_stderr_one_line
  grep -qF "zrelay: error: journal directory $TEST_TMP/shared" "$TEST_TMP/last.err" || fail "the error does not start as expected: $(cat "$TEST_TMP/last.err")"
  grep -q 'locked by another' "$TEST_TMP/last.err" || fail "the error does not say it is locked: $(cat "$TEST_TMP/last.err")"
  expect_relay_alive
  stop_relay
}

unusable_permission() {
  mkdir -m 0700 "$TEST_TMP/private"
  local as=()
  if [[ $(id -u) == 0 ]]; then
    # Root passes every permission check: try as nobody, if nobody can run the binary from here.
    chmod 0755 "$TEST_TMP"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$ZRELAY" --version >/dev/null 2>&1 ||
      { note "nobody cannot run $ZRELAY here: permission case not run"; return 0; }
    as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  else
    chmod 0500 "$TEST_TMP/private"
  fi
  expect_status 1 "${as[@]}" "$ZRELAY" --control-bind off --journal "$TEST_TMP/private/j" --pub-bind 'tcp://127.0.0.1:*' \
    --sub-bind 'tcp://127.0.0.1:*' --ack-bind 'tcp://127.0.0.1:*' --replay-bind 'tcp://127.0.0.1:*'
  expect_stderr_one_line
  grep -qF "zrelay: error: journal directory $TEST_TMP/private/j" "$TEST_TMP/last.err" || fail "the error does not start as expected: $(cat "$TEST_TMP/last.err")"
  grep -qi 'permission' "$TEST_TMP/last.err" || fail "the error does not say permission: $(cat "$TEST_TMP/last.err")"
}

torn_tail() {
  local j=$TEST_TMP/torn seg
  start_relay --journal "$j"
  publish one two three
  stop_relay
  seg=$(ls "$j"/*.seg | tail -n1)
  # Half an entry: the first 30 bytes of the first one, magic included.
  head -c 30 "$seg" >>"$seg"
  start_relay --journal "$j"
  grep -a 'truncated 30 bytes' "$RELAY_ERR" || fail "the relay did not say it cut 30 bytes: $(cat "$RELAY_ERR")"
  publish four
  replay -t t --all -C 4
  [[ $LAST_STATUS == 0 && $(cat "$TEST_TMP/last.out") == $'one\ntwo\nthree\nfour' ]] ||
    fail "zsub --all after the torn tail: status $LAST_STATUS, printed '$(cat "$TEST_TMP/last.out")'; $(cat "$TEST_TMP/last.err")"
  stop_relay
}

damaged_middle() {
  local j=$TEST_TMP/damaged seg at
  start_relay --journal "$j"
  publish aaaa bbbbbbbb cccc
  stop_relay
  seg=$(ls "$j"/*.seg | tail -n1)
  at=$(grep -obUa bbbbbbbb "$seg" | head -n1 | cut -d: -f1)
  [[ -n $at ]] || fail "cannot find the second message in $seg"
  printf 'X' | dd of="$seg" bs=1 seek="$((at + 3))" conv=notrunc status=none
  start_relay --journal "$j"
  grep -a 'journal seqs 2-2 lost' "$RELAY_ERR" || grep -a 'journal seq 2 lost' "$RELAY_ERR" ||
    fail "the relay did not report journal seq 2 lost: $(cat "$RELAY_ERR")"
  replay -t t --all -C 2
  [[ $LAST_STATUS == 0 && $(cat "$TEST_TMP/last.out") == $'aaaa\ncccc' ]] ||
    fail "zsub --all around the damage: status $LAST_STATUS, printed '$(cat "$TEST_TMP/last.out")'; $(cat "$TEST_TMP/last.err")"
  publish dddd
  replay -t t --from-seq 3 -C 2
  [[ $(cat "$TEST_TMP/last.out") == $'cccc\ndddd' ]] || fail "the journal did not go on after the damage: '$(cat "$TEST_TMP/last.out")'"
  stop_relay
}

retention() {
  local j=$TEST_TMP/retained first
  start_relay --journal "$j" --journal-segment-size 4k --journal-max-bytes 8k
  # Lines of about 1 KiB: zpub's batches (64 KiB) then fill many segments of 4 KiB.
  local pad
  pad=$(printf '%01000d' 0)
  seq -f "line %06g $pad" 1 3000 >"$TEST_TMP/lines"
  run_cmd "$ZPUB" -t t --ack-connect "$ACK_EP" <"$TEST_TMP/lines"
  [[ $LAST_STATUS == 0 ]] || fail "zpub exited $LAST_STATUS: $(cat "$TEST_TMP/last.err")"
  replay -t t --from-seq 1 -C 1
  [[ $LAST_STATUS == 0 ]] || fail "zsub --from-seq 1 exited $LAST_STATUS: $(cat "$TEST_TMP/last.err")"
  [[ $(cat "$TEST_TMP/last.err") =~ replay\ starts\ at\ journal\ seq\ ([0-9]+):\ ([0-9]+)\ messages\ were\ removed\ by\ retention ]] ||
    fail "zsub did not say where the replay starts: $(cat "$TEST_TMP/last.err")"
  first=${BASH_REMATCH[1]}
  ((first > 1 && BASH_REMATCH[2] == first - 1)) || fail "replay starts at $first with ${BASH_REMATCH[2]} removed"
  [[ $(cat "$TEST_TMP/last.out") == "$(printf 'line %06d' "$first") $pad" ]] ||
    fail "the first line replayed is '$(cat "$TEST_TMP/last.out")', not line $first"
  local size
  size=$(du -sb "$j" | cut -f1)
  ((size < 300000)) || fail "retention left $size bytes of 3 MB in $j"
  stop_relay
}

replay_forms() {
  local j=$TEST_TMP/forms
  start_relay --journal "$j" --journal-fsync off
  TOPIC=s.a publish a1 a2
  TOPIC=s.b publish b1
  TOPIC=x publish x1
  replay -t s. --last-per-topic -C 2
  [[ $(cat "$TEST_TMP/last.out") == $'a2\nb1' ]] || fail "--last-per-topic printed '$(cat "$TEST_TMP/last.out")'"
  replay -t s. --since 1h -C 3
  [[ $(cat "$TEST_TMP/last.out") == $'a1\na2\nb1' ]] || fail "--since 1h printed '$(cat "$TEST_TMP/last.out")'"
  replay -t s. --json --all -C 1
  grep -q '"journal_seq":1' "$TEST_TMP/last.out" || fail "--json has no journal_seq: $(cat "$TEST_TMP/last.out")"
  # Live, too: a batch from a journaling relay carries its journal sequence.
  bg "$TEST_TMP/live" "$TEST_TMP/live.err" "$ZSUB" -t s. --sub-connect "$SUB_EP" --json -C 1 -W 10
  local live=$BG_PID
  wait_subscribed s.
  TOPIC=s.c publish c1
  wait_bg "$live"
  grep -q '"journal_seq":5' "$TEST_TMP/live" || fail "live --json has no journal_seq 5: $(cat "$TEST_TMP/live" "$TEST_TMP/live.err")"
  stop_relay
}

# Fire-and-forget messages are stored with nobody subscribed: a PUB socket filters at the source,
# so the relay must subscribe to everything itself.
fire_and_forget_stored() {
  start_relay --journal "$TEST_TMP/ff"
  run_cmd "$ZPUB" -t ff --no-ack --pub-connect "$PUB_EP" -m batch-one
  [[ $LAST_STATUS == 0 ]] || fail "zpub --no-ack exited $LAST_STATUS: $(cat "$TEST_TMP/last.err")"
  run_cmd "$ZPUB" -t ff --no-ack --plain --pub-connect "$PUB_EP" -m plain-one
  [[ $LAST_STATUS == 0 ]] || fail "zpub --no-ack --plain exited $LAST_STATUS: $(cat "$TEST_TMP/last.err")"
  replay -t ff --all -C 2
  [[ $LAST_STATUS == 0 && $(cat "$TEST_TMP/last.out") == $'batch-one\nplain-one' ]] ||
    fail "fire-and-forget messages without a subscriber were not stored: '$(cat "$TEST_TMP/last.out")' $(cat "$TEST_TMP/last.err")"
  stop_relay
}

case_ "fire-and-forget messages are stored with nobody subscribed" fire_and_forget_stored
case_ "a file is not a journal directory" unusable_file
case_ "a directory another relay holds" unusable_locked
case_ "a directory without permission" unusable_permission
case_ "a torn tail is cut and said" torn_tail
case_ "a damaged entry is skipped and reported" damaged_middle
case_ "retention and where a replay starts" retention
case_ "--last-per-topic, --since, --json, fsync off" replay_forms
cases_passed
pass
