#!/usr/bin/env bash
# Federation, 10 000 subscriptions restored after a link reconnect. Tree: edge1 and edge2 with
# --upstream CORE, each relay in a network namespace of its own on the default ports. A Python SUB at
# edge2 (subs_client.py) subscribes to 10 000 distinct prefixes; they reach the core and, through it,
# edge1 (link_subs_in). The core is killed with SIGKILL and started again on the same address: once
# both links are back, the new core has all 10 000 from edge2 again and has passed them on to edge1; then
# one message on each of the 10 000 topics, published at edge1, reaches the Python SUB at edge2.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMD_LIMIT=100
S=10000

tree_of_three

node_bg edge2 "$TEST_TMP/py.out" "$TEST_TMP/py.err" "$FED_PYTHON" -B "$(dirname "${BASH_SOURCE[0]}")/subs_client.py" \
  "tcp://${NODE_ADDR[edge2]}:5560" "$S" 80
py=$BG_PID
wait_for_line "$TEST_TMP/py.out" "subscribed $S" || fail "the Python client did not subscribe; stderr: $(cat "$TEST_TMP/py.err")"
wait_stat edge2 subscriptions -ge "$S" 30
wait_stat core link_subs_in -ge "$S" 30
wait_stat edge1 link_subs_in -ge "$S" 30
before=$STAT
wait_link edge1 up interest -eq "$S"
wait_link core edge2 interest -eq "$S"
note "$S subscriptions at edge2, the core and edge1 (edge1 link_subs_in=$before)"

kill_node core
wait_for_text "${NODE_ERR[edge2]}" "zrelay: link to upstream $(up_ep core): down" ||
  fail "edge2 did not log its link to the core down; its stderr: $(tail -n 5 "${NODE_ERR[edge2]}")"
start_node core
WAIT_LIMIT=30 wait_link_up edge1 core 2
WAIT_LIMIT=30 wait_link_up edge2 core 2
wait_stat core link_subs_in -ge "$S" 30
wait_stat edge1 link_subs_in -ge $((before + S)) 30
after=$STAT
# What each side holds for the other: edge1's link knows the 10 000 prefixes wanted beyond it, the core's
# link from edge2 the same 10 000.
wait_link edge1 up interest -eq "$S"
wait_link core edge2 interest -eq "$S"
note "after the restart: the core has $(node_stat core link_subs_in) subscription changes in, edge1 $after in all"

awk -v n="$S" 'BEGIN { for (i = 0; i < n; i++) printf "k/%05d/t payload %d\n", i, i }' >"$TEST_TMP/in"
node_expect edge1 0 "$ZPUB" --topic-sep ' ' -H "${NODE_ADDR[edge1]}" <"$TEST_TMP/in"
wait_bg "$py"
[[ $BG_STATUS == 0 ]] || fail "the Python client at edge2 exited $BG_STATUS: $(cat "$TEST_TMP/py.out" "$TEST_TMP/py.err")"
grep -q -x "received $S of $S" "$TEST_TMP/py.out" || fail "the Python client says: $(cat "$TEST_TMP/py.out")"
pass "$S subscriptions restored across the core's restart: one message on each of the $S topics arrived"
