# Shared helpers for the end-to-end tests of zrelay, zpub and zsub.
# Source it from a test script; the binaries come from $ZRELAY, $ZPUB and $ZSUB (ctest sets them).
#
# Rules every script follows (see STYLE.md, "Tests"):
#  - no fixed ports: relays bind tcp://127.0.0.1:* and report what they bound on their ready line;
#  - synchronize on messages (the ready line, the relay's "subscribe 'TOPIC'" log), never on sleeps;
#  - every wait has a deadline and every binary runs under `timeout`, so nothing can hang;
#  - temporary files live in $TEST_TMP, removed on exit together with every process started here.

set -u -o pipefail

TEST_NAME=$(basename "${0%.sh}")
# Deadline of one client command (zpub, zsub) and of one wait for a message.
CMD_LIMIT=${CMD_LIMIT:-20}
WAIT_LIMIT=${WAIT_LIMIT:-10}
# Backstop for a relay: the trap stops it long before this.
RELAY_LIMIT=${RELAY_LIMIT:-110}

note() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }

# fail MESSAGE...: explain and stop the test with status 1 (the trap cleans up).
fail() {
  printf 'FAIL: %s: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}

# pass [MESSAGE]: the test succeeded.
pass() {
  printf 'PASS: %s%s\n' "$TEST_NAME" "${1:+: $1}" >&2
  exit 0
}

# skip MESSAGE: the test cannot run here; exit 0 so that ctest does not count it as a failure.
skip() {
  printf 'SKIP: %s: %s\n' "$TEST_NAME" "$*" >&2
  exit 0
}

for _bin in ZRELAY ZPUB ZSUB; do
  [[ -n ${!_bin:-} && -x ${!_bin} ]] || {
    printf 'FAIL: %s: $%s must name the built binary (ctest sets it)\n' "$TEST_NAME" "$_bin" >&2
    exit 1
  }
done
unset _bin

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/e2e-$TEST_NAME.XXXXXXXX") || exit 1
BG_PIDS=()        # background commands started by the test (the `timeout` wrapping them)
RELAY_TPIDS=()    # per relay: pid of its `timeout` wrapper
RELAY_PIDS=()     # per relay: pid of zrelay itself
RELAY_FDS=()      # per relay: our read end of its stdout fifo
RELAY_COUNT=0

MAIN_PID=$$
# proc_start PID: print PID's start time (field 22 of /proc/PID/stat), or nothing when it is gone.
# With the pid it names one process: a pid the system has given to another process since differs.
proc_start() {
  local stat fields
  IFS= read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
  read -ra fields <<<"${stat##*) }" # the name, in parentheses, may hold spaces: fields from 3 on
  echo "${fields[19]}"
}

# ours PID START: whether PID is still the process that started at START.
ours() { [[ -n $1 && -n $2 && $(proc_start "$1") == "$2" ]]; }

cleanup() {
  # A subshell forked just before a signal may still run this trap: only the test shell cleans up.
  [[ $BASHPID == "$MAIN_PID" ]] || return 0
  local pid start tpid tstart entry
  # Every process started here, as "PID START" (start_relay and bg record them, in the test shell
  # and in case_ subshells alike). Only those still running as what was started are signalled: a
  # pid that ended long ago may belong to someone else's process now (another test's relay).
  local relays=() tpids=() bgs=()
  if [[ -f $TEST_TMP/relay.pids ]]; then
    while read -r pid start tpid tstart; do
      ours "$pid" "$start" && relays+=("$pid $start")
      ours "$tpid" "$tstart" && tpids+=("$tpid $tstart")
    done <"$TEST_TMP/relay.pids"
  fi
  if [[ -f $TEST_TMP/bg.pids ]]; then
    while read -r pid start; do
      ours "$pid" "$start" && bgs+=("$pid $start")
    done <"$TEST_TMP/bg.pids"
  fi
  for entry in "${relays[@]}"; do
    ours $entry || continue
    kill -CONT "${entry%% *}" 2>/dev/null
    kill -TERM "${entry%% *}" 2>/dev/null
  done
  for entry in "${bgs[@]}"; do
    ours $entry && kill -TERM "${entry%% *}" 2>/dev/null # timeout passes it on to the command it runs
  done
  # Give each a moment to go (killing `timeout` at once would orphan the command it runs).
  for entry in "${tpids[@]}" "${bgs[@]}"; do
    ours $entry && timeout 5 tail --pid="${entry%% *}" -f /dev/null
  done
  for entry in "${relays[@]}" "${tpids[@]}" "${bgs[@]}"; do
    ours $entry && kill -KILL "${entry%% *}" 2>/dev/null
  done
  wait 2>/dev/null
  local hook
  for hook in "${CLEANUP_HOOKS[@]}"; do "$hook"; done
  rm -rf "$TEST_TMP"
}
# Functions the cleanup runs after every process is gone (unmount what a test mounted, ...).
CLEANUP_HOOKS=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bg OUT ERR CMD...: run CMD under timeout in the background with stdout/stderr to files;
# sets BG_PID (use `wait "$BG_PID"` for its status). Stdin is /dev/null unless BG_STDIN names a file.
bg() {
  local out=$1 err=$2
  shift 2
  timeout -k 2 "$CMD_LIMIT" "$@" <"${BG_STDIN:-/dev/null}" >"$out" 2>"$err" &
  BG_PID=$!
  track_bg "$BG_PID"
}

# track_bg PID: have the cleanup stop PID, a background process the test started itself.
track_bg() {
  BG_PIDS+=("$1")
  # The cleanup knows every command from this file (one started in a case_ subshell only from it).
  echo "$1 $(proc_start "$1")" >>"$TEST_TMP/bg.pids"
}

# wait_bg PID: wait for a background command started by bg; sets BG_STATUS (124: it hit its
# timeout). Not in $(...): a subshell cannot wait for this shell's children.
wait_bg() {
  wait "$1"
  BG_STATUS=$?
}

# child_pid PID: print the pid of PID's (first) child process, or nothing if it has none.
child_pid() {
  local pid
  pid=$(cat "/proc/$1/task/$1/children" 2>/dev/null)
  pid=${pid%% *}
  [[ -n $pid ]] || pid=$(ps -o pid= --ppid "$1" | head -n1 | tr -d ' ')
  echo "$pid"
}

# start_relay [EXTRA ARGS...]: start zrelay on ephemeral loopback ports with -v and wait (with a
# deadline) for its ready line. Exports PUB_EP SUB_EP ACK_EP CONTROL_EP (empty with --control-bind
# off) (and REPLAY_EP with --journal, METRICS_URL with --metrics-bind),
# RELAY_PID (zrelay itself, for kill -STOP), RELAY_ERR (its stderr file) and RELAY_INDEX (for
# stop_relay).
start_relay() {
  RELAY_COUNT=$((RELAY_COUNT + 1))
  local i=$RELAY_COUNT
  local base=$TEST_TMP/relay$i fd line tpid pid replay=() control=()
  [[ " $* " == *' --journal '* && " $* " != *' --replay-bind '* ]] && replay=(--replay-bind 'tcp://127.0.0.1:*')
  # The default control port would be shared by relays started in parallel (ctest -j).
  [[ " $* " != *' --control-bind '* ]] && control=(--control-bind 'tcp://127.0.0.1:*')
  mkfifo "$base.fifo" || fail "cannot make a fifo in $TEST_TMP"
  timeout -k 5 "$RELAY_LIMIT" "$ZRELAY" --pub-bind 'tcp://127.0.0.1:*' --sub-bind 'tcp://127.0.0.1:*' \
    --ack-bind 'tcp://127.0.0.1:*' "${replay[@]}" "${control[@]}" -v "$@" >"$base.fifo" 2>"$base.err" &
  tpid=$!
  RELAY_TPIDS[i]=$tpid
  # Opening blocks until the relay's side opens the fifo, which its shell does before exec.
  exec {fd}<"$base.fifo"
  RELAY_FDS[i]=$fd
  if ! IFS= read -r -t "$WAIT_LIMIT" -u "$fd" line; then
    fail "zrelay $* printed no ready line within ${WAIT_LIMIT}s; its stderr: $(cat "$base.err")"
  fi
  # More endpoints (control=EP, metrics=URL) may follow replay=, each as ' NAME=VALUE'.
  [[ $line =~ ^zrelay:\ ready\ pub=([^ ]+)\ sub=([^ ]+)\ ack=([^ ]+)(\ replay=([^ ]+))?(\ [a-z]+=[^ ]+)*$ ]] ||
    fail "unexpected ready line from zrelay: '$line'"
  PUB_EP=${BASH_REMATCH[1]} SUB_EP=${BASH_REMATCH[2]} ACK_EP=${BASH_REMATCH[3]} REPLAY_EP=${BASH_REMATCH[5]}
  CONTROL_EP= METRICS_URL=
  [[ $line =~ \ control=([^ ]+) ]] && CONTROL_EP=${BASH_REMATCH[1]}
  [[ $line =~ \ metrics=([^ ]+) ]] && METRICS_URL=${BASH_REMATCH[1]}
  [[ $PUB_EP != *'*'* && $SUB_EP != *'*'* && $ACK_EP != *'*'* ]] ||
    fail "zrelay reported an unresolved wildcard endpoint: '$line'"
  # timeout forked zrelay and has already exec'd it (it printed), so this is the relay's pid.
  pid=$(child_pid "$tpid")
  [[ -n $pid ]] || fail "cannot find zrelay's pid (child of $tpid)"
  RELAY_PIDS[i]=$pid
  echo "$pid $(proc_start "$pid") $tpid $(proc_start "$tpid")" >>"$TEST_TMP/relay.pids"
  RELAY_PID=$pid RELAY_ERR=$base.err RELAY_INDEX=$i
  export PUB_EP SUB_EP ACK_EP REPLAY_EP CONTROL_EP METRICS_URL RELAY_PID RELAY_ERR RELAY_INDEX
}

# kill_relay: SIGKILL the current relay (no flush, no final line) and forget it.
kill_relay() {
  local i=$RELAY_INDEX fd=${RELAY_FDS[$RELAY_INDEX]}
  kill -KILL "$RELAY_PID"
  wait "${RELAY_TPIDS[i]}" 2>/dev/null
  RELAY_PIDS[i]='' RELAY_TPIDS[i]=''
  exec {fd}<&-
}

# case_ NAME FUNCTION [ARGS...]: run FUNCTION in a subshell (its fail ends only that case) and
# record a failure in FAILED; cases_passed fails the script if any case did.
FAILED=()
case_() {
  local name=$1
  shift
  RELAY_COUNT=$((RELAY_COUNT + 100)) # the subshell's relays get names of their own
  if ("$@"); then
    note "ok: $name"
  else
    FAILED+=("$name")
  fi
}
cases_passed() {
  ((${#FAILED[@]} == 0)) || fail "${#FAILED[@]} case(s) failed: $(printf '[%s] ' "${FAILED[@]}")"
}

# stop_relay [INDEX]: SIGTERM the relay (the latest one by default) and check that it exits 0
# within the deadline and prints its final counters. Sets RELAY_FINAL to that line.
stop_relay() {
  local i=${1:-$RELAY_INDEX}
  local pid=${RELAY_PIDS[i]} tpid=${RELAY_TPIDS[i]} err=$TEST_TMP/relay$i.err status
  kill -CONT "$pid" 2>/dev/null
  kill -TERM "$pid" 2>/dev/null || fail "relay $i (pid $pid) was not running when asked to stop"
  # Wait for the exit with a deadline; kill the relay if it ignores SIGTERM.
  timeout "$WAIT_LIMIT" tail --pid="$pid" -f /dev/null
  kill -KILL "$pid" 2>/dev/null
  wait "$tpid"
  status=$?
  RELAY_PIDS[i]='' RELAY_TPIDS[i]=''
  local fd=${RELAY_FDS[i]}
  exec {fd}<&-
  [[ $status == 0 ]] ||
    fail "zrelay exited with status $status on SIGTERM (expected 0; 137 means it ignored SIGTERM for ${WAIT_LIMIT}s); stderr: $(tail -n 5 "$err")"
  RELAY_FINAL=$(grep -a '^zrelay: final ' "$err" | tail -n1)
  [[ -n $RELAY_FINAL ]] || fail "zrelay printed no 'zrelay: final' line on SIGTERM; stderr: $(tail -n 5 "$err")"
}

# relay_counter NAME: the value of NAME=… in $RELAY_FINAL.
relay_counter() {
  local v
  v=$(tr ' ' '\n' <<<"$RELAY_FINAL" | sed -n "s/^$1=//p")
  [[ -n $v ]] || fail "no counter '$1' in the relay's final line: $RELAY_FINAL"
  echo "$v"
}

# _wait_for_match FILE TEXT COUNT [GREP OPTION...]: the body of wait_for_line and wait_for_text;
# the options (-x) go to grep, which matches TEXT as a fixed string.
_wait_for_match() {
  local file=$1 want=$2 count=$3 got tailpid tailfd
  shift 3
  exec {tailfd}< <(exec timeout "$WAIT_LIMIT" tail -n +1 -F "$file" 2>/dev/null)
  tailpid=$!
  got=$(grep -a -c -m "$count" "$@" -F -- "$want" <&"$tailfd")
  exec {tailfd}<&-
  kill "$tailpid" 2>/dev/null
  [[ ${got:-0} -ge $count ]]
}

# wait_for_line FILE LINE [COUNT]: wait (deadline WAIT_LIMIT) until FILE holds COUNT (default 1)
# lines equal to LINE. Follows the file with tail -F, so it wakes on the write, not on a timer.
wait_for_line() { _wait_for_match "$1" "$2" "${3:-1}" -x; }

# wait_for_text FILE TEXT [COUNT]: like wait_for_line, for lines that contain TEXT.
wait_for_text() { _wait_for_match "$1" "$2" "${3:-1}"; }

# wait_subscribed TOPIC [COUNT]: wait until the current relay logged its COUNT-th (default first)
# "subscribe 'TOPIC'": from then on a message on TOPIC reaches that subscriber.
wait_subscribed() {
  wait_for_line "$RELAY_ERR" "zrelay: subscribe '$1'" "${2:-1}" ||
    fail "the relay did not log \"subscribe '$1'\" within ${WAIT_LIMIT}s; relay stderr: $(tail -n 5 "$RELAY_ERR")"
}

# run_cmd CMD...: run CMD under timeout with stdout/stderr to $TEST_TMP/last.out and last.err
# (stdin is inherited: redirect the call). Sets LAST_STATUS and LAST_CMD.
run_cmd() {
  LAST_CMD=$(printf '%q ' "$@")
  timeout -k 2 "$CMD_LIMIT" "$@" >"$TEST_TMP/last.out" 2>"$TEST_TMP/last.err"
  LAST_STATUS=$?
}

# expect_status N CMD...: run CMD (as run_cmd) and fail unless it exits with status N.
expect_status() {
  local want=$1
  shift
  run_cmd "$@"
  if [[ $LAST_STATUS == 124 || $LAST_STATUS == 137 ]]; then
    fail "hung: $LAST_CMD did not finish within ${CMD_LIMIT}s (expected status $want); stderr: $(head -c 2000 "$TEST_TMP/last.err")"
  fi
  [[ $LAST_STATUS == "$want" ]] ||
    fail "$LAST_CMD exited with status $LAST_STATUS, expected $want; stderr: $(head -c 2000 "$TEST_TMP/last.err")"
}

# expect_stderr_contains TEXT: the last command's stderr contains TEXT.
expect_stderr_contains() {
  grep -a -q -F -- "$1" "$TEST_TMP/last.err" ||
    fail "stderr of $LAST_CMD does not contain \"$1\"; it was: $(head -c 2000 "$TEST_TMP/last.err")"
}

# expect_stderr_one_line: the last command's error is one line (a person reads it).
expect_stderr_one_line() {
  local n
  n=$(wc -l <"$TEST_TMP/last.err")
  [[ $n == 1 ]] || fail "stderr of $LAST_CMD has $n lines, expected one error line: $(head -c 2000 "$TEST_TMP/last.err")"
}

# expect_relay_alive: the current relay process still runs.
expect_relay_alive() {
  kill -0 "$RELAY_PID" 2>/dev/null || fail "the relay died ($*); its stderr: $(tail -n 5 "$RELAY_ERR")"
}

# check_pubsub TOPIC PAYLOAD: through the current relay, zpub (acked) -m PAYLOAD reaches a fresh
# zsub -t TOPIC -C 1. COUNT of earlier subscriptions to TOPIC on this relay may be given as $3.
check_pubsub() {
  local topic=$1 payload=$2 nth=${3:-1} out=$TEST_TMP/check.$RANDOM
  bg "$out.out" "$out.err" "$ZSUB" -t "$topic" --sub-connect "$SUB_EP" -C 1
  local sub=$BG_PID
  wait_subscribed "$topic" "$nth"
  expect_status 0 "$ZPUB" -t "$topic" --ack-connect "$ACK_EP" -m "$payload"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 ]] || fail "zsub -t $topic -C 1 exited with status $BG_STATUS; stderr: $(cat "$out.err")"
  [[ $(cat "$out.out") == "$payload" ]] || fail "zsub received '$(cat "$out.out")', expected '$payload'"
}
