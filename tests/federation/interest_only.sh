#!/usr/bin/env bash
# Federation, interest only, proven by counters: a topic crosses a link only if someone beyond it
# subscribes (prefix match). Tree: edge1 and edge2 with --upstream CORE, each relay in a network
# namespace of its own on the default ports. Only a zsub at edge2 (-t wanted) and a zsub at edge1
# itself (-t local) subscribe.
#  - at edge1: K lines on a topic nobody subscribes to, K on 'want' (a prefix of the subscription, which
#    it does not match), K on 'local' (subscribed at edge1 only: its zsub gets them), then M on
#    'wanted.a': edge2 gets the M, and edge1's link_msgs_out, the core's msgs_in and link_msgs_in and
#    edge2's link_msgs_in are exactly M - none of the 3K ever left edge1;
#  - at the core: K on the topic nobody subscribes to, then one on 'wanted.b': the core's link_msgs_out
#    grows by 1 only, and edge1, where only 'local' is subscribed, accepts nothing from its link
#    (link_msgs_in 0 throughout).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
K=1000
M=100

tree_of_three

node_bg edge2 "$TEST_TMP/far" "$TEST_TMP/far.err" "$ZSUB" -t wanted -H "${NODE_ADDR[edge2]}" -W 4 --stats
far=$BG_PID
node_bg edge1 "$TEST_TMP/local" "$TEST_TMP/local.err" "$ZSUB" -t local -H "${NODE_ADDR[edge1]}" -C "$K"
local_sub=$BG_PID
wait_node_subscribed edge2 wanted
wait_node_subscribed edge1 local
# Both subscriptions reach the core (edge1's 'local' too: the core cannot know nobody beyond it wants
# it); edge2's 'wanted' reaches edge1.
wait_stat core link_subs_in -ge 2
wait_stat edge1 link_subs_in -ge 1

pub_at() { # pub_at NODE TOPIC COUNT: COUNT acked lines on TOPIC at NODE's relay
  seq -f "$2 %g" 1 "$3" >"$TEST_TMP/pub.in"
  node_expect "$1" 0 "$ZPUB" -t "$2" -H "${NODE_ADDR[$1]}" <"$TEST_TMP/pub.in"
}
pub_at edge1 nobody "$K"
pub_at edge1 want "$K"
pub_at edge1 local "$K"
wait_bg "$local_sub"
[[ $BG_STATUS == 0 ]] || fail "zsub -t local at edge1 exited $BG_STATUS; stderr: $(cat "$TEST_TMP/local.err")"
pub_at edge1 wanted.a "$M"
wait_for_line "$TEST_TMP/far" "wanted.a $M" || fail "the zsub at edge2 did not get 'wanted.a $M'; it got $(wc -l <"$TEST_TMP/far") lines"

[[ $(node_stat edge1 msgs_in) == $((3 * K + M)) ]] || fail "edge1 accepted $(node_stat edge1 msgs_in) messages, expected $((3 * K + M))"
expect_counts() { # expect_counts WHEN: the counters of the M that crossed, and nothing else
  local n c
  for n in edge1:link_msgs_out core:msgs_in core:link_msgs_in core:link_msgs_out edge2:link_msgs_in; do
    c=$(node_stat "${n%%:*}" "${n#*:}")
    [[ $c == "$1" ]] || fail "${n%%:*}'s ${n#*:} is $c, expected $1: only the topic edge2 subscribes to may cross ($2)"
  done
}
expect_counts "$M" "after edge1 published $K on each of nobody, want, local and $M on wanted.a"
note "from edge1: only the $M wanted.a crossed"

# From the core: nobody's topic goes to neither edge.
pub_at core nobody "$K"
node_expect core 0 "$ZPUB" -t wanted.b -H "${NODE_ADDR[core]}" -m fence
wait_for_line "$TEST_TMP/far" fence || fail "the zsub at edge2 did not get the core's 'fence' on wanted.b"
c=$(node_stat core link_msgs_out)
[[ $c == $((M + 1)) ]] || fail "the core's link_msgs_out is $c after $K on 'nobody' and one on 'wanted.b', expected $((M + 1))"
c=$(node_stat edge1 link_msgs_in)
[[ $c == 0 ]] || fail "edge1 accepted $c messages from its link; nobody at edge1 subscribes to what was published beyond it"

wait_bg "$far"
[[ $BG_STATUS == 5 ]] || fail "zsub at edge2 -W 4 exited $BG_STATUS, expected 5; stderr: $(cat "$TEST_TMP/far.err")"
got=$(wc -l <"$TEST_TMP/far")
[[ $got == $((M + 1)) ]] || fail "the zsub at edge2 got $got lines, expected $((M + 1)): $(grep -v '^wanted' "$TEST_TMP/far" | head -n 3)"
pass "$((3 * K)) lines nobody beyond edge1 wanted stayed there, $K at the core stayed there; the $M + 1 wanted crossed"
