# Shared by scripts/quickstart and scripts/test: install what is missing, configure, build.
# Debian 12 packages only.
set -euo pipefail

ZRELAY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZRELAY_BUILD=${ZRELAY_BUILD:-$ZRELAY_ROOT/build}
ZRELAY_PACKAGES=(g++ cmake ninja-build pkg-config libzmq3-dev cppzmq-dev libcxxopts-dev libtomlplusplus-dev libsystemd-dev libisal-dev libmicrohttpd-dev catch2 util-linux coreutils)
# Only the tests need these (scripts/test adds them): clang and its libFuzzer runtime for tests/fuzz,
# pyzmq for the Python client of tests/interop, clang-format for the format check (scripts/format),
# nats-server for the nats and nats-js scenarios of the zbench smoke test (tests/bench/smoke.sh);
# help2man for the man pages (docs/man: none without it), dpkg-dev (dpkg-shlibdeps, cpack's Depends),
# lintian, man-db (man, lexgrog) and systemd (systemd-analyze) for the package test (tests/package);
# curl and prometheus (promtool) for the metrics test (tests/cli/metrics.sh), cpp-httplib's client
# for the metrics unit test; iproute2 (ip netns) for the federation tests (tests/federation).
ZRELAY_TEST_PACKAGES=(clang libclang-rt-14-dev python3-zmq clang-format nats-server libcpp-httplib-dev
  help2man dpkg-dev lintian man-db systemd curl prometheus iproute2)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
  local missing=()
  for p in "${ZRELAY_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "zrelay: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build() {
  cmake -S "$ZRELAY_ROOT" -B "$ZRELAY_BUILD" -G Ninja "$@" >/dev/null
  cmake --build "$ZRELAY_BUILD" -j "$(nproc)" >&2  # stdout is the relay's ready line
}
