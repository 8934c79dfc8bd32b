#!/usr/bin/env bash
# Monitoring a running relay: --sys-interval publishes the counters on $SYS.<host>.stats, which
# zsub -t '$SYS.' reads as any zrelay stream (no gap, nothing malformed); `zrelay ctl stats|reload`
# asks the control socket (--control-bind); bad requests get an error and the relay goes on; no
# relay listening is exit 1 within --timeout; bad arguments exit 2.
source "$(dirname "$0")/lib.sh"

N=7

# zsub -t '$SYS.' reads samples whose msgs_in is what zpub had acked, in sequence, no gap.
sys_samples() {
  start_relay --sys-interval 0.05
  seq 1 "$N" >"$TEST_TMP/in"
  expect_status 0 "$ZPUB" -t data --ack-connect "$ACK_EP" <"$TEST_TMP/in"  # acked: counted by the relay
  expect_status 0 "$ZSUB" -t '$SYS.' --sub-connect "$SUB_EP" -C 3 --json --stats
  local out=$TEST_TMP/last.out err=$TEST_TMP/last.err line seqs=()
  [[ $(wc -l <"$out") == 3 ]] || fail "zsub -C 3 printed: $(cat "$out")"
  while IFS= read -r line; do
    [[ $line == '{"topic":"$SYS.'*'.stats","payload":"{\"relay\":\"'* ]] || fail "not a \$SYS sample: $line"
    [[ $line == *'\"msgs_in\":'"$N"',\"bytes_in\":'* ]] || fail "msgs_in is not $N in: $line"
    [[ $line == *'\"msgs_out\":'"$N"',\"bytes_out\":'* ]] || fail "msgs_out is not $N (samples are not counted) in: $line"
    [[ $line =~ \"seq\":([0-9]+)\}$ ]] || fail "no seq in: $line"
    seqs+=("${BASH_REMATCH[1]}")
  done <"$out"
  ((seqs[1] == seqs[0] + 1 && seqs[2] == seqs[1] + 1)) || fail "samples not in sequence: ${seqs[*]}"
  grep -q -F 'gaps=0 missing=0 duplicates=0 malformed=0' "$err" || fail "zsub reported trouble: $(cat "$err")"
  [[ $(grep -c -v '^zsub: stats ' "$err") == 0 ]] || fail "zsub warned: $(cat "$err")"
  # -v: the topic names the host.
  expect_status 0 "$ZSUB" -t '$SYS.' --sub-connect "$SUB_EP" -C 1 -v
  grep -q -E "^\\\$SYS\\.$(hostname | tr -c 'A-Za-z0-9._\n-' _)\\.stats \\{\"relay\":\"[0-9a-f]{16}\",\"host\":" \
    "$TEST_TMP/last.out" || fail "zsub -v printed: $(cat "$TEST_TMP/last.out")"
  # The ctl answer is the same document.
  expect_status 0 "$ZRELAY" ctl stats --control-connect "$CONTROL_EP"
  [[ $(wc -l <"$TEST_TMP/last.out") == 1 ]] || fail "ctl stats printed more than one line: $(cat "$TEST_TMP/last.out")"
  grep -q -F "\"msgs_in\":$N,\"bytes_in\":" "$TEST_TMP/last.out" || fail "ctl stats printed: $(cat "$TEST_TMP/last.out")"
  stop_relay
}

# Off by default: no sample comes (the relay's own stats tick shows it is running meanwhile).
sys_off() {
  start_relay --stats-interval 0.05
  bg "$TEST_TMP/off.out" "$TEST_TMP/off.err" "$ZSUB" -t '$SYS.' --sub-connect "$SUB_EP" -C 1
  wait_subscribed '$SYS.'
  local lines
  lines=$(grep -c '^zrelay: stats ' "$RELAY_ERR")
  wait_for_text "$RELAY_ERR" "zrelay: stats " $((lines + 3)) || fail "no stats lines from the relay"
  [[ ! -s $TEST_TMP/off.out ]] || fail "a \$SYS sample came without --sys-interval: $(cat "$TEST_TMP/off.out")"
  stop_relay
}

ctl_commands() {
  start_relay
  [[ $CONTROL_EP == tcp://127.0.0.1:* && $CONTROL_EP != *'*'* ]] || fail "ready line's control=: '$CONTROL_EP'"
  expect_status 0 "$ZRELAY" ctl stats --control-connect "$CONTROL_EP"
  grep -q -E '^\{"relay":"[0-9a-f]{16}","host":"[^"]+","pid":'"$RELAY_PID"',"time":"20[0-9-]+T[0-9:.]+Z","uptime_ms":[0-9]+,"msgs_in":0,.*"journal_segments_removed":0,.*"upstream_up":0,"links":\[\]\}$' \
    "$TEST_TMP/last.out" || fail "ctl stats printed: $(cat "$TEST_TMP/last.out")"
  expect_status 0 "$ZRELAY" ctl reload --control-connect "$CONTROL_EP"
  grep -q '^reload: ' "$TEST_TMP/last.out" || fail "ctl reload printed: $(cat "$TEST_TMP/last.out")"
  stop_relay
  # ipc:// too.
  start_relay --control-bind "ipc://$TEST_TMP/control"
  [[ $CONTROL_EP == "ipc://$TEST_TMP/control" ]] || fail "ready line's control=: '$CONTROL_EP'"
  expect_status 0 "$ZRELAY" ctl stats --control-connect "$CONTROL_EP"
  # A second relay on the same path is refused: ZeroMQ would remove the first one's socket file.
  expect_status 1 "$ZRELAY" --pub-bind 'tcp://127.0.0.1:*' --sub-bind 'tcp://127.0.0.1:*' \
    --ack-bind 'tcp://127.0.0.1:*' --control-bind "ipc://$TEST_TMP/control"
  expect_stderr_contains "cannot bind 'ipc://$TEST_TMP/control' (the control socket): Address already in use"
  expect_status 0 "$ZRELAY" ctl stats --control-connect "$CONTROL_EP"
  # IPv6 loopback, where the machine has it.
  if grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null; then
    start_relay --control-bind 'tcp://[::1]:*'
    [[ $CONTROL_EP == 'tcp://[::1]:'* ]] || fail "ready line's control=: '$CONTROL_EP'"
    expect_status 0 "$ZRELAY" ctl stats --control-connect "$CONTROL_EP"
  fi
  # Off: no control= on the ready line (start_relay's pattern requires the rest as before).
  start_relay --control-bind off
  [[ -z $CONTROL_EP ]] || fail "control=$CONTROL_EP with --control-bind off"
}

# A second relay on a running relay's ipc paths fails before it binds any: ZeroMQ removes a socket
# file in its way, so binding even one would take the running relay's socket away.
ipc_twice() {
  local d=$TEST_TMP/ipc
  mkdir -p "$d" || fail "cannot make $d"
  local eps=(--pub-bind "ipc://$d/pub" --sub-bind "ipc://$d/sub" --ack-bind "ipc://$d/ack" --control-bind "ipc://$d/control")
  start_relay "${eps[@]}"
  [[ $SUB_EP == "ipc://$d/sub" && $ACK_EP == "ipc://$d/ack" ]] || fail "ready line: sub=$SUB_EP ack=$ACK_EP"
  check_pubsub before 'before the second relay'
  expect_status 1 "$ZRELAY" "${eps[@]}"
  expect_stderr_contains "Address already in use"
  expect_status 1 "$ZRELAY" "${eps[@]:0:6}" --control-bind 'tcp://127.0.0.1:*'
  expect_stderr_contains "cannot bind 'ipc://$d/pub': Address already in use"
  # Its control socket alone, the others free: refused before the relay's sockets bind.
  expect_status 1 "$ZRELAY" --pub-bind "ipc://$d/pub2" --sub-bind "ipc://$d/sub2" --ack-bind "ipc://$d/ack2" \
    --control-bind "ipc://$d/control"
  expect_stderr_contains "cannot bind 'ipc://$d/control' (the control socket): Address already in use"
  [[ ! -e $d/pub2 ]] || fail "the refused relay bound ipc://$d/pub2 before checking its control path"
  check_pubsub after 'after the second relay'
  expect_status 0 "$ZRELAY" ctl stats --control-connect "ipc://$d/control"
  stop_relay
}

# Requests from a stranger (python3-zmq): each gets an error reply, the relay logs the first and
# goes on answering.
bad_requests() {
  /usr/bin/python3 -c 'import zmq' 2>/dev/null || python3 -c 'import zmq' 2>/dev/null ||
    { note "no python3 with zmq: bad requests are covered by the unit tests only"; return 0; }
  local py=/usr/bin/python3
  $py -c 'import zmq' 2>/dev/null || py=python3
  start_relay
  run_cmd "$py" - "$CONTROL_EP" <<'PY'
import sys, zmq
ctx = zmq.Context()
d = ctx.socket(zmq.DEALER)
d.linger = 0
d.connect(sys.argv[1])
bad = [[b"stats", b"reload"], [b"\x00\xff\x10"], [b"x" * 3000], [b"shutdown"], [b""], [b"", b"stats", b"more"]]
for frames in bad:
    d.send_multipart(frames)
    if not d.poll(10000):
        sys.exit("no answer to %r" % frames[:2])
    reply = d.recv_multipart()
    if reply[-2] != b"error":
        sys.exit("not an error for %r: %r" % (frames[:2], reply))
    print(reply[-1].decode())
d.send_multipart([b"", b"stats"])
if not d.poll(10000) or d.recv_multipart()[:2] != [b"", b"ok"]:
    sys.exit("stats after the bad requests failed")
# Larger than the frame limit: ZeroMQ cuts the connection, unread; the relay goes on.
d.linger = 2000
d.send(b"y" * 100000)
d.close()
PY
  [[ $LAST_STATUS == 0 ]] || fail "the stranger's requests: $(cat "$TEST_TMP/last.err")"
  for text in "this one had 2 frames" "not printable ASCII" "a request of 3000 bytes is no command" \
    "unknown command 'shutdown'" "empty request"; do
    grep -q -F "$text" "$TEST_TMP/last.out" || fail "no error '$text' among: $(cat "$TEST_TMP/last.out")"
  done
  expect_status 0 "$ZRELAY" ctl stats --control-connect "$CONTROL_EP"
  expect_relay_alive "after bad control requests"
  grep -q -F 'zrelay: warning: control socket: refused a request: a request is one frame' "$RELAY_ERR" ||
    fail "the relay did not log the first refusal: $(tail -n 5 "$RELAY_ERR")"
  [[ $(grep -c 'control socket: refused' "$RELAY_ERR") == 1 ]] || fail "more than one refusal logged"
  stop_relay
}

# Nobody listening: exit 1 within the timeout, naming the endpoint.
no_relay() {
  local ep="ipc://$TEST_TMP/nobody" t0 t1
  t0=$(date +%s%N)
  expect_status 1 "$ZRELAY" ctl stats --control-connect "$ep" --timeout 300
  t1=$(date +%s%N)
  expect_stderr_contains "zrelay: error: no answer from the control socket at '$ep' within 300 ms"
  expect_stderr_one_line
  (((t1 - t0) / 1000000 >= 300 && (t1 - t0) / 1000000 < 5000)) || fail "ctl took $(((t1 - t0) / 1000000)) ms"
  # A relay that stopped: its port is closed now.
  start_relay
  local gone=$CONTROL_EP
  stop_relay
  expect_status 1 "$ZRELAY" ctl reload --control-connect "$gone" --timeout 200
  expect_stderr_contains "no answer from the control socket at '$gone' within 200 ms"
  # Something else answers there: the relay's ack socket is no control socket (no answer either).
  start_relay
  expect_status 1 "$ZRELAY" ctl stats --control-connect "$ACK_EP" --timeout 300
  expect_relay_alive "after ctl to its ack socket"
  # Two relays, one control endpoint: the second cannot bind it.
  expect_status 1 "$ZRELAY" --pub-bind 'tcp://127.0.0.1:*' --sub-bind 'tcp://127.0.0.1:*' \
    --ack-bind 'tcp://127.0.0.1:*' --control-bind "$CONTROL_EP"
  expect_stderr_contains "zrelay: error: cannot bind '$CONTROL_EP' (the control socket): Address already in use"
  stop_relay
}

bad_args() {
  expect_status 2 "$ZRELAY" ctl
  expect_stderr_contains "zrelay: error: usage: zrelay ctl stats|reload [--control-connect EP | --config FILE] [--timeout MS] (see 'zrelay ctl --help')"
  expect_status 2 "$ZRELAY" ctl restart
  expect_stderr_contains "unknown command 'restart' for zrelay ctl (stats, reload)"
  expect_status 2 "$ZRELAY" ctl stats --timeout soon
  expect_stderr_contains "--timeout must be a whole number"
  expect_status 2 "$ZRELAY" ctl stats --control-connect 'udp://x:1'
  expect_status 0 "$ZRELAY" ctl --help
  grep -q -F 'stats   print the relay' "$TEST_TMP/last.out" || fail "ctl --help: $(cat "$TEST_TMP/last.out")"
  expect_status 2 "$ZRELAY" --control-bind 'tcp://0.0.0.0:5563'
  expect_stderr_contains "--control-bind: cannot use 'tcp://0.0.0.0:5563' for the control socket: it is not authenticated"
  expect_stderr_one_line
  expect_status 2 "$ZRELAY" --control-bind 'tcp://localhost:5563'
  expect_stderr_contains "ZeroMQ binds addresses, not host names (tcp://127.0.0.1:5563)"
  expect_status 2 "$ZRELAY" --sys-interval often
  expect_stderr_contains "--sys-interval must be a number of seconds, not 'often'"
}

case_ "zsub -t '\$SYS.' reads the counters, in sequence" sys_samples
case_ "no \$SYS samples without --sys-interval" sys_off
case_ "zrelay ctl stats and reload, tcp and ipc, off" ctl_commands
case_ "a second relay on the same ipc paths fails and leaves the first one serving" ipc_twice
case_ "bad control requests get an error, the relay goes on" bad_requests
case_ "zrelay ctl with nobody listening: exit 1 within the timeout" no_relay
case_ "zrelay ctl and the new options: bad arguments exit 2" bad_args
cases_passed
pass
