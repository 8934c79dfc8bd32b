#!/usr/bin/env bash
# The Debian package as an operator gets it: cpack builds zrelay_VERSION_amd64.deb from the build
# directory (into a directory of its own: nothing in the build is rebuilt), lintian finds no error in
# it, apt-get installs it, the installed relay starts (from /etc/zrelay/zrelay.toml once zrelay has
# --config) and carries a message from the installed zpub to the installed zsub, the man pages
# render without a warning, systemd-analyze verifies the installed unit, and apt-get purge removes
# it all again - also when a step fails (a cleanup hook). Needs root: skipped otherwise (status 77).
# BUILD_DIR is the build directory; ZRELAY, ZPUB, ZSUB its binaries (for lib.sh; the installed ones
# are tested).
if [[ $(id -u) != 0 ]]; then
  echo "SKIP: package: needs root to install the package (apt-get install, apt-get purge)" >&2
  exit 77
fi
source "$(dirname "$0")/../cli/lib.sh"
CMD_LIMIT=60

for tool in cpack lintian apt-get dpkg-deb dpkg-shlibdeps man lexgrog systemd-analyze; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/common.sh's ZRELAY_TEST_PACKAGES installs it)"
done
[[ -f ${BUILD_DIR:-}/CPackConfig.cmake ]] || fail "BUILD_DIR must name a configured build with CPackConfig.cmake"

# One package test at a time on this machine (another build directory may run it too).
mkdir -p /run/lock
exec {lock}>/run/lock/zrelay-package-test.lock
flock -w 240 "$lock" || fail "another package test held /run/lock/zrelay-package-test.lock for 240 s"
if dpkg-query -W -f='${Status}' zrelay 2>/dev/null | grep -q 'installed'; then
  fail "a zrelay package is installed already; this test would replace and purge it: remove it first (apt-get purge zrelay)"
fi

PURGE=0
purge_package() {
  ((PURGE)) || return 0
  timeout 120 env DEBIAN_FRONTEND=noninteractive apt-get purge -y -o DPkg::Lock::Timeout=60 zrelay \
    >"$TEST_TMP/purge.log" 2>&1 || note "apt-get purge zrelay failed: $(tail -n 5 "$TEST_TMP/purge.log")"
  if dpkg-query -W -f='${Status}' zrelay 2>/dev/null | grep -q 'installed'; then
    printf 'FAIL: %s: zrelay is still installed after apt-get purge\n' "$TEST_NAME" >&2
    exit 1
  fi
  local left
  for left in /usr/bin/zrelay /usr/bin/zpub /usr/bin/zsub /usr/bin/zbench /etc/zrelay \
    /usr/lib/systemd/system/zrelay.service /usr/share/doc/zrelay /usr/share/man/man1/zrelay.1.gz /var/lib/zrelay; do
    if [[ -e $left ]]; then
      printf 'FAIL: %s: %s is left behind after apt-get purge zrelay\n' "$TEST_NAME" "$left" >&2
      exit 1
    fi
  done
}
CLEANUP_HOOKS+=(purge_package)

# The package.
version=$("$ZRELAY" --version) || fail "the built zrelay --version failed"
version=${version#zrelay }
run_cmd cpack -G DEB --config "$BUILD_DIR/CPackConfig.cmake" -B "$TEST_TMP/cpack"
[[ $LAST_STATUS == 0 ]] || fail "cpack -G DEB failed ($LAST_STATUS): $(tail -n 20 "$TEST_TMP/last.out" "$TEST_TMP/last.err")"
deb=$TEST_TMP/cpack/zrelay_${version}_amd64.deb
[[ -f $deb ]] || fail "cpack made no $(basename "$deb"): $(ls "$TEST_TMP/cpack")"
note "built $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"

# lintian: no error (warnings and the rest are printed, the README lists why they stay).
run_cmd lintian --fail-on error "$deb"
cat "$TEST_TMP/last.out" >&2
[[ $LAST_STATUS == 0 ]] || fail "lintian found errors in $(basename "$deb") (status $LAST_STATUS): $(grep '^E:' "$TEST_TMP/last.out")"

# Install it as an operator does.
PURGE=1
run_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=60 "$deb"
[[ $LAST_STATUS == 0 ]] || fail "apt-get install $(basename "$deb") failed ($LAST_STATUS): $(tail -n 10 "$TEST_TMP/last.out" "$TEST_TMP/last.err")"
for tool in zrelay zpub zsub zbench; do
  [[ -x /usr/bin/$tool ]] || fail "/usr/bin/$tool is not installed"
done
[[ -f /etc/zrelay/zrelay.toml ]] || fail "/etc/zrelay/zrelay.toml is not installed"
grep -qx /etc/zrelay/zrelay.toml /var/lib/dpkg/info/zrelay.conffiles ||
  fail "/etc/zrelay/zrelay.toml is not a conffile of the package"
unit=/usr/lib/systemd/system/zrelay.service
[[ -f $unit ]] || fail "$unit is not installed"

# The installed binaries.
for tool in zrelay zpub zsub; do
  expect_status 0 "/usr/bin/$tool" --version
  [[ $(cat "$TEST_TMP/last.out") == "$tool $version" ]] ||
    fail "/usr/bin/$tool --version printed '$(cat "$TEST_TMP/last.out")', expected '$tool $version'"
done
expect_status 0 /usr/bin/zbench --help
grep -q -- '--scenario' "$TEST_TMP/last.out" || fail "/usr/bin/zbench --help does not list --scenario"

ZRELAY=/usr/bin/zrelay ZPUB=/usr/bin/zpub ZSUB=/usr/bin/zsub
# The relay from the installed configuration (its journal here, its sockets on ephemeral ports: the
# command line wins over the file); the file's own settings are in force.
start_relay --config /etc/zrelay/zrelay.toml --journal "$TEST_TMP/journal" --metrics-bind 127.0.0.1:0
# A scraper's view of it: promtool accepts what /metrics serves.
[[ -n $METRICS_URL ]] || fail "the installed relay printed no metrics= on its ready line"
curl -sf "$METRICS_URL/metrics" >"$TEST_TMP/metrics.txt" || fail "curl $METRICS_URL/metrics failed"
promtool check metrics <"$TEST_TMP/metrics.txt" >"$TEST_TMP/promtool.out" 2>&1 ||
  fail "promtool check metrics on the installed relay's /metrics: $(cat "$TEST_TMP/promtool.out")"
grep -q '^zrelay_journal_segments ' "$TEST_TMP/metrics.txt" || fail "no journal figures in /metrics"
[[ $(curl -s "$METRICS_URL/healthz") == ok ]] || fail "/healthz of the installed relay is not ok"
expect_status 0 /usr/bin/zrelay --config /etc/zrelay/zrelay.toml --print-config
grep -q -x 'journal-max-bytes = "1G"' "$TEST_TMP/last.out" ||
  fail "--print-config with the installed file does not show its journal-max-bytes: $(cat "$TEST_TMP/last.out")"
check_pubsub pkg.test "through the installed zrelay"
# A reload (what 'systemctl reload zrelay' sends) drops no client: a zsub connected across it gets
# what comes before and after.
bg "$TEST_TMP/reload-sub.out" "$TEST_TMP/reload-sub.err" /usr/bin/zsub -t pkg.reload --sub-connect "$SUB_EP" -C 2
reload_sub=$BG_PID
wait_subscribed pkg.reload
expect_status 0 /usr/bin/zpub -t pkg.reload --ack-connect "$ACK_EP" -m before
kill -HUP "$RELAY_PID" || fail "cannot send SIGHUP to the installed relay"
wait_for_text "$RELAY_ERR" "zrelay: reload: no change" ||
  fail "the installed relay did not log its reload: $(tail -n 5 "$RELAY_ERR")"
expect_status 0 /usr/bin/zpub -t pkg.reload --ack-connect "$ACK_EP" -m after
wait_bg "$reload_sub"
[[ $BG_STATUS == 0 && $(cat "$TEST_TMP/reload-sub.out") == $'before\nafter' ]] ||
  fail "the zsub connected across the reload got '$(cat "$TEST_TMP/reload-sub.out")' (status $BG_STATUS): $(cat "$TEST_TMP/reload-sub.err")"
stop_relay

# The man pages: installed (unless dpkg is told to leave man pages out, as slim images do: then the
# package's own), rendered without a warning, with the sections an operator looks for.
mandir=/usr/share/man/man1
if [[ ! -e $mandir/zrelay.1.gz ]] && grep -qs 'path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
  note "dpkg leaves out /usr/share/man here: checking the man pages in the package instead"
  dpkg-deb -x "$deb" "$TEST_TMP/unpacked" || fail "dpkg-deb -x $(basename "$deb") failed"
  mandir=$TEST_TMP/unpacked/usr/share/man/man1
fi
for tool in zrelay zpub zsub zbench; do
  page=$mandir/$tool.1.gz
  [[ -f $page ]] || fail "$page is not installed"
  warnings=$(MANWIDTH=80 timeout 30 man --warnings -l "$page" 2>&1 >/dev/null)
  [[ -z $warnings ]] || fail "man -l $page warns: $warnings"
  lexgrog "$page" | grep -q -F "$tool - " || fail "lexgrog finds no NAME line in $page: $(lexgrog "$page")"
  for section in NAME SYNOPSIS DESCRIPTION OPTIONS '"EXIT STATUS"' FILES EXAMPLES; do
    zcat "$page" | grep -q -x -F ".SH $section" || fail "$page has no $section section"
  done
  zcat "$page" | grep -q -F '\-\-help' || fail "$page lists no --help option"
done

# The installed unit.
run_cmd systemd-analyze --man=no verify "$unit"
[[ $LAST_STATUS == 0 ]] || fail "systemd-analyze verify $unit failed ($LAST_STATUS): $(cat "$TEST_TMP/last.err")"
if grep -q zrelay "$TEST_TMP/last.out" "$TEST_TMP/last.err"; then
  fail "systemd-analyze verify $unit warns: $(cat "$TEST_TMP/last.out" "$TEST_TMP/last.err")"
fi

# Removal (the hook runs it again at exit only if this fails half-way).
purge_package
PURGE=0
pass "built, linted, installed, ran, verified and purged $(basename "$deb")"
