#!/usr/bin/env bash
# A tiny zbench run of every scenario: it must complete and report sane JSON. The numbers are
# not checked (benchmarks are not tests); only that nothing was lost where nothing may be.
set -euo pipefail
out=$(timeout 120 "$ZBENCH" --scenario all --msgs 2000 --json --no-progress)
echo "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(grep -c '"scenario"' <<<"$out")" -eq 4 ] || fail "expected 4 scenario lines"
for s in relay relay-ack direct zmq-proxy; do
  line=$(grep "\"scenario\":\"$s\"" <<<"$out") || fail "no line for $s"
  for key in '"size":64' '"sent":2000' '"received":' '"lost":' '"msgs_per_sec":' '"mb_per_sec":' '"p50":' '"p90":' '"p99":' '"p999":' '"max":'; do
    grep -qF "$key" <<<"$line" || fail "$s: missing $key"
  done
  grep -q '"error"' <<<"$line" && fail "$s: $line"
done
# The acked path is lossless by contract.
grep '"scenario":"relay-ack"' <<<"$out" | grep -qF '"received":2000,"lost":0' || fail "relay-ack lost messages"
# Open loop at a fixed rate, clients in processes, the relay as its own process.
out=$(timeout 120 "$ZBENCH" --scenario relay-ack --rate 2000 --msgs 500 --processes --relay-process --zrelay "$ZRELAY" --json --no-progress)
echo "$out"
grep -qF '"received":500,"lost":0' <<<"$out" || fail "rate/process run lost messages"
grep -qF '"relay":{"cpu_percent":' <<<"$out" || fail "no relay CPU/RSS for a relay process"
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
