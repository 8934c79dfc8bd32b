#!/usr/bin/env bash
# Bad input never kills the relay. With bash and coreutils only (bash's /dev/tcp, printf):
#  1. raw garbage on every port: 4 KiB of random bytes, a half ZMTP greeting, a greeting followed
#     by garbage, and a burst of 100 connections opened at once and dropped;
#  2. a hand-made ZMTP 3.0 DEALER on the ack (ROUTER) port sending malformed zrelay frames (wrong
#     frame count, bad magic, unknown version, truncated header, zero ids, lying record lengths,
#     overflowing sequence, a reply kind from a publisher), then one valid batch as a sentinel:
#     since one connection is processed in order, its arrival at zsub proves the relay got past all
#     of the garbage; the relay must have NACKed and counted each one;
#  3. a hand-made ZMTP PUB on the XSUB port sending a 70-frame message, then a plain sentinel;
# and the relay still delivers zpub -> zsub, and stops cleanly with the malformed messages counted.
source "$(dirname "$0")/lib.sh"

start_relay
hostport() { local ep=${1#tcp://}; echo "${ep%:*} ${ep##*:}"; }

# ---- byte helpers: strings of printf escapes --------------------------------------------------
hex8() { printf '\\x%02x' $(($1 & 255)); }
be32() { local v=$1; hex8 $((v >> 24)); hex8 $((v >> 16)); hex8 $((v >> 8)); hex8 "$v"; }
be64() { be32 $((($1 >> 32) & 0xffffffff)); be32 $(($1 & 0xffffffff)); }
# header VERSION KIND COUNT PUBLISHER SEQ TOPIC_SEQ ACK_FLOOR: a 40-byte zrelay batch header
header() { printf "ZR$(hex8 "$1")$(hex8 "$2")$(be32 "$3")$(be64 "$4")$(be64 "$5")$(be64 "$6")$(be64 "$7")"; }
record() { printf "$(be32 ${#1})%s" "$1"; } # one length-prefixed record of a batch body

# zmtp_frames FILE...: one ZMTP 3 message whose frames are the contents of the files.
zmtp_frames() {
  local i=0 n=$# f size flags
  for f in "$@"; do
    i=$((i + 1))
    size=$(wc -c <"$f")
    flags=$((i < n ? 1 : 0))
    if ((size < 256)); then
      printf "$(hex8 $flags)$(hex8 "$size")"
    else
      printf "$(hex8 $((flags | 2)))$(be64 "$size")"
    fi
    cat "$f"
  done
}

# zmtp_greeting: ZMTP 3.0 greeting, NULL mechanism, as client (64 bytes).
zmtp_greeting() {
  printf '\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f\x03\x00NULL'
  head -c 16 /dev/zero # mechanism padded to 20 bytes
  head -c 32 /dev/zero # as-server 0, filler
}
# zmtp_ready SOCKET-TYPE: the READY command of the NULL mechanism.
zmtp_ready() {
  local type=$1
  local body_len=$((6 + 12 + 4 + ${#type}))
  printf "\\x04$(hex8 $body_len)\\x05READY\\x0bSocket-Type$(be32 ${#type})%s" "$type"
}
zmtp_hello() { zmtp_greeting; zmtp_ready "$1"; }

# zmtp_session FD SOCKET-TYPE STREAM-FILE: handshake on FD step by step as a real peer does (libzmq
# 4.3 stalls when a peer's greeting, READY and messages arrive in one segment), then send the file.
zmtp_session() {
  local fd=$1 type=$2 stream=$3 size
  zmtp_greeting >&"$fd"
  timeout "$WAIT_LIMIT" head -c 64 <&"$fd" >"$TEST_TMP/peer.greeting" || return 1
  [[ $(wc -c <"$TEST_TMP/peer.greeting") == 64 ]] || return 1
  zmtp_ready "$type" >&"$fd"
  size=$(timeout "$WAIT_LIMIT" head -c 2 <&"$fd" | od -An -tu1 | awk '{ print $2 }')
  [[ -n $size ]] || return 1
  timeout "$WAIT_LIMIT" head -c "$size" <&"$fd" >"$TEST_TMP/peer.ready" || return 1
  grep -q READY "$TEST_TMP/peer.ready" || return 1
  cat "$stream" >&"$fd"
}

# zmtp_deliver ENDPOINT SOCKET-TYPE STREAM-FILE OUT-FILE SENTINEL: connect to ENDPOINT, run
# zmtp_session and keep the connection until OUT-FILE (a zsub's output) holds the line SENTINEL,
# so nothing is discarded on close. Status 1: no connection, 3: the ZMTP handshake failed,
# 2: SENTINEL did not arrive within WAIT_LIMIT.
zmtp_deliver() {
  local host port type=$2 stream=$3 out=$4 sentinel=$5
  read -r host port < <(hostport "$1")
  (
    trap '' PIPE
    exec {s}<>"/dev/tcp/$host/$port" || exit 1
    zmtp_session "$s" "$type" "$stream" || exit 3
    wait_for_line "$out" "$sentinel" || exit 2
    exec {s}>&-
  )
}

# frame NAME COMMAND...: the output of COMMAND becomes frame file $TEST_TMP/f.NAME (NULs kept).
frame() {
  local name=$1
  shift
  "$@" >"$TEST_TMP/f.$name"
}
F() { local a=(); for n in "$@"; do a+=("$TEST_TMP/f.$n"); done; zmtp_frames "${a[@]}"; }

# ---- 1. raw garbage on every port ----------------------------------------------------------------
raw_garbage() { # HOST PORT
  local host=$1 port=$2 s i
  (
    trap '' PIPE
    exec {s}<>"/dev/tcp/$host/$port" || exit 1
    head -c 4096 /dev/urandom >&"$s"
    exec {s}>&-
    exec {s}<>"/dev/tcp/$host/$port" || exit 1
    printf '\xff\x00\x00\x00\x00' >&"$s" # half a greeting, then hang up
    exec {s}>&-
    exec {s}<>"/dev/tcp/$host/$port" || exit 1
    printf '\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f\x03\x00CURVE' >&"$s" # a mechanism we do not speak
    head -c 600 /dev/urandom >&"$s"
    exec {s}>&-
    exec {s}<>"/dev/tcp/$host/$port" || exit 1
    zmtp_hello DEALER >&"$s"
    head -c 2048 /dev/urandom >&"$s" # garbage after a good handshake
    exec {s}>&-
    exec {s}<>"/dev/tcp/$host/$port" || exit 1
    printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&"$s"
    exec {s}>&-
    local fds=()
    for i in {1..100}; do
      exec {s}<>"/dev/tcp/$host/$port" || exit 1
      fds+=("$s")
    done
    for s in "${fds[@]}"; do exec {s}>&-; done
  ) 2>/dev/null || fail "could not connect to $host:$port to send garbage"
}
for ep in "$PUB_EP" "$SUB_EP" "$ACK_EP"; do
  raw_garbage $(hostport "$ep")
  expect_relay_alive "after raw garbage on $ep"
done
note "raw garbage sent to $PUB_EP, $SUB_EP and $ACK_EP"

# ---- 2. malformed zrelay frames on the ack (ROUTER) port -----------------------------------------
frame topic printf garbage
frame one printf 'not a zrelay message at all'
frame zr printf ZR
frame hdr_v9 header 9 1 1 $((0x1122)) 1 1 0
frame hdr_magic eval 'printf XX; header 1 1 1 $((0x1122)) 1 1 0 | tail -c 38'
frame hdr_short eval 'header 1 1 1 $((0x1122)) 1 1 0 | head -c 20'
frame hdr_long eval 'header 1 1 1 $((0x1122)) 1 1 0; printf trailing'
frame hdr_zero header 1 1 1 0 0 1 0
frame hdr_2 header 1 1 2 $((0xabcd)) 1 1 0
frame hdr_kind header 1 2 1 $((0x1122)) 1 1 0
frame hdr_count0 header 1 1 0 $((0x2233)) 1 1 0
frame hdr_wrap header 1 1 $((0xffffffff)) $((0xbeef)) $((0x7ffffffffffffff0)) 1 0
frame hdr_huge header 1 1 $((0xffffffff)) $((0x3344)) 1 1 0
frame body record payload
frame body_lie eval 'printf "$(be32 $((0xfffffff0)))x"'
frame body_short eval 'printf "$(be32 10)abc"'
frame body_extra eval 'record one; record two; record three'
frame empty true
frame sentinel_hdr header 1 1 1 $((0x5e471)) 1 1 1
frame sentinel_body record 'sentinel after garbage'
for f in "$TEST_TMP"/f.hdr_{v9,magic,long,zero,2,kind,count0,wrap,huge}; do
  size=$(wc -c <"$f")
  want=40
  [[ $f == *long ]] && want=48
  [[ $size == "$want" ]] || fail "test bug: $f has $size bytes, not $want"
done

bg "$TEST_TMP/sub.out" "$TEST_TMP/sub.err" "$ZSUB" -t garbage --sub-connect "$SUB_EP" -C 3
sub=$BG_PID
wait_subscribed garbage

{
  F one                               # 1 frame
  F topic zr                          # 2 frames, header truncated
  F topic hdr_v9 body                 # unknown protocol version
  F topic hdr_magic body              # bad magic
  F topic hdr_short body              # truncated header
  F topic hdr_long body               # trailing bytes after the header
  F topic hdr_zero body               # publisher id and sequence 0
  F topic hdr_2 body_lie              # record length beyond the frame
  F topic hdr_2 body_short            # truncated record
  F topic hdr_2 body_extra            # more records than the count
  F topic hdr_kind body               # an ACK sent by a publisher
  F topic hdr_count0 empty            # zero messages
  F topic hdr_wrap empty              # sequence + count overflows 64 bits
  F topic hdr_huge body               # count says 4 billion, body holds one
  F topic hdr_2 body body body        # 5 frames
  F empty empty empty                 # empty frames
  F topic sentinel_hdr sentinel_body  # a valid batch: must be delivered
} >"$TEST_TMP/ack.stream"
[[ -n ${KEEP_STREAM:-} ]] && cp "$TEST_TMP/ack.stream" "$KEEP_STREAM"
zmtp_deliver "$ACK_EP" DEALER "$TEST_TMP/ack.stream" "$TEST_TMP/sub.out" 'sentinel after garbage' ||
  fail "the valid batch sent after the malformed ones on $ACK_EP never reached zsub (status $?; 3: the ZMTP handshake failed); relay stderr: $(tail -n 8 "$RELAY_ERR")"
expect_relay_alive "after malformed frames on the ack socket"
for reason in "unsupported version" "expected 3 frames" "header: " "body: " "must not be zero"; do
  grep -a -q -F "$reason" "$RELAY_ERR" ||
    fail "the relay (-v) did not log a refusal mentioning '$reason'; its stderr: $(grep -a refused "$RELAY_ERR" | head -n 20)"
done
note "relay refused: $(grep -a -c 'warning: refused' "$RELAY_ERR") malformed batches on the ack socket"

# ---- 3. a PUB on the XSUB port: too many frames, then a plain message --------------------------
frame plain_payload printf 'plain sentinel'
many=()
for i in {1..70}; do many+=(topic); done
{
  F "${many[@]}"
  F topic empty
  F topic plain_payload
} >"$TEST_TMP/pub.stream"
zmtp_deliver "$PUB_EP" PUB "$TEST_TMP/pub.stream" "$TEST_TMP/sub.out" 'plain sentinel' ||
  fail "the plain message sent after a 70-frame one on $PUB_EP never reached zsub; relay stderr: $(tail -n 8 "$RELAY_ERR")"
wait_bg "$sub"
[[ $BG_STATUS == 0 ]] || fail "zsub -t garbage -C 3 exited with status $BG_STATUS; stderr: $(cat "$TEST_TMP/sub.err")"
printf 'sentinel after garbage\n\nplain sentinel\n' | cmp -s - "$TEST_TMP/sub.out" ||
  fail "zsub -t garbage got '$(cat -A "$TEST_TMP/sub.out")'; expected the batch sentinel, the empty plain message and the plain sentinel"

# ---- the relay still serves, and counted what it refused -----------------------------------------
check_pubsub after 'still delivering'
stop_relay
malformed=$(relay_counter malformed)
((malformed >= 10)) || fail "the relay counted only malformed=$malformed: $RELAY_FINAL"
note "final: $RELAY_FINAL"
# Counters count what arrived: a malformed batch whose header claims 4 294 967 295 records is one
# refused message, not four billion (the relay cannot know how many a lying header really held).
for counter in msgs_in nacks; do
  value=$(relay_counter $counter)
  ((value < 1000)) ||
    fail "after ~30 malformed batches the relay reports $counter=$value (taken from the headers' record counts): $RELAY_FINAL"
done
pass "the relay survived garbage on every port and malformed frames on the ack socket"
