#!/usr/bin/env bash
# Federation, CURVE on the links with the core's allowlist. Keys from 'zrelay keygen NAME'. Each relay
# in a network namespace of its own on the default ports:
#  - core: --curve-key core.key --allow-keys listing edge1's and edge2's public keys;
#  - edge1, edge2: --curve-key edgeN.key --allow-keys (the client's key) --upstream CORE
#    --upstream-server-key core.pub (edge1 the file, edge2 the 40 characters);
#  - rogue: the same with a key of its own that the core does not list.
# edge1 -> core -> edge2 carries N lines in order (zpub and zsub with CURVE too); the rogue's link is
# refused (the core counts it in clients_refused, the rogue never says its link is active), and nothing
# crosses between the rogue and the others in either direction.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=1000
K=$TEST_TMP/keys
mkdir "$K"
for name in core edge1 edge2 rogue client; do
  (cd "$K" && timeout 10 "$ZRELAY" keygen "$name") >/dev/null 2>"$TEST_TMP/keygen.err" ||
    fail "zrelay keygen $name failed: $(cat "$TEST_TMP/keygen.err")"
done
cat "$K/edge1.pub" "$K/edge2.pub" >"$K/core.allow"
cp "$K/client.pub" "$K/edge.allow"
seq -f 'secret %g' 1 "$N" >"$TEST_TMP/in"

node core
node edge1
node edge2
node rogue
start_node core --curve-key "$K/core.key" --allow-keys "$K/core.allow"
start_node edge1 --curve-key "$K/edge1.key" --allow-keys "$K/edge.allow" \
  --upstream "${NODE_ADDR[core]}" --upstream-server-key "$K/core.pub"
start_node edge2 --curve-key "$K/edge2.key" --allow-keys "$K/edge.allow" \
  --upstream "${NODE_ADDR[core]}" --upstream-server-key "$(head -c 40 "$K/core.pub")"
wait_link_up edge1 core
wait_link_up edge2 core

client() { # client NODE: the CURVE options of a zpub or zsub talking to NODE's relay
  echo --curve-key "$K/client.key" --curve-server-key "$K/$1.pub"
}
# shellcheck disable=SC2046 # the key paths have no spaces
node_bg edge2 "$TEST_TMP/far" "$TEST_TMP/far.err" "$ZSUB" -t secret -H "${NODE_ADDR[edge2]}" $(client edge2) -C "$N" --stats
far=$BG_PID
wait_node_subscribed edge2 secret
wait_stat edge1 link_subs_in -ge 1
# shellcheck disable=SC2046
node_expect edge1 0 "$ZPUB" -t secret -H "${NODE_ADDR[edge1]}" $(client edge1) <"$TEST_TMP/in"
wait_bg "$far"
[[ $BG_STATUS == 0 ]] || fail "zsub (CURVE) at edge2 -C $N exited $BG_STATUS; stderr: $(cat "$TEST_TMP/far.err")"
cmp -s "$TEST_TMP/far" "$TEST_TMP/in" || fail "zsub at edge2 did not get the $N lines in order: $(diff "$TEST_TMP/in" "$TEST_TMP/far" | head -n 5)"
[[ $(node_stat core clients_refused) == 0 ]] || fail "the core refused a client before the rogue came: $(node_stat core clients_refused)"
note "edge1 -> core -> edge2 under CURVE: $N lines in order"

# The rogue edge: a key the core does not list.
start_node rogue --curve-key "$K/rogue.key" --allow-keys "$K/edge.allow" \
  --upstream "${NODE_ADDR[core]}" --upstream-server-key "$K/core.pub"
wait_stat core clients_refused -ge 1 20
[[ $(node_stat rogue upstream_up) == 0 ]] || fail "the rogue's upstream_up is 1 although the core refuses its key"
! grep -q "link to upstream $(up_ep core): active" "${NODE_ERR[rogue]}" ||
  fail "the rogue says its link is active: $(grep 'link to upstream' "${NODE_ERR[rogue]}")"
[[ $(node_stat core links_active) == 2 ]] ||
  fail "the core counts $(node_stat core links_active) active links, expected 2 (edge1, edge2; not the rogue)"

# Nothing crosses: the rogue's subscriber gets nothing published at edge1, edge2's nothing published
# at the rogue (each direction ended by a fence that does arrive where the links are).
# shellcheck disable=SC2046
node_bg rogue "$TEST_TMP/rogue" "$TEST_TMP/rogue.err" "$ZSUB" -t secret -H "${NODE_ADDR[rogue]}" $(client rogue) -W 4
rogue_sub=$BG_PID
# shellcheck disable=SC2046
node_bg edge2 "$TEST_TMP/far2" "$TEST_TMP/far2.err" "$ZSUB" -t secret -H "${NODE_ADDR[edge2]}" $(client edge2)
far2=$BG_PID
wait_node_subscribed rogue secret
wait_node_subscribed edge2 secret 2
# shellcheck disable=SC2046
node_expect rogue 0 "$ZPUB" -t secret -H "${NODE_ADDR[rogue]}" $(client rogue) -m from-the-rogue
wait_for_line "$TEST_TMP/rogue" from-the-rogue || fail "the rogue's own subscriber did not get its local message"
# shellcheck disable=SC2046
node_expect edge1 0 "$ZPUB" -t secret -H "${NODE_ADDR[edge1]}" $(client edge1) -m fence
wait_for_line "$TEST_TMP/far2" fence || fail "the fence from edge1 did not reach edge2"
wait_bg "$rogue_sub"
[[ $BG_STATUS == 5 ]] || fail "the rogue's zsub -W 4 exited $BG_STATUS, expected 5; stderr: $(cat "$TEST_TMP/rogue.err")"
[[ $(cat "$TEST_TMP/rogue") == from-the-rogue ]] || fail "the rogue's subscriber got messages from beyond: $(head -n 3 "$TEST_TMP/rogue")"
kill -TERM "$far2"
wait_bg "$far2"
! grep -q -x from-the-rogue "$TEST_TMP/far2" || fail "edge2's subscriber got the rogue's message"
for n in core edge1 edge2 rogue; do node_alive "$n"; done
pass "CURVE links: $N lines edge1 -> core -> edge2; the rogue key refused (clients_refused=$(node_stat core clients_refused)), nothing crossed"
