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
