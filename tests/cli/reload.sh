#!/usr/bin/env bash
# zrelay --config FILE and SIGHUP: a reload applies what can change live and logs it, reports what
# needs a restart, keeps the old configuration when the new file is bad, and drops no client: a
# zpub and a zsub connected across three reloads lose nothing and never reconnect. The CURVE
# allowlist reloads too: a key added is let in, a key removed is refused, a client connected
# with it stays. systemd hears READY=1, RELOADING=1 and STOPPING=1 on $NOTIFY_SOCKET; zrelay ctl
# reload does what SIGHUP does and prints what it did.
source "$(dirname "$0")/lib.sh"

cd "$TEST_TMP" || fail "cannot enter $TEST_TMP"

# hup_until TEXT: SIGHUP the relay and wait until its stderr has a line containing TEXT.
hup_until() {
  local text=$1 count=${2:-1}
  kill -HUP "$RELAY_PID" || fail "cannot send SIGHUP to the relay"
  wait_for_text "$RELAY_ERR" "$text" "$count" ||
    fail "the relay did not log '$text' after SIGHUP; its stderr: $(tail -n 8 "$RELAY_ERR")"
}

case_clients_stay() {
  cat >zrelay.toml <<'EOF'
# a config file as an operator writes it
hwm = 1000
full-wait = 100
max-msg-size = "1M"
EOF
  start_relay --config zrelay.toml
  mkfifo lines.fifo || fail "cannot make a fifo"
  bg sub.out sub.err "$ZSUB" -t r. --sub-connect "$SUB_EP" -C 3000
  local sub=$BG_PID
  wait_subscribed r.
  BG_STDIN=lines.fifo bg pub.out pub.err "$ZPUB" -t r.x --ack-connect "$ACK_EP" --stats
  local pub=$BG_PID
  exec {feed}>lines.fifo
  seq 1 1000 >&"$feed"
  wait_for_line sub.out 1000 || fail "zsub did not receive the first 1000 lines; its stderr: $(cat sub.err)"

  # Live settings applied, one that needs a restart reported and left alone.
  cat >zrelay.toml <<'EOF'
hwm = 5000
full-wait = 50
max-msg-size = "512k"
stats-interval = 0.2
EOF
  hup_until "zrelay: reload: hwm: '1000' -> '5000': needs a restart, not applied"
  grep -q -x -F "zrelay: reload: full-wait: '100' -> '50': applied" "$RELAY_ERR" ||
    fail "full-wait was not reported applied: $(grep reload "$RELAY_ERR")"
  grep -q -x -F "zrelay: reload: max-msg-size: '1M' -> '512k': applied" "$RELAY_ERR" ||
    fail "max-msg-size was not reported applied: $(grep reload "$RELAY_ERR")"
  wait_for_text "$RELAY_ERR" "zrelay: stats " || fail "no stats line after stats-interval was reloaded"
  seq 1001 2000 >&"$feed"
  wait_for_line sub.out 2000 || fail "zsub did not receive lines 1001-2000 after the reload"

  # A file that does not parse: the old configuration stays, and says so.
  printf 'hwm = \n' >zrelay.toml
  hup_until "zrelay: reload: failed: zrelay.toml:1: not valid TOML"
  grep -q -F "the configuration in force is unchanged" "$RELAY_ERR" || fail "the failed reload did not say it kept the old configuration"
  # A value that is wrong, named by file, line and key.
  printf 'hwm = 1000\nfull-wait = "soon"\n' >zrelay.toml
  hup_until "zrelay: reload: failed: zrelay.toml:2: full-wait must be an integer"
  # Raising a limit past what the sockets were bound for needs a restart.
  printf 'max-msg-size = "2M"\n' >zrelay.toml
  hup_until "zrelay: reload: max-msg-size: '512k' -> '2M': not applied: raising it above"

  # Neither connection ended across the reloads: the relay logs each one that ends (-v).
  ! grep -q -e "a connection to the ack socket" -e "zrelay: unsubscribe 'r.'" "$RELAY_ERR" ||
    fail "a client connection ended during the reloads: $(grep -e connection -e unsubscribe "$RELAY_ERR")"
  seq 2001 3000 >&"$feed"
  exec {feed}>&-
  wait_bg "$pub"
  [[ $BG_STATUS == 0 ]] || fail "zpub exited with status $BG_STATUS across the reloads; stderr: $(cat pub.err)"
  grep -q 'retried=0' pub.err || fail "zpub had to resend across the reloads: $(cat pub.err)"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 ]] || fail "zsub exited with status $BG_STATUS; stderr: $(cat sub.err)"
  diff -q sub.out <(seq 1 3000) >/dev/null || fail "zsub did not receive 1..3000 in order across the reloads"
  [[ ! -s sub.err ]] || fail "zsub reported something across the reloads: $(cat sub.err)"
  # The reloaded limit is in force: a message over 512 KiB is refused (NACK) now.
  head -c 600000 /dev/zero | tr '\0' x >big.txt
  expect_status 3 "$ZPUB" -t r.big --ack-connect "$ACK_EP" -f big.txt
  expect_stderr_contains "too large"
  stop_relay
  [[ $(relay_counter msgs_in) == 3001 ]] || fail "the relay counted $(relay_counter msgs_in) messages in, expected 3001 (3000 and the refused one)"
  [[ $(relay_counter nacks) == 1 ]] || fail "expected one NACK (the 600 000-byte message): $RELAY_FINAL"
}

case_allowlist() {
  local name
  for name in relay alice bob; do expect_status 0 "$ZRELAY" keygen "$name"; done
  cat alice.pub >allow.txt
  printf 'curve-key = "relay.key"\nallow-keys = "allow.txt"\n' >curve.toml
  start_relay --config curve.toml
  local ALICE=(--curve-key alice.key --curve-server-key relay.pub) BOB=(--curve-key bob.key --curve-server-key relay.pub)
  bg sub.out sub.err "$ZSUB" -t s --sub-connect "$SUB_EP" -C 2 "${ALICE[@]}"
  local sub=$BG_PID
  wait_subscribed s
  expect_status 1 "$ZPUB" -t s --ack-connect "$ACK_EP" -m 'bob before' --connect-timeout 5000 "${BOB[@]}"
  expect_stderr_contains "the relay refused our credentials"
  cat alice.pub bob.pub >allow.txt
  hup_until "zrelay: reload: allow-keys: 2 key(s) from 'allow.txt' (were 1)"
  expect_status 0 "$ZPUB" -t s --ack-connect "$ACK_EP" -m 'bob after' "${BOB[@]}"
  # Alice leaves the list: her new connections are refused; her zsub, connected, stays.
  cat bob.pub >allow.txt
  hup_until "zrelay: reload: allow-keys: 1 key(s) from 'allow.txt' (were 2)"
  expect_status 1 "$ZPUB" -t s --ack-connect "$ACK_EP" -m 'alice now' --connect-timeout 5000 "${ALICE[@]}"
  expect_stderr_contains "the relay refused our credentials"
  expect_status 0 "$ZPUB" -t s --ack-connect "$ACK_EP" -m 'bob again' "${BOB[@]}"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 ]] || fail "alice's zsub exited with status $BG_STATUS; stderr: $(cat sub.err)"
  [[ $(cat sub.out) == $'bob after\nbob again' ]] || fail "alice's zsub received '$(cat sub.out)'"
  # An empty allowlist would let nobody in: refused, the old list kept.
  : >allow.txt
  hup_until "zrelay: reload: failed: "
  expect_status 0 "$ZPUB" -t s --ack-connect "$ACK_EP" -m 'bob still' "${BOB[@]}"
  # A new key pair in the same file takes a restart, and says so; the old one stays in force.
  # The allowlist changed with it waits for the restart too, and says why.
  cat alice.pub bob.pub >allow.txt
  mv relay.key relay.old.key && mv relay.pub relay.old.pub && expect_status 0 "$ZRELAY" keygen relay
  hup_until "zrelay: reload: curve-key: 'relay.key' holds another key pair now: needs a restart, not applied"
  local why="zrelay: reload: allow-keys: 'allow.txt': not applied: the key pair changed, which needs a restart"
  wait_for_text "$RELAY_ERR" "$why" || fail "the relay did not log '$why'; its stderr: $(tail -n 8 "$RELAY_ERR")"
  expect_status 0 "$ZPUB" -t s --ack-connect "$ACK_EP" -m 'old key' --curve-key bob.key --curve-server-key relay.old.pub
  stop_relay
}

case_systemd_notify() {
  command -v python3 >/dev/null || fail "python3 is needed to listen on a notify socket"
  # A stand-in for systemd: prints each datagram zrelay sends to $NOTIFY_SOCKET, one per line.
  cat >notify.py <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(float(sys.argv[2]))
print("listening", flush=True)
try:
    while True:
        print(s.recv(4096).decode().replace("\n", " "), flush=True)
except socket.timeout:
    pass
EOF
  bg notify.out notify.err python3 notify.py "$TEST_TMP/notify.sock" "$CMD_LIMIT"
  wait_for_line notify.out listening || fail "the notify listener did not start: $(cat notify.err)"
  printf 'full-wait = 100\n' >n.toml
  NOTIFY_SOCKET=$TEST_TMP/notify.sock start_relay --config n.toml
  wait_for_text notify.out "READY=1 STATUS=serving pub=$PUB_EP sub=$SUB_EP ack=$ACK_EP" ||
    fail "zrelay did not send READY=1 with its endpoints: $(cat notify.out)"
  printf 'full-wait = 10\n' >n.toml
  hup_until "zrelay: reload: full-wait: '100' -> '10': applied"
  wait_for_text notify.out "READY=1 STATUS=reloaded" || fail "no READY=1 after the reload: $(cat notify.out)"
  grep -q -x "RELOADING=1" notify.out || fail "no RELOADING=1 before it: $(cat notify.out)"
  # zrelay ctl reload does what SIGHUP does, and answers with what it did.
  printf 'full-wait = 5\n' >n.toml
  expect_status 0 "$ZRELAY" ctl reload --control-connect "$CONTROL_EP"
  grep -q -x -F "reload: full-wait: '10' -> '5': applied" "$TEST_TMP/last.out" ||
    fail "zrelay ctl reload printed: $(cat "$TEST_TMP/last.out")"
  printf 'full-wait = -5\n' >n.toml
  expect_status 1 "$ZRELAY" ctl reload --control-connect "$CONTROL_EP"
  expect_stderr_contains "reload: failed: n.toml:1: full-wait must be a whole number"
  stop_relay
  wait_for_line notify.out "STOPPING=1" || fail "no STOPPING=1 on SIGTERM: $(cat notify.out)"
}

case_ "live settings, a bad file, clients stay" case_clients_stay
case_ "the CURVE allowlist" case_allowlist
case_ "systemd notifications" case_systemd_notify
cases_passed
pass "reload applies live settings, reports restarts, keeps a bad file out, drops no client"
