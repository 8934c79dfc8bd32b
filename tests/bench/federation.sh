#!/usr/bin/env bash
# bench/federation on a tiny workload: the script runs end to end against linked relays and reports
# every part for one relay and for the chain (the numbers are not checked: benchmarks are not tests).
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
st=0
out=$(timeout 120 "$FEDERATION" --runs 1 --seconds 0.3 --lines 20000 --prefixes 20 2>&1) || st=$?
[ "$st" -eq 0 ] || { echo "$out"; fail "status $st"; }
echo "$out"
for want in '^rate median of 1: one relay [0-9]+ msgs/s, the chain [0-9]+ msgs/s, ratio [0-9.]+$' \
  '^run 1 one: 20000 lines in .* byte-identical$' '^run 1 chain: 20000 lines in .* byte-identical$' \
  '^pipe median of 1: one relay [0-9]+ lines/s, two hops [0-9]+ lines/s, ratio [0-9.]+$' \
  '^run 1 chain: [0-9]+ deliveries/s; subscriber 0: [0-9]+ of [0-9]+, lost [0-9]+; subscriber 1: ' \
  '^fanout median of 1: one relay [0-9]+ deliveries/s, core to a subscriber at each edge [0-9]+ deliveries/s' \
  '^subprop median of 1 runs: one: subscribe hop 1 hop median [0-9.]+ us, hop p99 [0-9.]+ us$' \
  '^subprop median of 1 runs: chain: subscribe hop 2 hop median [0-9.]+ us, hop p99 [0-9.]+ us$' \
  '^subprop median of 1 runs: chain: unsubscribe hop 2 hop median '; do
  grep -qE "$want" <<<"$out" || fail "no line matching '$want'"
done
# The fan-out alone: zbench's subscribers take --relay's two sub= endpoints in turn, so each edge has
# one and core forwards to both links (with both at one edge, the other edge's link would carry nothing).
out=$(timeout 120 "$FEDERATION" --runs 1 --seconds 0.3 fanout 2>&1) || st=$?
[ "$st" -eq 0 ] || { echo "$out"; fail "fanout: status $st"; }
echo "$out"
for e in edge1 edge2; do
  grep -qE "^$e final: .*link_msgs_in=[1-9][0-9]* " <<<"$out" || fail "$e received nothing from core in the fan-out"
done
# Bad arguments: a usage error, status 2.
for args in "--runs 0" "--seconds 0" "--seconds x" "nosuchpart"; do
  st=0
  # shellcheck disable=SC2086
  "$FEDERATION" $args > /dev/null 2>&1 || st=$?
  [ "$st" -eq 2 ] || fail "bench/federation $args: status $st, not 2"
done
