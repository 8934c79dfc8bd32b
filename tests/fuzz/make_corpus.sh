#!/usr/bin/env bash
# Writes the seed corpora (the files are committed; rerun this only to change them):
# tests/fuzz/corpus/ for wire_fuzz, an input a header frame then a body frame, or a reply frame;
# tests/fuzz/ingress_corpus/ for ingress_fuzz, settings then length-prefixed frames;
# tests/fuzz/journal_corpus/ for journal_fuzz, settings then segment bytes;
# tests/fuzz/control_corpus/ for control_fuzz, a count then u8-length-prefixed frames.
# See the top of each target and docs/PROTOCOL.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/corpus"

byte() { printf "\\x$(printf %02x $(($1 & 255)))"; }
u32() { byte $(($1 >> 24)); byte $(($1 >> 16)); byte $(($1 >> 8)); byte "$1"; }
u64() { u32 $(($1 >> 32 & 0xffffffff)); u32 $(($1 & 0xffffffff)); }
# header COUNT PUBLISHER SEQ TOPIC_SEQ ACK_FLOOR [VERSION] [KIND]
header() { printf ZR; byte "${6:-1}"; byte "${7:-1}"; u32 "$1"; u64 "$2"; u64 "$3"; u64 "$4"; u64 "$5"; }
record() { u32 ${#1}; printf %s "$1"; }
# reply KIND COUNT PUBLISHER SEQ REASON TEXT
reply() { printf ZR; byte 1; byte "$1"; u32 "$2"; u64 "$3"; u64 "$4"; byte "$5"; printf %s "$6"; }

{ header 1 7 1 1 0; record hello; } >batch-one
{ header 2 0x0102030405060708 41 9 40; record hi; record ''; } >batch-two-acked
{ header 3 99 1000 500 0; record a; record bb; record ccc; } >batch-three
{ header 1 5 1 1 0; } >header-only
{ header 2 5 1 1 0; record only-one; } >batch-short-count
{ header 1 5 1 1 0; u32 1000; printf abc; } >batch-long-length
{ header 1 5 1 1 0; record x; printf junk; } >batch-trailing
{ header 1 5 1 1 0 2; record future; } >header-version-2
{ header 0 5 1 1 0; } >header-count-zero
head -c 20 header-only >header-truncated
reply 2 0 7 41 0 '' >reply-ack
reply 3 2 7 42 1 'too large' >reply-nack
reply 4 0 7 40 0 '' >reply-expect

# ingress_fuzz: settings (size limit index, topic limit index, how `next` is made, its value),
# then frames, each a u16 length and its bytes. The limits' indexes (see ingress_fuzz.cpp):
# size 1: 1 byte, 3: 8, 5: 1000; topic 2: 4 bytes, 4: 512.
mkdir -p "$here/ingress_corpus"
cd "$here/ingress_corpus"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
u16() { byte $(($1 >> 8)); byte "$1"; }
# at SIZE TOPIC DELTA: next is the batch's seq + DELTA (-128 to 127); after END DELTA: its end + DELTA.
at() { byte "$1"; byte "$2"; byte 1; byte "$3"; u32 0; u16 0; byte 0; }
after() { byte "$1"; byte "$2"; byte 2; byte "$3"; u32 0; u16 0; byte 0; }
# frame WORDS: one frame of what the command prints (frame text: a frame of that text).
frame() { "$@" >"$tmp"; u16 "$(stat -c %s "$tmp")"; cat "$tmp"; }
text() { printf %s "$1"; }
records() { for r in "$@"; do record "$r"; done; }
# an acked header: header COUNT PUBLISHER SEQ TOPIC_SEQ FLOOR [VERSION]
acked() { frame text "$1"; frame header "${@:2}"; }

{ at 5 4 0; acked t 1 7 1 1 1; frame record hello; } >acked-one
{ at 5 4 0; acked t 3 7 10 4 9; frame records a bb ccc; } >acked-three
{ after 5 4 0; acked t 2 7 10 1 10; frame records a b; } >acked-duplicate
{ at 5 4 -1; acked t 2 7 10 1 10; frame records a b; } >acked-expect
{ at 5 4 1; acked t 3 7 10 1 10; frame records a b c; } >acked-overlap
{ at 5 2 0; acked '' 1 7 1 1 1; frame record x; } >acked-empty-topic
{ at 5 2 0; acked toolong 1 7 1 1 1; frame record x; } >acked-long-topic
{ at 5 4 0; acked t 1 7 1 0 1; frame record x; } >acked-topic-seq-zero
{ at 3 4 0; acked t 5 7 20 1 20; frame records a 0123456789 b 0123456789abc c; } >acked-split
{ at 3 4 0; acked t 2 7 20 1 20; frame records 0123456789 0123456789abc; } >acked-all-over
{ at 1 4 0; acked t 130 7 1 1 1; frame records $(for i in $(seq 65); do echo o xx; done); } >acked-65-runs
{ at 5 4 0; acked t 1 0 1 1 1; frame record x; } >acked-zero-id
{ at 5 4 0; acked t 1 7 5 1 0; frame record x; } >acked-floor-zero
{ at 5 4 0; acked t 1 7 5 1 6; frame record x; } >acked-floor-above-seq
{ at 5 4 0; acked t 2 7 0xfffffffffffffffe 1 1; frame records a b; } >acked-seq-wraps
{ at 5 4 0; acked t 2 7 1 0xffffffffffffffff 1; frame records a b; } >acked-topic-seq-wraps
{ at 5 4 0; acked t 0xffffffff 7 1 1 1; } >frames-two-claiming-max
{ at 5 4 0; acked t 1 7 1 1 1; frame record x; frame text extra; } >frames-four
{ at 5 4 0; acked t 1 7 1 1 1 2; frame record x; } >header-version-2
{ at 5 4 0; frame text t; frame text ZR$'\x01\x01'; frame record x; } >header-truncated
{ at 5 4 0; acked t 3 7 1 1 1; frame records a b; } >body-short
{ at 5 4 0; frame text hello; } >plain-one-frame
{ at 3 4 0; frame text topic; frame text 0123456789; } >plain-too-large
{ at 5 2 0; frame text toolong; frame text x; } >plain-long-topic
{ at 5 4 0; frame text t; frame text a; frame text b; frame text c; frame text d; } >plain-many-frames
{ at 5 4 0; for i in $(seq 65); do frame text f; done; } >plain-65-frames
{ at 3 4 0; acked t 3 0 0 0 0; frame records a 0123456789 b; } >fire-and-forget-split

# journal_fuzz: settings (flags: 1 two segments, 2 fix the CRCs, 4 1 KiB segments; where the second
# segment begins, u16; its name, u64), then the segments' entries (zrelay/record.hpp). The seeds
# set flag 2: their CRC fields are zero and the target computes them.
mkdir -p "$here/journal_corpus"
cd "$here/journal_corpus"
rm -f ./*
settings() { byte "$1"; byte $(($2 >> 8)); byte "$2"; u64 "$3"; }
# frames of an entry: u32 size, bytes
jframe() { u32 ${#1}; printf %s "$1"; }
# plain JSEQ TIME FRAME...: a plain entry (CRC 0)
plain() {
  local jseq=$1 time=$2 body="" f
  shift 2
  local len=20
  for f in "$@"; do len=$((len + 4 + ${#f})); done
  printf ZRJ1; u32 0; u32 $len; u64 "$jseq"; u64 "$time"; byte 2; byte 0; byte 0; byte $#
  for f in "$@"; do jframe "$f"; done
}
# batchentry JSEQ TIME TOPIC PUBLISHER SEQ RECORD...: a batch entry of those records (CRC 0)
batchentry() {
  local jseq=$1 time=$2 topic=$3 pub=$4 seq=$5 r n
  shift 5
  n=$#
  local body_len=0
  for r in "$@"; do body_len=$((body_len + 4 + ${#r})); done
  local len=$((20 + 4 + ${#topic} + 4 + 40 + 4 + body_len))
  printf ZRJ1; u32 0; u32 $len; u64 "$jseq"; u64 "$time"; byte 1; byte 0; byte 0; byte 3
  jframe "$topic"; u32 40; header "$n" "$pub" "$seq" "$seq" 1; u32 $body_len
  for r in "$@"; do record "$r"; done
}
{ settings 2 0 0; plain 1 10 topic one; plain 2 11 topic two; } >two-plain
{ settings 2 0 0; batchentry 1 10 t 7 1 a bb ccc; plain 4 11 only-frame; } >batch-then-plain
{ settings 2 0 0; plain 1 10 a x; plain 2 11 a y; printf 'ZRJ1\0\0\0\0\0\0\0\x40torn'; } >torn-tail
{ settings 2 0 0; plain 1 10 a x; printf 'garbage in the middle'; plain 2 11 a y; } >damage-in-middle
{ settings 3 84 5; plain 1 10 a x; plain 2 11 a y; plain 5 12 b z; batchentry 6 13 t 9 40 r s; } >two-segments
{ settings 3 84 9; plain 1 10 a x; plain 2 11 a y; plain 3 12 b z; } >second-name-disagrees
{ settings 1 42 1; plain 1 10 a x; plain 2 11 a y; } >no-crc-fix
{ settings 6 0 0; for i in $(seq 1 20); do plain "$i" "$i" topic "payload number $i of twenty"; done; } >small-segments

# control_fuzz: a byte of frames seen beyond those given, then frames, each a u8 length and its
# bytes; the input after the first byte is also tried as a --control-bind endpoint.
mkdir -p "$here/control_corpus"
cd "$here/control_corpus"
printf '\x00\x05stats' >stats
printf '\x00\x06reload' >reload
printf '\x00\x05stats\x06reload' >two-frames
printf '\x03\x05stats' >frames-not-kept
printf '\x00\x00' >empty
printf '\x00\x03\x00\xff\x10' >binary
printf '\x00\x08shutdown' >unknown
printf '\x00tcp://127.0.0.1:5563' >bind-loopback
printf '\x00tcp://*:5563' >bind-any
printf '\x00ipc:///run/zrelay/control' >bind-ipc
