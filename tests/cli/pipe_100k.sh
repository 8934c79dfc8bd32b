#!/usr/bin/env bash
# 100 000 lines piped into zpub (acked) arrive at `zsub -C 100000` complete, in order and byte-exact.
# The content varies: numbers, runs of spaces, tabs, a CR, UTF-8, empty lines and one 100 KB line.
# Then 100 000 lines with a topic each (--topic-sep, 500 topics interleaved: a new topic on every
# line) arrive complete, each on its topic and in order per topic.
# Prints the measured lines/s (information only, never a pass/fail criterion).
source "$(dirname "$0")/lib.sh"

N=100000
in=$TEST_TMP/in.txt
{
  awk -v n=$((N / 2 - 1)) 'BEGIN {
    for (i = 1; i <= n; i++) {
      m = i % 8
      if (m == 0) print i
      else if (m == 1) print ""
      else if (m == 2) printf "line %d  with   spaces\tand a tab \n", i
      else if (m == 3) printf "h\303\251llo w\303\266rld \342\230\203 \346\227\245\346\234\254\350\252\236 %d\n", i
      else if (m == 4) printf "  %d leading and trailing  \n", i
      else if (m == 5) printf "cr\rinside %d {\"json\": [1, 2]} \\\\ back\\\\slash\n", i
      else if (m == 6) printf "%0" (i % 300) "d\n", i
      else print "-" i "-"
    }
  }'
  # one 100 KB line (printable, varied) in the middle
  head -c 76800 /dev/urandom | base64 -w0
  echo
  awk -v s=$((N / 2 + 1)) -v n=$N 'BEGIN { for (i = s; i <= n; i++) if (i % 5 == 0) print ""; else printf "%d \316\261\316\262\316\263 %x\n", i, i * 7919 }'
} >"$in"
lines=$(wc -l <"$in")
[[ $lines == "$N" ]] || fail "test bug: generated $lines lines, not $N"

start_relay
out=$TEST_TMP/out.txt
bg "$out" "$TEST_TMP/sub.err" "$ZSUB" -t pipe --sub-connect "$SUB_EP" -C "$N" -W 5
sub=$BG_PID
wait_subscribed pipe

t0=$(date +%s%N)
expect_status 0 "$ZPUB" -t pipe --ack-connect "$ACK_EP" --stats <"$in"
t1=$(date +%s%N)
wait_bg "$sub"
t2=$(date +%s%N)
[[ $BG_STATUS == 0 ]] ||
  fail "zsub -C $N exited with status $BG_STATUS (5: nothing more for 5 s); it got $(wc -l <"$out") lines; stderr: $(head -c 2000 "$TEST_TMP/sub.err")"

got=$(wc -l <"$out")
[[ $got == "$N" ]] || fail "zsub printed $got lines, expected $N"
if ! cmp "$in" "$out" >"$TEST_TMP/cmp" 2>&1; then
  fail "received lines differ from the input: $(cat "$TEST_TMP/cmp"); first differing line: $(diff <(cat -A "$in") <(cat -A "$out") | head -n 4 | cut -c1-200)"
fi
[[ ! -s $TEST_TMP/sub.err ]] || fail "zsub reported problems: $(head -c 2000 "$TEST_TMP/sub.err")"

# Interleaved topics: the publisher batches many topics at once, and keeps the order per topic.
tin=$TEST_TMP/topics.txt
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) printf "mix.%d %d\n", i % 500, i }' >"$tin"
tout=$TEST_TMP/topics.out
bg "$tout" "$TEST_TMP/tsub.err" "$ZSUB" -t mix. -v --sub-connect "$SUB_EP" -C "$N" -W 5
tsub=$BG_PID
wait_subscribed mix.
expect_status 0 "$ZPUB" --topic-sep ' ' --ack-connect "$ACK_EP" <"$tin"
wait_bg "$tsub"
[[ $BG_STATUS == 0 ]] ||
  fail "zsub -t mix. -C $N exited with status $BG_STATUS; it got $(wc -l <"$tout") lines; stderr: $(head -c 2000 "$TEST_TMP/tsub.err")"
# Each line on its own topic, each topic's lines in the order published, none missing or twice.
bad=$(awk '{ if ($1 != "mix." ($2 % 500)) { print "line " NR " on the wrong topic: " $0; exit }
             if (($1 in last) && $2 <= last[$1]) { print "line " NR " out of order on " $1 ": " $2 " after " last[$1]; exit }
             last[$1] = $2 }' "$tout")
[[ -z $bad ]] || fail "interleaved topics: $bad"
cmp <(awk '{ print $2 }' "$tout" | sort -n) <(awk '{ print $2 }' "$tin") >/dev/null ||
  fail "interleaved topics: the payloads received are not those sent (got $(wc -l <"$tout") lines)"
[[ ! -s $TEST_TMP/tsub.err ]] || fail "zsub -t mix. reported problems: $(head -c 2000 "$TEST_TMP/tsub.err")"

stop_relay
[[ $(relay_counter dropped) == 0 ]] || fail "relay dropped messages: $RELAY_FINAL"

bytes=$(wc -c <"$in")
note "zpub: $(grep -a 'stats' "$TEST_TMP/last.err")"
note "$N lines ($bytes bytes) published in $(((t1 - t0) / 1000000)) ms, delivered in $(((t2 - t0) / 1000000)) ms:" \
  "$(awk -v n=$N -v ns=$((t2 - t0)) 'BEGIN { printf "%.0f lines/s end to end (information only)", n / (ns / 1e9) }')"
pass "$N lines arrived complete, in order and byte-exact; $N lines on 500 interleaved topics complete and in order per topic"
