# Shared by the federation tests: linked relays on real addresses, each in a network namespace of its own.
# Source it from a test script; the binaries come from $ZRELAY, $ZPUB and $ZSUB (ctest sets them).
#
# Each script builds a small network of its own and removes it on any exit (the trap of tests/cli/lib.sh,
# which this file sources: bg, run_cmd, expect_status, wait_for_line and wait_for_text come from there):
#  - a hub namespace zf<PID>-hub holding a bridge zfbr<PID>. Nothing is added to the host's own network:
#    no interface, address or route outside the namespaces the test creates;
#  - per relay, a node: namespace zf<PID>-NAME with loopback up and eth0, a veth to the bridge, carrying
#    10.77.X.N/24 (X from the PID); those addresses exist only on that bridge, so traffic goes nowhere else;
#  - in its node zrelay binds the node's address on the default ports (5559, 5560, 5561; 5562 with
#    --journal) and keeps the default control socket tcp://127.0.0.1:5563, the node's own loopback, so
#    `node_stat NAME COUNTER` reads that relay's counters with `zrelay ctl stats`. Each node has a host
#    name of its own (NAME, in a UTS namespace), as hosts do.
# Needs root and `ip netns`: without them the script exits 77, which ctest counts as skipped.
# Every wait has a deadline; the cleanup stops only the processes the test started, then deletes the
# namespaces it created (anything still running in them can only be the test's own).

if [[ $(id -u) != 0 ]]; then
  echo "SKIP: $(basename "${0%.sh}"): needs root to create network namespaces" >&2
  exit 77
fi
if ! command -v ip >/dev/null; then
  echo "SKIP: $(basename "${0%.sh}"): no 'ip netns' here (scripts/common.sh's ZRELAY_TEST_PACKAGES installs iproute2)" >&2
  exit 77
fi
source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
# Relays get a longer start-up deadline than on loopback: a node is a few processes deep.
WAIT_LIMIT=${FED_WAIT_LIMIT:-15}

FED_PREFIX=zf$$
FED_HUB=$FED_PREFIX-hub
FED_BRIDGE=zfbr$$
FED_NET=10.77.$(($$ % 250 + 1))
FED_NAMESPACES=() # created here, in order (the hub first)
declare -A NODE_NS NODE_ADDR NODE_PID NODE_TPID NODE_ERR NODE_OUT NODE_RUNS

# A python3 with the zmq module (Debian's python3-zmq gives it to /usr/bin/python3; a pyenv or venv
# python3 ahead on PATH may lack it), for the clients written in Python; also reads the stats JSON.
FED_PYTHON=
for _py in /usr/bin/python3 "$(command -v python3)"; do
  if [[ -x $_py ]] && "$_py" -c 'import zmq' 2>/dev/null; then
    FED_PYTHON=$_py
    break
  fi
done
unset _py
[[ -n $FED_PYTHON ]] || fail "no python3 with the zmq module (scripts/common.sh's ZRELAY_TEST_PACKAGES installs python3-zmq)"

fed_cleanup() {
  local i ns pid
  # Backwards: the nodes, then the hub (with the bridge and the veths' other ends).
  for ((i = ${#FED_NAMESPACES[@]} - 1; i >= 0; i--)); do
    ns=${FED_NAMESPACES[i]}
    # Only the test started processes in a namespace it created; lib.sh's cleanup has stopped those
    # it knows of already, this is the backstop.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null
    done
    ip netns del "$ns" 2>/dev/null || printf '%s: could not delete network namespace %s\n' "$TEST_NAME" "$ns" >&2
  done
}
CLEANUP_HOOKS+=(fed_cleanup)

# fed_ip ARGS...: ip with a deadline, failing the test with its error.
fed_ip() {
  timeout 10 ip "$@" 2>"$TEST_TMP/ip.err" || fail "ip $* failed: $(cat "$TEST_TMP/ip.err")"
}

if ! timeout 10 ip netns add "$FED_HUB" 2>"$TEST_TMP/ip.err"; then
  printf 'SKIP: %s: cannot create a network namespace: %s\n' "$TEST_NAME" "$(cat "$TEST_TMP/ip.err")" >&2
  exit 77
fi
FED_NAMESPACES+=("$FED_HUB")
fed_ip -n "$FED_HUB" link add "$FED_BRIDGE" type bridge
fed_ip -n "$FED_HUB" link set "$FED_BRIDGE" up

# node NAME: create the node NAME (a namespace on the bridge with the next address). Sets NODE_ADDR[NAME].
node() {
  local name=$1 n=$((${#FED_NAMESPACES[@]} + 1))
  local ns=$FED_PREFIX-$name addr=$FED_NET.$n
  [[ -z ${NODE_NS[$name]:-} ]] || fail "node $name exists already"
  fed_ip netns add "$ns"
  FED_NAMESPACES+=("$ns")
  fed_ip -n "$ns" link set lo up
  fed_ip -n "$FED_HUB" link add "v$n" type veth peer name eth0 netns "$ns"
  fed_ip -n "$FED_HUB" link set "v$n" master "$FED_BRIDGE" up
  fed_ip -n "$ns" addr add "$addr/24" dev eth0
  fed_ip -n "$ns" link set eth0 up
  NODE_NS[$name]=$ns NODE_ADDR[$name]=$addr
  # The address (IPv4: no duplicate detection to wait for) is usable once both ends are up; the bridge has
  # no STP, its ports forward at once.
  local deadline=$((SECONDS + WAIT_LIMIT))
  until [[ $(ip -n "$ns" -o link show eth0) == *LOWER_UP* ]]; do
    ((SECONDS < deadline)) || fail "eth0 of node $name did not come up within ${WAIT_LIMIT}s: $(ip -n "$ns" -o link show eth0)"
  done
}

# in_node NAME CMD...: run CMD in node NAME's network namespace (for bg, run_cmd, expect_status).
in_node() {
  local ns=${NODE_NS[$1]:-}
  [[ -n $ns ]] || fail "no node '$1'"
  shift
  ip netns exec "$ns" "$@"
}

# node_bg NAME OUT ERR CMD...: lib.sh's bg, in node NAME. Sets BG_PID.
node_bg() {
  local name=$1 out=$2 err=$3
  shift 3
  bg "$out" "$err" ip netns exec "${NODE_NS[$name]}" "$@"
}

# node_expect NAME STATUS CMD...: lib.sh's expect_status, in node NAME.
node_expect() {
  local name=$1 want=$2
  shift 2
  expect_status "$want" ip netns exec "${NODE_NS[$name]}" "$@"
}

# start_node NAME [ZRELAY ARGS...]: start zrelay -v in node NAME on its address and the default ports
# (and the replay socket with --journal), and wait for its ready line. A second start of the same NAME
# (a restart) binds the same endpoints. Sets NODE_PID/NODE_ERR/NODE_OUT[NAME] (stderr, stdout files).
start_node() {
  local name=$1
  shift
  local ns=${NODE_NS[$name]:-} addr=${NODE_ADDR[$name]:-} run=$((${NODE_RUNS[$name]:-0} + 1))
  [[ -n $ns ]] || fail "no node '$name'"
  [[ -z ${NODE_PID[$name]:-} ]] || fail "the relay of node $name runs already"
  NODE_RUNS[$name]=$run
  local base=$TEST_TMP/$name.$run replay=() tpid pid
  [[ " $* " == *' --journal '* ]] && replay=(--replay-bind "tcp://$addr:5562")
  # ip netns exec, unshare and sh each exec the next: the child of timeout ends up being zrelay.
  timeout -k 5 "$RELAY_LIMIT" ip netns exec "$ns" unshare --uts \
    sh -c 'echo "$0" >/proc/sys/kernel/hostname && exec "$@"' "$name" \
    "$ZRELAY" --pub-bind "tcp://$addr:5559" --sub-bind "tcp://$addr:5560" --ack-bind "tcp://$addr:5561" \
    "${replay[@]}" -v "$@" >"$base.out" 2>"$base.err" &
  tpid=$!
  NODE_TPID[$name]=$tpid NODE_ERR[$name]=$base.err NODE_OUT[$name]=$base.out
  # The ready line within the deadline, giving up as soon as the relay has exited.
  local deadline=$((SECONDS + WAIT_LIMIT))
  until WAIT_LIMIT=1 wait_for_text "$base.out" "zrelay: ready "; do
    kill -0 "$tpid" 2>/dev/null || fail "zrelay in node $name ($*) exited before its ready line; its stderr: $(tail -n 5 "$base.err")"
    ((SECONDS < deadline)) || fail "zrelay in node $name ($*) printed no ready line within ${WAIT_LIMIT}s; its stderr: $(tail -n 5 "$base.err")"
  done
  local line
  line=$(grep -a -m1 '^zrelay: ready ' "$base.out")
  [[ $line == *" pub=tcp://$addr:5559 sub=tcp://$addr:5560 ack=tcp://$addr:5561"* ]] ||
    fail "node $name's relay is not on its address and the default ports: '$line'"
  [[ $line == *" control=tcp://127.0.0.1:5563"* ]] || fail "node $name's relay has not the default control socket: '$line'"
  pid=$(child_pid "$tpid")
  [[ -n $pid ]] || fail "cannot find the pid of node $name's zrelay (child of $tpid)"
  NODE_PID[$name]=$pid
  echo "$pid $(proc_start "$pid") $tpid $(proc_start "$tpid")" >>"$TEST_TMP/relay.pids"
}

# kill_node NAME: SIGKILL node NAME's relay (no flush, no final line).
kill_node() {
  local name=$1 pid=${NODE_PID[$1]:-}
  [[ -n $pid ]] || fail "the relay of node $name is not running"
  kill -KILL "$pid" 2>/dev/null || fail "the relay of node $name (pid $pid) had died before the kill"
  wait "${NODE_TPID[$name]}" 2>/dev/null
  NODE_PID[$name]='' NODE_TPID[$name]=''
}

# stop_node NAME: SIGTERM node NAME's relay; it must exit 0 within the deadline.
stop_node() {
  local name=$1 pid=${NODE_PID[$1]:-} status
  [[ -n $pid ]] || fail "the relay of node $name is not running"
  kill -TERM "$pid" 2>/dev/null || fail "the relay of node $name (pid $pid) was not running when asked to stop"
  timeout "$WAIT_LIMIT" tail --pid="$pid" -f /dev/null
  kill -KILL "$pid" 2>/dev/null
  wait "${NODE_TPID[$name]}"
  status=$?
  NODE_PID[$name]='' NODE_TPID[$name]=''
  [[ $status == 0 ]] || fail "node $name's zrelay exited with status $status on SIGTERM; stderr: $(tail -n 5 "${NODE_ERR[$name]}")"
}

# node_alive NAME: fail unless node NAME's relay still runs.
node_alive() {
  [[ -n ${NODE_PID[$1]:-} ]] && kill -0 "${NODE_PID[$1]}" 2>/dev/null ||
    fail "node $1's relay died; its stderr: $(tail -n 5 "${NODE_ERR[$1]}")"
}

# The readers below run in $(...), where fail would end only that subshell: they say what went wrong on
# stderr and print nothing (status 1), so that the caller's comparison fails with the value it got.

# node_stats NAME: print node NAME's `zrelay ctl stats` JSON (also kept in $TEST_TMP/NAME.stats).
node_stats() {
  if ! timeout 10 ip netns exec "${NODE_NS[$1]}" "$ZRELAY" ctl stats --timeout 3000 >"$TEST_TMP/$1.stats" 2>"$TEST_TMP/$1.stats.err"; then
    echo "$TEST_NAME: zrelay ctl stats in node $1 failed: $(cat "$TEST_TMP/$1.stats.err")" >&2
    return 1
  fi
  cat "$TEST_TMP/$1.stats"
}

# json_field NAME: from the JSON object on stdin, print the top-level field NAME (empty if it has none).
json_field() {
  "$FED_PYTHON" -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print("" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else v)' "$1"
}

# node_stat NAME COUNTER: one counter of node NAME's relay, read with `zrelay ctl stats`.
node_stat() {
  local json v
  json=$(node_stats "$1") || return 1
  v=$(json_field "$2" <<<"$json")
  if [[ -z $v ]]; then
    echo "$TEST_NAME: no '$2' in node $1's zrelay ctl stats: $json" >&2
    return 1
  fi
  echo "$v"
}

# node_link NAME WHICH FIELD: FIELD (unacked, interest, state, in, out, ...) of one link of node NAME's
# relay, from the "links" list of `zrelay ctl stats`. WHICH: up (its upstream), or the host name of a
# downstream relay (a node's name).
node_link() {
  local json v
  json=$(node_stats "$1") || return 1
  v=$("$FED_PYTHON" -c 'import json, sys
which, field = sys.argv[1], sys.argv[2]
def wanted(link):
    if which == "up":
        return link.get("dir") == "up"
    return link.get("dir") == "down" and link.get("peer", "").split(" ")[0] == which  # "NAME ENDPOINT"
links = [link for link in json.load(sys.stdin).get("links", []) if wanted(link)]
print(links[0].get(field, "") if len(links) == 1 else "")' "$2" "$3" <<<"$json")
  if [[ -z $v ]]; then
    echo "$TEST_NAME: node $1 has not one link '$2' with '$3' in its zrelay ctl stats: $json" >&2
    return 1
  fi
  echo "$v"
}

# wait_stat NAME COUNTER OP VALUE [SECONDS]: ask node NAME's relay until COUNTER OP VALUE holds (OP as
# in [[ ]]: -ge, -eq, ...), within SECONDS (default WAIT_LIMIT); each try is a request, not a timer.
# Sets STAT to the last value read.
wait_stat() {
  local name=$1 counter=$2 op=$3 want=$4 deadline=$((SECONDS + ${5:-$WAIT_LIMIT}))
  while :; do
    STAT=$(node_stat "$name" "$counter" 2>"$TEST_TMP/stat.err")
    test "$STAT" "$op" "$want" 2>/dev/null && return 0
    ((SECONDS < deadline)) ||
      fail "node $name: $counter is '$STAT' after ${5:-$WAIT_LIMIT}s, expected $op $want; $(cat "$TEST_TMP/stat.err") stats: $(cat "$TEST_TMP/$name.stats")"
  done
}

# wait_link NAME WHICH FIELD OP VALUE [SECONDS]: as wait_stat, for node_link NAME WHICH FIELD. Sets STAT.
wait_link() {
  local name=$1 which=$2 field=$3 op=$4 want=$5 deadline=$((SECONDS + ${6:-$WAIT_LIMIT}))
  while :; do
    STAT=$(node_link "$name" "$which" "$field" 2>"$TEST_TMP/stat.err")
    test "$STAT" "$op" "$want" 2>/dev/null && return 0
    ((SECONDS < deadline)) ||
      fail "node $name: its link $which has $field '$STAT' after ${6:-$WAIT_LIMIT}s, expected $op $want; $(cat "$TEST_TMP/stat.err") stats: $(cat "$TEST_TMP/$name.stats")"
  done
}

# up_ep NAME: the ack endpoint of node NAME, which `--upstream ADDRESS` links to.
up_ep() { echo "tcp://${NODE_ADDR[$1]}:5561"; }

# wait_link_up NAME UPSTREAM [COUNT]: wait until node NAME's relay logged its COUNT-th (default first)
# "link to upstream EP: active", EP being node UPSTREAM's ack endpoint.
wait_link_up() {
  local text="zrelay: link to upstream $(up_ep "$2"): active"
  wait_for_text "${NODE_ERR[$1]}" "$text" "${3:-1}" ||
    fail "node $1 did not log '$text' (${3:-1} times) within ${WAIT_LIMIT}s; its stderr: $(tail -n 5 "${NODE_ERR[$1]}")"
}

# tree_of_three: nodes core, edge1 and edge2, each edge linked to the core (--upstream), started
# and waited for until both links are up.
tree_of_three() {
  node core
  node edge1
  node edge2
  start_node core
  start_node edge1 --upstream "${NODE_ADDR[core]}"
  start_node edge2 --upstream "${NODE_ADDR[core]}"
  wait_link_up edge1 core
  wait_link_up edge2 core
}

# wait_node_subscribed NAME TOPIC [COUNT]: node NAME's relay logged its COUNT-th "subscribe 'TOPIC'".
wait_node_subscribed() {
  wait_for_line "${NODE_ERR[$1]}" "zrelay: subscribe '$2'" "${3:-1}" ||
    fail "node $1 did not log \"subscribe '$2'\" within ${WAIT_LIMIT}s; its stderr: $(tail -n 5 "${NODE_ERR[$1]}")"
}

# wait_path FROM TOPIC OUT [SECONDS]: publish probe-K messages on TOPIC at node FROM (one zpub each,
# acked there) until one shows up in OUT, a zsub's output: the way from FROM to that subscriber is open
# (links up, subscriptions through). Each probe is waited for up to 2 s; all within SECONDS (default 30).
wait_path() {
  local from=$1 topic=$2 out=$3 deadline=$((SECONDS + ${4:-30})) k=0
  while :; do
    k=$((k + 1))
    node_expect "$from" 0 "$ZPUB" -t "$topic" -H "${NODE_ADDR[$from]}" -m "probe-$k"
    WAIT_LIMIT=2 wait_for_line "$out" "probe-$k" && return 0
    ((SECONDS < deadline)) || fail "no probe published on '$topic' at node $from reached $out within ${4:-30}s"
  done
}
