#!/usr/bin/env bash
# A tiny zbench run of every scenario: it must complete and report sane JSON. The numbers are
# not checked (benchmarks are not tests); only that nothing was lost where nothing may be.
# nats and nats-js need nats-server (scripts/test installs it: ZRELAY_TEST_PACKAGES).
set -euo pipefail
out=$(timeout 120 "$ZBENCH" --scenario all --msgs 2000 --json --no-progress)
echo "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(grep -c '"scenario"' <<<"$out")" -eq 6 ] || fail "expected 6 scenario lines"
for s in relay relay-ack relay-journal relay-plain direct zmq-proxy; do
  line=$(grep "\"scenario\":\"$s\"" <<<"$out") || fail "no line for $s"
  for key in '"size":64' '"sent":2000' '"received":' '"lost":' '"msgs_per_sec":' '"mb_per_sec":' '"p50":' '"p90":' '"p99":' '"p999":' '"max":'; do
    grep -qF "$key" <<<"$line" || fail "$s: missing $key"
  done
  grep -q '"error"' <<<"$line" && fail "$s: $line"
done
# The acked paths are lossless by contract, and every message's acknowledgment was seen.
for s in relay-ack relay-journal; do
  line=$(grep "\"scenario\":\"$s\"" <<<"$out")
  grep -qF '"received":2000,"lost":0' <<<"$line" || fail "$s lost messages"
  grep -qF '"acks":{"answered":2000,"nacked":0,"unanswered":0,' <<<"$line" || fail "$s: acknowledgments missing"
done
# relay-journal's journal was there (its size is reported) and is gone after the run.
grep '"scenario":"relay-journal"' <<<"$out" | grep -qE '"store":\{"bytes":[0-9]+,' || fail "relay-journal: no store size"
grep '"scenario":"relay-ack"' <<<"$out" | grep -qF '"store"' && fail "relay-ack reports a store it does not have"
# Open loop at a fixed rate, clients in processes, the relay as its own process.
out=$(timeout 120 "$ZBENCH" --scenario relay-ack --rate 2000 --msgs 500 --processes --relay-process --zrelay "$ZRELAY" --json --no-progress)
echo "$out"
grep -qF '"received":500,"lost":0' <<<"$out" || fail "rate/process run lost messages"
grep -qF '"relay":{"cpu_percent":' <<<"$out" || fail "no relay CPU/RSS for a relay process"
# The journal with the zrelay binary (--journal), fsync off (--journal-fsync off) and on, its
# directory made under --journal-dir and removed afterwards.
jdir=$(mktemp -d)
trap 'rm -rf "$jdir"' EXIT
for fsync in off on; do
  out=$(timeout 120 "$ZBENCH" --scenario relay-journal --msgs 2000 --processes --relay-process --zrelay "$ZRELAY" \
    --journal-dir "$jdir" --journal-fsync $fsync --json --no-progress)
  echo "$out"
  grep -qF '"received":2000,"lost":0' <<<"$out" || fail "relay-journal (fsync $fsync, relay process) lost messages"
  grep -qF '"acks":{"answered":2000,' <<<"$out" || fail "relay-journal (fsync $fsync): acknowledgments missing"
  [ -z "$(ls -A "$jdir")" ] || fail "relay-journal left its journal behind: $(ls -A "$jdir")"
done
# The peer with its store: nats-server with JetStream, a file-storage stream, acknowledged
# publishes; its store directory is gone afterwards too.
nats=$(command -v nats-server || echo /usr/sbin/nats-server)
[ -x "$nats" ] || fail "no nats-server: apt-get install nats-server"
for s in nats nats-js; do
  out=$(timeout 120 "$ZBENCH" --scenario $s --msgs 2000 --processes --nats-server "$nats" --journal-dir "$jdir" \
    --json --no-progress)
  echo "$out"
  grep -qF '"received":2000,"lost":0' <<<"$out" || fail "$s lost messages"
  grep -qF '"relay":{"cpu_percent":' <<<"$out" || fail "$s: no nats-server CPU/RSS"
done
grep -qF '"acks":{"answered":2000,"nacked":0,"unanswered":0,' <<<"$out" || fail "nats-js: acknowledgments missing"
grep -qE '"store":\{"bytes":[1-9][0-9]*,' <<<"$out" || fail "nats-js: no JetStream store size"
[ -z "$(ls -A "$jdir")" ] || fail "nats-js left its store behind: $(ls -A "$jdir")"
# Many subjects, a new one on every message: every subscriber (the stuck one too) has one wildcard
# subscription covering them, and hears everything.
for s in nats nats-js; do
  out=$(timeout 120 "$ZBENCH" --scenario $s --msgs 2000 --topics 50 --topic-run 1 --stuck 1 --processes \
    --nats-server "$nats" --journal-dir "$jdir" --json --no-progress)
  echo "$out"
  grep -qF '"received":2000,"lost":0' <<<"$out" || fail "$s with 50 subjects lost messages"
done
# nats-min, the yardstick for the nats scenario's client: one subject, 50 subjects, and at a rate.
for args in "--msgs 2000" "--msgs 2000 --subjects 50" "--msgs 200 --rate 2000"; do
  # shellcheck disable=SC2086
  out=$(timeout 60 "$NATS_MIN" --server "$nats" $args) || fail "nats-min $args: $out"
  echo "$out"
  grep -qE '^run 1: received (2000 of 2000|200 of 200):' <<<"$out" || fail "nats-min $args lost messages"
done
# A run's error stays valid JSON whatever it carries (here control characters, a quote and a
# backslash from a path on the command line): escaped, not blanked out or left raw.
bad=$(printf '/nonexistent/nats\001"q\\\tz')
out=$("$ZBENCH" --scenario nats --nats-server "$bad" --json --no-progress) && status=0 || status=$?
echo "$out"
[ "$status" -eq 1 ] || fail "a failed run: expected status 1, got $status"
grep -qF '"error":"nats-server not found at /nonexistent/nats\u0001\"q\\\tz: ' <<<"$out" ||
  fail "the error is not escaped as JSON: $(cat -v <<<"$out")"
if command -v python3 >/dev/null; then
  BAD=$bad python3 -c '
import json, os, sys
line = json.loads(sys.stdin.read())
want = "nats-server not found at " + os.environ["BAD"] + ": apt-get install nats-server"
sys.exit(0 if line["error"] == want else "error read back as %r, not %r" % (line["error"], want))' <<<"$out" ||
    fail "the JSON line does not parse back to the error"
fi
