#!/usr/bin/env bash
# Builds the libFuzzer targets with clang++ and runs each for a bounded time on a copy of its seed
# corpus: wire_fuzz (the wire decoder, seeds in corpus/), ingress_fuzz (the relay's ingress
# rules, seeds in ingress_corpus/), journal_fuzz (the journal's recovery over any segment files,
# seeds in journal_corpus/), control_fuzz (the control socket's request parser and bind rule,
# seeds in control_corpus/), config_fuzz (zrelay's config file reader, seeds in config_corpus/) and
# link_fuzz (what a linked relay sends: link frames, replies, interest, seeds in link_corpus/),
# one after the other. Fails on any crash, leak, timeout, sanitizer finding or failed check.
# Usage: run.sh [OUT_DIR [TARGET...]]   (OUT_DIR defaults to a temp dir, ctest passes its binary
#        dir; TARGET is wire, ingress, journal, control, config or link, all six by default)
# Environment: FUZZ_TIME seconds to run each target (default 30), FUZZ_CXX compiler (default clang++).
# The longer run is in docs/TESTING.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cxx=${FUZZ_CXX:-clang++}
time_limit=${FUZZ_TIME:-30}

fail() { echo "FAIL: $*" >&2; exit 1; }

command -v "$cxx" >/dev/null ||
  fail "$cxx not found: the fuzz test needs clang" \
       "(Debian 12: apt-get install clang libclang-rt-14-dev)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${1:-$work}
mkdir -p "$out"
shift $(($# > 0 ? 1 : 0))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire ingress journal control config link)

# fuzz NAME CORPUS SOURCE...: builds $out/NAME from the sources and runs it on a copy of CORPUS.
fuzz() {
  local name=$1 corpus=$2
  shift 2
  local bin=$out/$name
  if ! "$cxx" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
         -Wall -Wextra -I "$root/lib/include" -I "$root/lib/src" "$@" -o "$bin" 2>"$work/build.log"; then
    cat "$work/build.log" >&2
    grep -q 'libclang_rt.fuzzer' "$work/build.log" &&
      echo "(the libFuzzer runtime is missing: apt-get install libclang-rt-14-dev)" >&2
    fail "cannot build $name with $cxx"
  fi

  # libFuzzer adds what it finds to the corpus directory: run on a copy, never the committed seeds.
  rm -rf "$work/corpus"
  cp -r "$corpus" "$work/corpus"
  local crashes=$out/crashes/$name
  mkdir -p "$crashes"
  echo "$name: ${time_limit}s on $(ls "$work/corpus" | wc -l) seeds; crash inputs go to $crashes/"
  local status=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$bin" -max_total_time="$time_limit" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
           -artifact_prefix="$crashes/" "$work/corpus" >"$work/fuzz.log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$work/fuzz.log" >&2
    fail "$name exited with status $status" \
         "(the input that did it is in $crashes/; rerun: $bin FILE)"
  fi
  # The last progress line has the coverage, the final stats the number of runs.
  grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/fuzz.log"
  echo "$name: no crash in ${time_limit}s"
}

for t in "${targets[@]}"; do
  case $t in
    wire) fuzz wire_fuzz "$here/corpus" "$root/lib/src/wire.cpp" "$here/wire_fuzz.cpp" ;;
    ingress)
      fuzz ingress_fuzz "$here/ingress_corpus" "$root/lib/src/wire.cpp" "$root/lib/src/relay/ingress.cpp" \
           "$here/ingress_fuzz.cpp" ;;
    journal)
      fuzz journal_fuzz "$here/journal_corpus" "$root/lib/src/wire.cpp" "$root/lib/src/record.cpp" \
           "$root/lib/src/relay/journal.cpp" "$here/journal_fuzz.cpp" -lisal -pthread ;;
    control)
      fuzz control_fuzz "$here/control_corpus" "$root/lib/src/control.cpp" "$root/lib/src/endpoint.cpp" \
           "$here/control_fuzz.cpp" -lzmq ;;
    link)
      fuzz link_fuzz "$here/link_corpus" "$root/lib/src/wire.cpp" "$root/lib/src/record.cpp" "$root/lib/src/stats.cpp" \
           "$root/lib/src/text.cpp" "$root/lib/src/relay/link_wire.cpp" "$root/lib/src/relay/federation.cpp" \
           "$here/link_fuzz.cpp" -lisal ;;
    config)
      # -DNDEBUG as Debian builds libtomlplusplus: toml++ 3.3's debug assertions abort on some bad keys
      # ('[~t]') that its release build reports as a parse error (the sanitizers still watch memory).
      fuzz config_fuzz "$here/config_corpus" -DNDEBUG -I "$root/lib/tool/include" "$root/lib/tool/src/config.cpp" \
           "$here/config_fuzz.cpp" ;;
    *) fail "no fuzz target '$t' (wire, ingress, journal, control, config or link)" ;;
  esac
done
