#!/usr/bin/env bash
# zsub output formats, binary safety and prefix matching:
#  - zpub -s with all 256 byte values arrives at zsub --json as "payload_base64" (base64 -w0 of the file);
#  - a UTF-8 payload (with quotes, backslash, tab) arrives as a JSON string "payload";
#  - zsub -v prints "TOPIC PAYLOAD"; zsub -0 ends each record with NUL;
#  - zsub -t news receives topics news and newsletter, not sports.
source "$(dirname "$0")/lib.sh"

have_python=false
command -v python3 >/dev/null && python3 -c 'import json, base64' 2>/dev/null && have_python=true

start_relay

# subscribe NAME ZSUB-ARGS...: start zsub in the background (output in $TEST_TMP/NAME.out) and
# wait until the relay has its subscription (the -t given first).
subscribe() {
  local name=$1
  shift
  bg "$TEST_TMP/$name.out" "$TEST_TMP/$name.err" "$ZSUB" --sub-connect "$SUB_EP" "$@"
  SUB_PID=$BG_PID
  wait_subscribed "$2"
}

# finish NAME: wait for that zsub and check it exited 0 without complaints.
finish() {
  wait_bg "$SUB_PID"
  [[ $BG_STATUS == 0 ]] ||
    fail "$1: zsub exited with status $BG_STATUS (124: hung); got '$(head -c 300 "$TEST_TMP/$1.out" | cat -v)'; stderr: $(head -c 1000 "$TEST_TMP/$1.err")"
}

publish() { # publish TOPIC ZPUB-ARGS... (acked; must exit 0)
  local topic=$1
  shift
  expect_status 0 "$ZPUB" -t "$topic" --ack-connect "$ACK_EP" "$@"
}

# 1. binary payload: every byte value once, sent as one message with -s
bin=$TEST_TMP/all-bytes.bin
fmt=
for i in {0..255}; do fmt+=$(printf '\\%03o' "$i"); done
printf "$fmt" >"$bin"
[[ $(wc -c <"$bin") == 256 ]] || fail "test bug: $bin has $(wc -c <"$bin") bytes"
b64=$(base64 -w0 "$bin")

subscribe bin -t bin --json -C 1
publish bin -s <"$bin"
finish bin
json=$(cat "$TEST_TMP/bin.out")
[[ $json == '{"topic":"bin",'* ]] || fail "--json output does not start with {\"topic\":\"bin\",: $json"
[[ $json == *'"payload_base64":"'"$b64"'"'* ]] ||
  fail "--json of the 256 byte values lacks \"payload_base64\":\"$b64\"; got: $json"
[[ $json != *'"payload":'* ]] || fail "--json of a binary payload has a \"payload\" field too: $json"
[[ $(tail -c 1 "$TEST_TMP/bin.out" | od -An -c | tr -d ' ') == '\n' ]] || fail "--json record does not end with a newline"
[[ $(wc -l <"$TEST_TMP/bin.out") == 1 ]] || fail "--json printed $(wc -l <"$TEST_TMP/bin.out") lines for one message"
if $have_python; then
  python3 - "$TEST_TMP/bin.out" "$bin" <<'PY' || fail "--json output of the binary payload is not valid JSON decoding to the input: $json"
import base64, json, sys
obj = json.loads(open(sys.argv[1], "rb").read())
assert obj["topic"] == "bin", obj
assert base64.b64decode(obj["payload_base64"]) == open(sys.argv[2], "rb").read()
PY
fi

# 2. UTF-8 payload with characters JSON must escape
utf='h\303\251llo "w\303\266rld" \342\230\203 back\\slash	tab'
utf=$(printf "$utf")
subscribe utf -t utf --json -C 1
publish utf8 -m "$utf"
finish utf
json=$(cat "$TEST_TMP/utf.out")
[[ $json == '{"topic":"utf8",'* ]] || fail "--json output does not start with {\"topic\":\"utf8\",: $json"
[[ $json != *payload_base64* ]] || fail "a UTF-8 payload came out as payload_base64: $json"
# The escapes JSON requires: \" \\ and a tab as \t (not raw); non-ASCII may stay raw UTF-8 or be \u escaped.
want_raw='"payload":"h\303\251llo \\"w\303\266rld\\" \342\230\203 back\\\\slash\\ttab"'
want_esc='"payload":"h\\u00e9llo \\"w\\u00f6rld\\" \\u2603 back\\\\slash\\ttab"'
[[ $json == *"$(printf "$want_raw")"* || $json == *"$(printf "$want_esc")"* ]] ||
  fail "--json of '$utf' lacks $(printf "$want_raw"); got: $json"
if $have_python; then
  python3 - "$TEST_TMP/utf.out" "$utf" <<'PY' || fail "--json output of a UTF-8 payload is not valid JSON decoding to the input: $json"
import json, sys
obj = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
assert obj == {**obj, "topic": "utf8", "payload": sys.argv[2]}, obj
PY
fi

# 3. -v: topic, space, payload
subscribe verbose -t verb -v -C 2
publish verb -m 'one two'
publish verbatim -m ''
finish verbose
printf 'verb one two\nverbatim \n' | cmp -s - "$TEST_TMP/verbose.out" ||
  fail "zsub -v printed '$(cat -A "$TEST_TMP/verbose.out")', expected 'verb one two\$verbatim \$'"

# 4. -0: NUL-terminated records, payloads with newlines intact
subscribe nul -t nul -0 -C 2
publish nul -m "$(printf 'first\nline')"
publish nul -m 'second'
finish nul
printf 'first\nline\0second\0' | cmp -s - "$TEST_TMP/nul.out" ||
  fail "zsub -0 printed '$(od -An -c "$TEST_TMP/nul.out" | tr -s ' ')', expected 'first\\nline\\0second\\0'"

# 5. prefix matching: news matches newsletter, not sports. Each zpub exits only once its message
# is acked, i.e. after the relay forwarded it, so sports was filtered before newsletter went out.
subscribe news -t news -v -C 3
publish sports -m 'S1'
publish newsletter -m 'L1'
publish sports -m 'S2'
publish news -m 'N1'
publish news.eu -m 'N2'
finish news
printf 'newsletter L1\nnews N1\nnews.eu N2\n' | cmp -s - "$TEST_TMP/news.out" ||
  fail "zsub -t news -v printed '$(cat "$TEST_TMP/news.out")', expected newsletter L1, news N1, news.eu N2 (and no sports)"

stop_relay
pass "binary payload as payload_base64, UTF-8 as payload, -v, -0 and prefix matching"
