#!/usr/bin/env bash
# Federation, delivery through a tree of three relays, each in a network namespace of its own on the
# default ports: edge1 and edge2 with --upstream CORE.
#  - edge -> core -> edge: zpub at edge1 streams N acknowledged lines; the zsub at edge2 receives all N,
#    in order, with no gap; a zsub at edge1 itself gets each once (nothing echoed back by the core);
#    every hop counts exactly N (link_msgs_out, link_msgs_in) and drops none;
#  - core -> both edges: zpub at the core; a zsub on each edge receives all M, in order.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=5000
M=1000
seq -f '%06g' 1 "$N" >"$TEST_TMP/in"
seq -f 'alert %g' 1 "$M" >"$TEST_TMP/alerts"

tree_of_three
for e in edge1 edge2; do
  grep -q " upstream=$(up_ep core)\( \|$\)" "${NODE_OUT[$e]}" ||
    fail "$e's ready line does not say upstream=$(up_ep core): $(cat "${NODE_OUT[$e]}")"
  wait_stat "$e" upstream_up -eq 1
done
wait_stat core links_active -eq 2

# --- edge -> core -> edge ----------------------------------------------------------------------
node_bg edge2 "$TEST_TMP/far" "$TEST_TMP/far.err" "$ZSUB" -t news -H "${NODE_ADDR[edge2]}" -C "$N" --stats
far=$BG_PID
node_bg edge1 "$TEST_TMP/near" "$TEST_TMP/near.err" "$ZSUB" -t news -H "${NODE_ADDR[edge1]}" -W 4 --stats
near=$BG_PID
wait_node_subscribed edge2 news
wait_node_subscribed edge1 news
# edge2's interest reaches edge1 through the core (each edge's own subscription reaches the core too).
wait_stat core link_subs_in -ge 2
wait_stat edge1 link_subs_in -ge 1
node_expect edge1 0 "$ZPUB" -t news -H "${NODE_ADDR[edge1]}" --stats <"$TEST_TMP/in"
wait_bg "$far"
[[ $BG_STATUS == 0 ]] || fail "zsub at edge2 -C $N exited $BG_STATUS (got $(wc -l <"$TEST_TMP/far") lines); stderr: $(cat "$TEST_TMP/far.err")"
cmp -s "$TEST_TMP/far" "$TEST_TMP/in" ||
  fail "zsub at edge2 did not get the $N lines in order: $(diff "$TEST_TMP/in" "$TEST_TMP/far" | head -n 5)"
grep -q '^zsub: stats received='"$N"' gaps=0 missing=0 duplicates=0 ' "$TEST_TMP/far.err" ||
  fail "zsub at edge2 reports gaps or duplicates: $(grep 'zsub: stats' "$TEST_TMP/far.err")"
wait_bg "$near"
[[ $BG_STATUS == 5 ]] || fail "zsub at edge1 -W 4 exited $BG_STATUS, expected 5 (quiet after the stream); stderr: $(cat "$TEST_TMP/near.err")"
cmp -s "$TEST_TMP/near" "$TEST_TMP/in" ||
  fail "zsub at edge1 (the publisher's own relay) got $(wc -l <"$TEST_TMP/near") lines, not the $N once each in order (an echo from the core?): $(diff "$TEST_TMP/in" "$TEST_TMP/near" | head -n 5)"
# Each hop carried each message once.
wait_stat edge1 link_msgs_out -ge "$N"
[[ $STAT == "$N" ]] || fail "edge1 sent $STAT messages on its link, expected $N"
wait_stat core link_msgs_in -ge "$N"
[[ $STAT == "$N" ]] || fail "the core accepted $STAT messages from links, expected $N"
wait_stat core link_msgs_out -ge "$N"
[[ $STAT == "$N" ]] || fail "the core sent $STAT messages on links, expected $N (to edge2 only: edge1 is where they came from)"
wait_stat edge2 link_msgs_in -ge "$N"
[[ $STAT == "$N" ]] || fail "edge2 accepted $STAT messages from its link, expected $N"
for n in core edge1 edge2; do
  [[ $(node_stat "$n" link_dropped) == 0 ]] || fail "node $n counts link_dropped=$(node_stat "$n" link_dropped) with every link up"
done
note "edge1 -> core -> edge2: $N lines in order, each hop $N"

# --- core -> both edges ------------------------------------------------------------------------
subs_before=$(node_stat core link_subs_in)
declare -A sub
for e in edge1 edge2; do
  node_bg "$e" "$TEST_TMP/$e.alerts" "$TEST_TMP/$e.alerts.err" "$ZSUB" -t alert -H "${NODE_ADDR[$e]}" -C "$M" --stats
  sub[$e]=$BG_PID
  wait_node_subscribed "$e" alert
done
wait_stat core link_subs_in -ge $((subs_before + 2))
node_expect core 0 "$ZPUB" -t alert -H "${NODE_ADDR[core]}" <"$TEST_TMP/alerts"
for e in edge1 edge2; do
  wait_bg "${sub[$e]}"
  [[ $BG_STATUS == 0 ]] || fail "zsub at $e -C $M exited $BG_STATUS; stderr: $(cat "$TEST_TMP/$e.alerts.err")"
  cmp -s "$TEST_TMP/$e.alerts" "$TEST_TMP/alerts" ||
    fail "zsub at $e did not get the core's $M lines in order: $(diff "$TEST_TMP/alerts" "$TEST_TMP/$e.alerts" | head -n 5)"
done
for n in core edge1 edge2; do
  node_alive "$n"
done
pass "edge1 -> core -> edge2: $N in order, once per hop, no echo; core -> both edges: $M each"
