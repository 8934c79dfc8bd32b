#!/usr/bin/env bash
# zrelay --metrics-bind as an operator meets it: /metrics scraped with curl passes a real scraper's
# checker (promtool check metrics) and counts what was sent; the gauge of subscriber connections
# follows zsubs (one without heartbeats, two with: the data connection and its probe); /healthz says ok, other paths are 404, other methods 405; the journal's figures
# with --journal; a bad HOST:PORT is a usage error (2), a port in use a runtime error (1); IPv6.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v curl >/dev/null || skip "curl is not installed (Debian package curl)"
command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"

RELAY_ARGS=(--pub-bind 'tcp://127.0.0.1:*' --sub-bind 'tcp://127.0.0.1:*' --ack-bind 'tcp://127.0.0.1:*')

# scrape [PATH]: GET $METRICS_URL/PATH (default metrics) into $TEST_TMP/scrape; sets HTTP_STATUS.
scrape() {
  HTTP_STATUS=$(timeout "$CMD_LIMIT" curl -sS -g -o "$TEST_TMP/scrape" -w '%{http_code}' "$METRICS_URL/${1:-metrics}") ||
    fail "curl $METRICS_URL/${1:-metrics} failed: $HTTP_STATUS"
}

# metric NAME: the value of the sample NAME in the last scrape (nothing if it is missing).
metric() { awk -v n="$1" '$1 == n { print $2 }' "$TEST_TMP/scrape"; }

# wait_metric NAME VALUE: scrape until NAME is VALUE, within WAIT_LIMIT seconds. The gauges follow
# events the relay reads in its loop; each scrape is a request, not a timer.
wait_metric() {
  local deadline=$((SECONDS + WAIT_LIMIT))
  while :; do
    scrape
    [[ $(metric "$1") == "$2" ]] && return 0
    ((SECONDS < deadline)) || fail "$1 is '$(metric "$1")' after ${WAIT_LIMIT}s, expected $2"
  done
}

# promtool_ok: the last scrape passes promtool check metrics with nothing to say.
promtool_ok() {
  local out
  # promtool passes an empty page: the page must be there first.
  grep -q '^zrelay_info{version=' "$TEST_TMP/scrape" || fail "the scrape holds no zrelay_info: $(head -c 300 "$TEST_TMP/scrape")"
  out=$(timeout "$CMD_LIMIT" promtool check metrics <"$TEST_TMP/scrape" 2>&1) ||
    fail "promtool check metrics failed: $out"
  [[ -z $out ]] || fail "promtool check metrics found problems: $out"
}

bad_flags() {
  local bad
  for bad in 9560 127.0.0.1 :9560 127.0.0.1: 127.0.0.1:65536 127.0.0.1:x ::1:9560 '[::1' '[::1]'; do
    expect_status 2 "$ZRELAY" "${RELAY_ARGS[@]}" --metrics-bind "$bad"
    expect_stderr_one_line
    expect_stderr_contains "zrelay: error: --metrics-bind '$bad': "
    expect_stderr_contains "(see 'zrelay --help')"
  done
  expect_status 2 "$ZRELAY" "${RELAY_ARGS[@]}" --metrics-bind
  expect_stderr_contains "'--metrics-bind' is missing an argument"
  expect_status 1 "$ZRELAY" "${RELAY_ARGS[@]}" --metrics-bind nosuchhost.invalid:9560
  expect_stderr_one_line
  expect_stderr_contains "zrelay: error: cannot bind 'nosuchhost.invalid:9560': "
}

scrape_counts() {
  local n=100 port sub sub2
  start_relay --metrics-bind 127.0.0.1:0
  [[ $METRICS_URL =~ ^http://127\.0\.0\.1:([0-9]+)$ && ${BASH_REMATCH[1]} != 0 ]] ||
    fail "the ready line gave no metrics=http://127.0.0.1:PORT with the port bound: '$METRICS_URL'"
  port=${BASH_REMATCH[1]}

  # A second relay on the same port: a runtime error, as for the other sockets.
  expect_status 1 "$ZRELAY" "${RELAY_ARGS[@]}" --metrics-bind "127.0.0.1:$port"
  expect_stderr_one_line
  expect_stderr_contains "zrelay: error: cannot bind '127.0.0.1:$port': Address already in use"

  scrape
  [[ $HTTP_STATUS == 200 ]] || fail "GET /metrics answered $HTTP_STATUS"
  promtool_ok
  [[ $(metric zrelay_msgs_in_total) == 0 ]] || fail "msgs_in is '$(metric zrelay_msgs_in_total)' before any message"
  [[ $(metric zrelay_subscriber_connections) == 0 ]] || fail "subscriber_connections is not 0 before any zsub"
  [[ $(metric "zrelay_info{version=\"$("$ZRELAY" --version | cut -d' ' -f2)\"}") == 1 ]] ||
    fail "no zrelay_info with the version: $(grep zrelay_info "$TEST_TMP/scrape")"
  [[ $(metric zrelay_start_time_seconds) =~ ^[0-9]+\.[0-9]+$ ]] || fail "no zrelay_start_time_seconds"
  grep -q '^zrelay_publishers_total' "$TEST_TMP/scrape" && fail "publishers, a gauge, is named like a counter"

  bg "$TEST_TMP/sub.out" "$TEST_TMP/sub.err" "$ZSUB" -t m --sub-connect "$SUB_EP" -C "$n" --heartbeat 0
  sub=$BG_PID
  wait_subscribed m
  wait_metric zrelay_subscriber_connections 1
  # A zsub with heartbeats (the default) holds a second connection, its probe.
  bg "$TEST_TMP/sub2.out" "$TEST_TMP/sub2.err" "$ZSUB" -t '' --sub-connect "$SUB_EP" -C "$n"
  sub2=$BG_PID
  wait_subscribed ''
  wait_metric zrelay_subscriber_connections 3
  seq 1 "$n" >"$TEST_TMP/in"
  expect_status 0 "$ZPUB" -t m --ack-connect "$ACK_EP" <"$TEST_TMP/in"
  wait_bg "$sub"
  [[ $BG_STATUS == 0 ]] || fail "zsub -C $n exited $BG_STATUS: $(cat "$TEST_TMP/sub.err")"
  wait_bg "$sub2"
  [[ $BG_STATUS == 0 ]] || fail "the second zsub -C $n exited $BG_STATUS: $(cat "$TEST_TMP/sub2.err")"
  cmp -s "$TEST_TMP/in" "$TEST_TMP/sub.out" || fail "zsub did not receive the $n lines"
  cmp -s "$TEST_TMP/in" "$TEST_TMP/sub2.out" || fail "the second zsub did not receive the $n lines"
  # Acked: every message was counted before its ack went out.
  scrape
  promtool_ok
  [[ $(metric zrelay_msgs_in_total) == "$n" ]] || fail "msgs_in is '$(metric zrelay_msgs_in_total)', expected $n"
  [[ $(metric zrelay_msgs_out_total) == "$n" ]] || fail "msgs_out is '$(metric zrelay_msgs_out_total)', expected $n"
  [[ $(metric zrelay_held) == 0 ]] || fail "held is '$(metric zrelay_held)' with nothing held"
  [[ $(metric zrelay_publishers) == 1 ]] || fail "publishers is '$(metric zrelay_publishers)', expected 1"
  [[ $(metric zrelay_acks_total) -ge 1 ]] || fail "acks is '$(metric zrelay_acks_total)'"
  # zsub has gone; so has zpub's connection.
  wait_metric zrelay_subscriber_connections 0
  wait_metric zrelay_ack_connections 0

  scrape healthz
  [[ $HTTP_STATUS == 200 && $(cat "$TEST_TMP/scrape") == ok ]] ||
    fail "GET /healthz answered $HTTP_STATUS '$(cat "$TEST_TMP/scrape")', expected 200 ok"
  scrape nothing-here
  [[ $HTTP_STATUS == 404 ]] || fail "GET /nothing-here answered $HTTP_STATUS, expected 404"
  HTTP_STATUS=$(timeout "$CMD_LIMIT" curl -sS -o /dev/null -w '%{http_code}' -X POST "$METRICS_URL/metrics")
  [[ $HTTP_STATUS == 405 ]] || fail "POST /metrics answered $HTTP_STATUS, expected 405"
  expect_relay_alive "after the scrapes"
  stop_relay
  [[ $(relay_counter subscriber_connections) == 0 && $(relay_counter msgs_in) == "$n" ]] ||
    fail "the final line does not agree: $RELAY_FINAL"
}

journal_figures() {
  start_relay --metrics-bind 127.0.0.1:0 --journal "$TEST_TMP/journal"
  local m
  for m in one two three; do expect_status 0 "$ZPUB" -t j --ack-connect "$ACK_EP" -m "$m"; done
  scrape
  promtool_ok
  [[ $(metric zrelay_journaled_total) == 3 ]] || fail "journaled is '$(metric zrelay_journaled_total)', expected 3"
  [[ $(metric zrelay_journal_messages) == 3 ]] || fail "journal_messages is '$(metric zrelay_journal_messages)'"
  [[ $(metric zrelay_journal_segments) == 1 ]] || fail "journal_segments is '$(metric zrelay_journal_segments)'"
  [[ $(metric zrelay_journal_bytes) -gt 0 ]] || fail "journal_bytes is '$(metric zrelay_journal_bytes)'"
  [[ $(metric zrelay_journal_bytes_written_total) -gt 0 ]] || fail "no bytes written counted"
  [[ $(metric zrelay_journal_unavailable) == 0 ]] || fail "the journal is said to be unavailable"
  [[ $(metric zrelay_journal_pending) == 0 ]] || fail "journal_pending is '$(metric zrelay_journal_pending)'"
  scrape healthz
  [[ $HTTP_STATUS == 200 ]] || fail "GET /healthz answered $HTTP_STATUS with a working journal"
  stop_relay
}

ipv6() {
  grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null || {
    note "skipped: no IPv6 loopback"
    return 0
  }
  start_relay --metrics-bind '[::1]:0'
  [[ $METRICS_URL =~ ^http://\[::1\]:[1-9][0-9]*$ ]] || fail "metrics URL '$METRICS_URL' is not http://[::1]:PORT"
  scrape healthz
  [[ $HTTP_STATUS == 200 ]] || fail "GET /healthz over IPv6 answered $HTTP_STATUS"
  stop_relay
}

case_ "bad --metrics-bind values are usage errors" bad_flags
case_ "scrape: promtool, the counts, the subscriber gauge, healthz, 404, 405, port in use" scrape_counts
case_ "the journal's figures" journal_figures
case_ "IPv6" ipv6
cases_passed
pass
