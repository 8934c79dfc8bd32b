#!/usr/bin/env bash
# label: slow
# A reader that pauses: `zsub | reader` where the reader stops reading for seconds in the middle of
# a burst of 1.5 M acknowledged lines of ~200 bytes. A slow reader is slow, not dead:
#  - three rounds under the defaults: zsub never aborts (libzmq 4.3.4 used to assert in
#    stream_engine_base.cpp when a heartbeat timed the relay out while zsub's queue was full), the
#    relay does not drop it, and received + reported missing == sent;
#  - zsub --heartbeat 0 is not dropped either; the relay then killed -9 with what it held for zsub:
#    zsub must report the disconnection, and its stats must not say missing=0;
#  - the relay killed -9 mid-burst and restarted while zsub stalls: zsub must not abort, must
#    report the disconnection, and received + reported missing still accounts for every line.
# Each round ends with marker lines from the same publisher, sent until one arrives: the relay
# drops the tail of the burst while zsub is full, and only a later message of the stream can
# reveal that gap.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CMD_LIMIT=80

# lines N: N numbered lines of 204 bytes.
lines() {
  awk -v n="$1" 'BEGIN { x = sprintf("%195s", ""); gsub(/ /, "x", x); for (i = 1; i <= n; i++) printf "%07d %s\n", i, x }'
}

# start_round NAME LINES [ZSUB ARGS...]: on the current relay, zsub -t logs --stats into a reader
# that reads 1 MiB and then waits for "go" on its control fifo; then zpub publishing LINES lines
# followed by whatever arrives on its own control fifo (see nudge), until that is closed.
# Sets D (the round's directory), SUB_PID, PUB_PID.
start_round() {
  local name=$1 n=$2
  shift 2
  D=$TEST_TMP/$name
  mkdir "$D" && mkfifo "$D/out" "$D/ctl" "$D/feed" "$D/go" || fail "cannot make the fifos in $D"
  # The reader: fd 3 its control fifo (opened by this shell next), its stdin zsub's output (opened
  # by zsub's start below).
  (exec 3<"$D/ctl" && exec <"$D/out" && head -c 1048576 >/dev/null && echo paused >"$D/paused" &&
    read -r _ <&3 && exec grep -a --line-buffered '^marker ' >"$D/markers") &
  track_bg $!
  exec {CTL_FD}>"$D/ctl"
  bg "$D/out" "$D/sub.err" "$ZSUB" -t logs --sub-connect "$SUB_EP" --stats "$@"
  SUB_PID=$BG_PID
  wait_subscribed logs
  # zpub's input: the lines, then each line written to the go fifo.
  (exec 3<"$D/go" && lines "$n" && while read -r line <&3; do echo "$line"; done) >"$D/feed" &
  track_bg $!
  BG_STDIN=$D/feed bg "$D/pub.out" "$D/pub.err" "$ZPUB" -t logs --ack-connect "$ACK_EP" --retries 20 --stats
  PUB_PID=$BG_PID
  exec {GO_FD}>"$D/go" # after zpub opens the feed: the writer opens the fifos in that order
  wait_for_line "$D/paused" paused || fail "$name: the reader never got its first MiB; zsub: $(cat "$D/sub.err")"
}

# resume: the reader reads again.
resume() { echo go >&"$CTL_FD"; }

# send_markers: send "marker K" lines through zpub until one reaches the reader, then end zpub's
# input. Being the last line of the stream, it reveals any gap before it. Sets MARKERS.
send_markers() {
  local k
  for k in $(seq 1 45); do
    kill -0 "$SUB_PID" 2>/dev/null || fail "zsub is gone; its stderr: $(tail -n 5 "$D/sub.err")"
    (echo "marker $k" >&"$GO_FD") 2>/dev/null || fail "zpub stopped reading its input: $(cat "$D/pub.err")"
    if WAIT_LIMIT=1 wait_for_line "$D/markers" "marker $k"; then
      MARKERS=$k
      exec {GO_FD}>&-
      return
    fi
  done
  fail "no marker line reached zsub's reader in 45 s; zsub: $(tail -n 5 "$D/sub.err")"
}

# end_round NAME: zpub must exit 0 (unless PUB_PID was cleared); then SIGTERM zsub, which must exit 0 without aborting.
# Sets STATS to zsub's stats line.
end_round() {
  local name=$1
  if [[ -n $PUB_PID ]]; then
    wait_bg "$PUB_PID"
    [[ $BG_STATUS == 0 ]] || fail "$name: zpub exited $BG_STATUS (expected 0); stderr: $(tail -n 5 "$D/pub.err")"
  fi
  kill -TERM "$SUB_PID"
  wait_bg "$SUB_PID"
  exec {CTL_FD}>&-
  ! grep -a -q 'Assertion failed' "$D/sub.err" || fail "$name: zsub aborted: $(grep -a 'Assertion' "$D/sub.err")"
  [[ $BG_STATUS == 0 ]] || fail "$name: zsub exited $BG_STATUS (expected 0 on SIGTERM; 134 is an abort); stderr: $(tail -n 5 "$D/sub.err")"
  STATS=$(grep -a '^zsub: stats ' "$D/sub.err" | tail -n1)
  [[ -n $STATS ]] || fail "$name: zsub printed no stats line; stderr: $(tail -n 5 "$D/sub.err")"
}

# stat NAME: a counter of $STATS ("missing" reads both missing=N and missing>=N).
stat() { tr ' ' '\n' <<<"$STATS" | sed -n -E "s/^$1>?=//p"; }

# expect_accounted NAME SENT: every line sent was received or reported missing, and zsub says
# its count is exact.
expect_accounted() {
  local name=$1 sent=$2 received missing duplicates
  [[ $STATS == *' missing='* ]] || fail "$name: zsub says its count is not exact after the markers: $STATS"
  received=$(stat received) missing=$(stat missing) duplicates=$(stat duplicates)
  ((received - duplicates + missing == sent)) ||
    fail "$name: received $received - duplicates $duplicates + missing $missing != $sent sent: $STATS"
  note "$name: $STATS (sent $sent)"
}

N=1500000

# --- three rounds under the defaults: the reader pauses 6, 7 and 6 s -----------------------------
round=0
for pause in 6 7 6; do
  round=$((round + 1))
  name=round$round-pause$pause
  start_relay
  start_round "$name" "$N"
  sleep "$pause" # the condition under test: a reader that does not read for that long
  resume
  send_markers
  end_round "$name"
  expect_accounted "$name" $((N + MARKERS))
  [[ -n $(stat disconnects) ]] || fail "$name: no disconnects= in zsub's stats: $STATS"
  [[ $(stat disconnects) == 0 ]] || fail "$name: the relay dropped a subscriber that was only slow: $STATS"
  ! grep -a -q 'lost the relay' "$D/sub.err" || fail "$name: zsub took a slow reader for a dead relay: $(cat "$D/sub.err")"
  stop_relay
done

# --- zsub --heartbeat 0, the relay killed -9 after acknowledging everything ----------------------
# The relay does not drop a reader that sends no heartbeats either. Then it dies with what it held
# for zsub: no later message of the stream can reveal that loss, so zsub must not say missing=0.
start_relay --stats-interval 1
eps=(--pub-bind "$PUB_EP" --sub-bind "$SUB_EP" --ack-bind "$ACK_EP")
# More than zsub's queue (1 000 ZeroMQ messages, 64 KiB batches: ~64 MB) and its socket buffers
# hold, so that the relay still holds some of the stream for zsub when it dies.
crash_lines=600000
start_round crash $crash_lines --heartbeat 0
exec {GO_FD}>&-
wait_bg "$PUB_PID"
[[ $BG_STATUS == 0 ]] || fail "crash: zpub exited $BG_STATUS (expected 0); stderr: $(tail -n 5 "$D/pub.err")"
PUB_PID=''
# Four more of the relay's once-a-second stats lines: its loop has run over 3 heartbeat intervals
# (1 s each) while zsub did not read.
ticks=$(grep -a -c '^zrelay: stats ' "$RELAY_ERR")
wait_for_text "$RELAY_ERR" "zrelay: stats " $((ticks + 4)) || fail "crash: the relay printed no stats for 4 s"
! grep -a -q "unsubscribe 'logs'" "$RELAY_ERR" || fail "crash: the relay dropped a subscriber that was only slow"
kill_relay
start_relay "${eps[@]}"
resume
wait_for_text "$D/sub.err" "disconnected from $SUB_EP" ||
  fail "crash: zsub did not report the disconnection; stderr: $(cat "$D/sub.err")"
wait_subscribed logs
end_round crash
received=$(stat received) missing=$(stat missing)
[[ $STATS == *' missing>='* && $(stat unaccounted) == 1 && $(stat disconnects) == 1 ]] ||
  fail "crash: zsub's stats do not say that the loss in the disconnection is unknown: $STATS"
((received + missing < crash_lines)) || fail "crash: nothing was lost, so the crash was not exercised: $STATS"
note "crash: $STATS"
stop_relay

# --- the relay killed -9 and restarted while zsub stalls ---------------------------------------
start_relay --stats-interval 1
eps=(--pub-bind "$PUB_EP" --sub-bind "$SUB_EP" --ack-bind "$ACK_EP")
start_round killed 300000
# Four of the relay's once-a-second stats lines into the stall: the burst is under way, zsub's
# queue full (the relay finding it so is not awaited: under a sanitizer the burst may not get
# that far in time).
ticks=$(grep -a -c '^zrelay: stats ' "$RELAY_ERR")
wait_for_text "$RELAY_ERR" "zrelay: stats " $((ticks + 4)) || fail "killed: the relay printed no stats for 4 s"
kill_relay
# Not holding zpub's control fifo open, which would keep zpub's input from ever ending.
start_relay "${eps[@]}" {GO_FD}>&- {CTL_FD}>&-
resume # zsub, blocked writing, can say nothing before
wait_for_text "$D/sub.err" "lost the relay" || fail "killed: zsub did not notice the relay was gone: $(cat "$D/sub.err")"
wait_for_text "$D/sub.err" "disconnected from $SUB_EP" ||
  fail "killed: zsub did not report the disconnection; stderr: $(cat "$D/sub.err")"
wait_subscribed logs
send_markers
end_round killed
expect_accounted killed $((300000 + MARKERS))
[[ $(stat disconnects) -ge 1 ]] || fail "killed: zsub counted no disconnection: $STATS"
stop_relay

pass "no abort in 5 stalls; slow readers kept their subscription; both crashes reported, the count honest"
