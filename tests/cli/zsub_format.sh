#!/usr/bin/env bash
# zsub -F FORMAT and -T PREFIX, as a user of mosquitto_sub would try them against a real relay:
#  - every -F field of an acked message, of a plain one ('-' for what it lacks) and of a journaled
#    one (%n), each followed by a newline, or NUL with -0;
#  - %I and %U: the same moment of receipt, in the local time zone (TZ) and as Unix time;
#  - -T hides a topic: hidden messages do not count for -C, their gaps are still reported, and a
#    gap is never made up of hidden messages (messages crafted with chosen sequence numbers);
#  - -W with -T: a stream of hidden messages does not keep zsub from giving up;
#  - bad formats are usage errors (status 2) that name the code.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
"$PY" -c 'import zmq' 2>/dev/null || fail "no python3 with the zmq module: apt-get install python3-zmq"

# A fire-and-forget publisher of zrelay batches with chosen sequence numbers (docs/PROTOCOL.md), on
# an XPUB so that it sees zsub's subscription arrive before it sends, and its unsubscription at the end.
#   craft.py PUB_EP PREFIX MODE: waits for the subscription to PREFIX, then by MODE: "plain" sends one
#   plain [topic][payload] message; "gaps" the messages of the -T case; "noise" one message every
#   20 ms until PREFIX is unsubscribed (or 8 s have passed).
cat >"$TEST_TMP/craft.py" <<'EOF'
import struct, sys, time, zmq
ep, prefix, mode = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
ctx = zmq.Context()
s = ctx.socket(zmq.XPUB)
s.connect(ep)
deadline = time.monotonic() + 10
while True:
    if not s.poll(max(0, int((deadline - time.monotonic()) * 1000))):
        sys.exit("the subscription to %r did not reach the publisher within 10 s" % prefix)
    if s.recv() == b"\x01" + prefix:
        break
def batch(topic, publisher, topic_seq, payload):
    header = struct.pack(">2sBBIQQQQ", b"ZR", 1, 1, 1, publisher, topic_seq, topic_seq, 0)
    s.send_multipart([topic.encode(), header, struct.pack(">I", len(payload)) + payload.encode()])
P = 0x1122334455667788
if mode == "plain":
    s.send_multipart([b"f.plain", b"\xff"])
elif mode == "gaps":
    # keep: 1 2 3 then 6 (4 and 5 missing); drop.x: 1 2 then 5 (3 and 4 missing).
    for topic, seq in [("keep", 1), ("drop.x", 1), ("drop.x", 2), ("keep", 2), ("drop.x", 5), ("keep", 3), ("keep", 6)]:
        batch(topic, P, seq, "%s-%d" % (topic, seq))
    s.send_multipart([b"keep.plain", b"no header"])
else:
    sent, deadline = 0, time.monotonic() + 8
    while time.monotonic() < deadline:
        sent += 1
        batch("noise.x", P, sent, "hidden")
        if s.poll(20) and s.recv() == b"\x00" + prefix:
            print("unsubscribed after", sent, flush=True)
            break
s.close(linger=1000)
EOF

start_relay
note "relay: pub=$PUB_EP sub=$SUB_EP ack=$ACK_EP"

# zsub_bg NAME TOPIC ZSUB-ARGS...: zsub -t TOPIC in the background, once the relay has its
# subscription (each case subscribes to a topic of its own); its environment gets $ZSUB_TZ as TZ.
zsub_bg() {
  local name=$1 topic=$2
  shift 2
  bg "$TEST_TMP/$name.out" "$TEST_TMP/$name.err" env ${ZSUB_TZ:+TZ=$ZSUB_TZ} "$ZSUB" -t "$topic" \
    --sub-connect "$SUB_EP" "$@"
  SUB_PID=$BG_PID
  wait_subscribed "$topic"
}

# finish NAME [STATUS]: wait for zsub and check its status (default 0).
finish() {
  wait_bg "$SUB_PID"
  [[ $BG_STATUS == "${2:-0}" ]] ||
    fail "$1: zsub exited with status $BG_STATUS, expected ${2:-0} (124: hung); output '$(head -c 300 "$TEST_TMP/$1.out" | cat -v)'; stderr: $(head -c 1000 "$TEST_TMP/$1.err")"
}

# expect_output NAME EXPECTED: zsub's output is EXPECTED, byte for byte (printf %b escapes in it).
expect_output() {
  printf '%b' "$2" >"$TEST_TMP/$1.want"
  cmp -s "$TEST_TMP/$1.want" "$TEST_TMP/$1.out" ||
    fail "$1: zsub printed '$(cat -v "$TEST_TMP/$1.out")', expected '$(cat -v "$TEST_TMP/$1.want")'"
}

fields() {
  # Two acked lines, then one from a plain publisher: '-' for its publisher and sequences.
  zsub_bg fields f. -C 3 -F '%t|%p|%x|%X|%l|%i|%s|%n|%j|%%|\t|@@'
  expect_status 0 "$ZPUB" -t f.a --ack-connect "$ACK_EP" <<<$'h\303\251\nsecond'
  expect_status 0 "$PY" "$TEST_TMP/craft.py" "$PUB_EP" f. plain
  finish fields
  local id
  id=$(head -n 1 "$TEST_TMP/fields.out" | cut -d'|' -f6)
  [[ $id =~ ^[0-9a-f]{16}$ ]] || fail "fields: %i printed '$id', not 16 hex digits"
  expect_output fields "f.a|h\303\251|68c3a9|68C3A9|3|$id|1|-|{\"topic\":\"f.a\",\"payload\":\"h\303\251\",\"publisher\":\"$id\",\"seq\":1}|%|\t|@\n"`
    `"f.a|second|7365636f6e64|7365636F6E64|6|$id|2|-|{\"topic\":\"f.a\",\"payload\":\"second\",\"publisher\":\"$id\",\"seq\":2}|%|\t|@\n"`
    `"f.plain|\377|ff|FF|1|-|-|-|{\"topic\":\"f.plain\",\"payload_base64\":\"/w==\"}|%|\t|@\n"
}

nul_terminated() {
  # -0 ends each formatted message with NUL instead of the newline; \n inside the format is text.
  zsub_bg nul n. -C 2 -0 -F '%t\n%p'
  expect_status 0 "$ZPUB" -t n.a --ack-connect "$ACK_EP" <<<$'one\ntwo'
  finish nul
  expect_output nul 'n.a\none\0n.a\ntwo\0'
}

times() {
  # %I in the zone TZ names (5:30 east of UTC, POSIX form: no tzdata needed) and %U, of one moment.
  local before after
  before=$(date +%s)
  ZSUB_TZ=IST-5:30 zsub_bg times t. -C 1 -F '%I %U'
  expect_status 0 "$ZPUB" -t t.a --ack-connect "$ACK_EP" -m x
  finish times
  after=$(date +%s)
  local line iso unix
  line=$(cat "$TEST_TMP/times.out")
  [[ $line =~ ^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+05:30)\ ([0-9]+)\.([0-9]{9})$ ]] ||
    fail "times: zsub -F '%I %U' printed '$line', not an ISO 8601 time (+05:30) and seconds.nanoseconds"
  iso=${BASH_REMATCH[1]} unix=${BASH_REMATCH[2]}
  ((before <= unix && unix <= after)) || fail "times: %U $unix is not between $before and $after"
  [[ $(TZ=IST-5:30 date -d "@$unix" +%Y-%m-%dT%H:%M:%S+05:30) == "$iso" ]] ||
    fail "times: %I '$iso' and %U '$unix' are not the same second"
}

journal() {
  # From a journaling relay, %n is the journal sequence; %s stays the publisher's own.
  start_relay --journal "$TEST_TMP/journal"
  expect_status 0 "$ZPUB" -t j.a --ack-connect "$ACK_EP" <<<$'a\nb'
  expect_status 0 "$ZPUB" -t j.b --ack-connect "$ACK_EP" -m c
  run_cmd "$ZSUB" -t j. --replay-connect "$REPLAY_EP" --all -C 3 -F '%n %s %t %p'
  [[ $LAST_STATUS == 0 ]] || fail "journal: zsub --all exited with status $LAST_STATUS: $(cat "$TEST_TMP/last.err")"
  cp "$TEST_TMP/last.out" "$TEST_TMP/journal.out"
  expect_output journal '1 1 j.a a\n2 2 j.a b\n3 1 j.b c\n'
}

filter_gaps() {
  # Hidden messages do not count for -C 5: zsub stops at the fifth shown, and the four hidden before it
  # were received. Each stream's real gap is reported (the hidden one's too); none is made of hidden messages.
  zsub_bg gaps "" -T drop. -C 5 --stats -F '%t %s %p'
  expect_status 0 "$PY" "$TEST_TMP/craft.py" "$PUB_EP" "" gaps
  finish gaps
  expect_output gaps 'keep 1 keep-1\nkeep 2 keep-2\nkeep 3 keep-3\nkeep 6 keep-6\nkeep.plain - no header\n'
  local err=$TEST_TMP/gaps.err
  grep -q -F "zsub: warning: 2 message(s) missing on topic 'drop.x' from publisher 1122334455667788 (sequence 3 to 4)" "$err" ||
    fail "gaps: no report of the gap in the hidden stream drop.x; stderr: $(cat "$err")"
  grep -q -F "zsub: warning: 2 message(s) missing on topic 'keep' from publisher 1122334455667788 (sequence 4 to 5)" "$err" ||
    fail "gaps: no report of the gap in keep; stderr: $(cat "$err")"
  [[ $(grep -c 'missing on topic' "$err") == 2 ]] || fail "gaps: expected exactly two gap reports; stderr: $(cat "$err")"
  grep -q -E '^zsub: stats received=8 gaps=2 missing=4 ' "$err" ||
    fail "gaps: expected 'received=8 gaps=2 missing=4' in the stats; stderr: $(cat "$err")"
}

idle_with_filter() {
  # Hidden messages keep coming every 20 ms; zsub -W 1 -T noise.x still gives up after about a second.
  local start elapsed
  zsub_bg idle noise -T noise.x -W 1 --stats
  start=$(date +%s%N)
  bg "$TEST_TMP/noise.out" "$TEST_TMP/noise.err" "$PY" "$TEST_TMP/craft.py" "$PUB_EP" noise noise
  local noise=$BG_PID
  finish idle 5
  elapsed=$((($(date +%s%N) - start) / 1000000))
  wait_bg "$noise"
  [[ $BG_STATUS == 0 ]] || fail "idle: the noise publisher failed: $(cat "$TEST_TMP/noise.err")"
  grep -q '^unsubscribed after' "$TEST_TMP/noise.out" ||
    fail "idle: noise was still wanted after 8 s: zsub kept waiting; zsub stderr: $(cat "$TEST_TMP/idle.err")"
  [[ ! -s $TEST_TMP/idle.out ]] || fail "idle: zsub printed hidden messages: $(head -c 200 "$TEST_TMP/idle.out")"
  grep -q -F 'zsub: no message for 1 s' "$TEST_TMP/idle.err" || fail "idle: no idle message; stderr: $(cat "$TEST_TMP/idle.err")"
  local received
  received=$(sed -n 's/^zsub: stats received=\([0-9]*\) .*/\1/p' "$TEST_TMP/idle.err")
  ((received >= 10)) || fail "idle: only '${received}' hidden messages arrived: the noise did not flow"
  ((elapsed < 5000)) || fail "idle: zsub -W 1 took ${elapsed} ms to give up while hidden messages came"
  note "idle: gave up after ${elapsed} ms, with $received hidden messages received"
}

bad_formats() {
  local f
  for f in '%t %y' '%t %' 'x\' '\q' '%10t' '%q' '@Y-@m-@d' ''; do
    expect_status 2 "$ZSUB" -t x -F "$f"
    expect_stderr_one_line
  done
  expect_status 2 "$ZSUB" -t x -F '%t %y'
  expect_stderr_contains "zsub: error: -F: unknown code '%y' (see 'zsub --help')"
  expect_status 2 "$ZSUB" -t x -F 'x\'
  expect_stderr_contains "zsub: error: -F: a lone '\\' at the end"
  expect_status 2 "$ZSUB" -t x -F '%t' --json
  expect_stderr_contains "zsub: error: give either --json or -F"
  expect_status 2 "$ZSUB" -t x -T ''
  expect_stderr_contains 'zsub: error: -T "" would filter out every message'
}

case_ "every -F field, acked and plain" fields
case_ "-F with -0" nul_terminated
case_ "%I and %U" times
case_ "%n from a journal" journal
case_ "-T: -C, gaps and stats" filter_gaps
case_ "-T with -W" idle_with_filter
case_ "bad formats are usage errors" bad_formats
cases_passed
pass "zsub -F and -T as mosquitto_sub users expect"
