#!/usr/bin/env bash
# Writes the seed corpus for wire_fuzz into tests/fuzz/corpus/ (the files are committed; rerun
# this only to change them). An input is a header frame then a body frame, or a reply frame;
# see the top of wire_fuzz.cpp and docs/PROTOCOL.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/corpus"

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
