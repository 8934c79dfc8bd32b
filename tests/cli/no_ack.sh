#!/usr/bin/env bash
# Fire-and-forget publishing (zpub --no-ack, PUB -> the relay's XSUB) delivers every line to zsub,
# byte-exact, and zpub exits 0 — both with zrelay's own batches and with --plain [topic][payload].
source "$(dirname "$0")/lib.sh"

N=5000
in=$TEST_TMP/in.txt
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) if (i % 97 == 0) print ""; else printf "%d fire and forget \303\274ber %s\n", i, substr("abcdefghijklmnopqrstuvwxyz", 1, i % 27) }' >"$in"

start_relay

# run_no_ack NAME TOPIC [EXTRA ZPUB ARGS...]
run_no_ack() {
  local name=$1 topic=$2 nth=$3
  shift 3
  local out=$TEST_TMP/$name.out err=$TEST_TMP/$name.err
  bg "$out" "$err" "$ZSUB" -t "$topic" --sub-connect "$SUB_EP" -C "$N" -W 3
  local sub=$BG_PID
  wait_subscribed "$topic" "$nth"
  expect_status 0 "$ZPUB" -t "$topic" --no-ack --pub-connect "$PUB_EP" "$@" <"$in"
  wait_bg "$sub"
  if [[ $BG_STATUS != 0 ]]; then
    local got
    got=$(wc -l <"$out")
    stop_relay
    fail "$name: zpub $* --no-ack exited 0 but only $got of $N lines reached zsub -C $N (status $BG_STATUS;" \
      "5: nothing more for 3 s); relay: dropped=$(relay_counter dropped) msgs_out=$(relay_counter msgs_out);" \
      "zsub stderr: '$(head -c 1000 "$err")'$( [[ -s $err ]] || echo ' (no gap reported)')"
  fi
  cmp -s "$in" "$out" ||
    fail "$name: received lines differ from the input ($(wc -l <"$out") of $N lines); first difference: $(diff "$in" "$out" | head -n 3)"
  note "$name: $N lines delivered byte-exact"
}

run_no_ack batches fire 1
run_no_ack plain plain 1 --plain

stop_relay
[[ $(relay_counter dropped) == 0 ]] || fail "relay dropped messages: $RELAY_FINAL"
pass "--no-ack and --no-ack --plain delivered $N lines each"
