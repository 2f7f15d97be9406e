#!/usr/bin/env bash
# Runs the safetensors parser's libFuzzer target for a bounded time:
#   tools/fuzz.sh [BUILD_DIR [SECONDS]]    (defaults: build-fuzz, 60)
# BUILD_DIR must be configured with CC=clang meson setup BUILD_DIR -Dfuzz=true.
# New inputs go to a temporary directory; the seed corpus in tests/fuzz/corpus
# is only read (add a reproducer there by hand once its crash is fixed). A
# crash leaves its input in that directory and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
secs=${2:-60}
fuzzer="$build/tests/fuzz/fuzz-safetensors"
[ -x "$fuzzer" ] || { echo "fuzz: no $fuzzer; configure with CC=clang meson setup $build -Dfuzz=true" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/clnet-fuzz.XXXXXX")
mkdir -p "$work/new"
if ! "$fuzzer" -max_total_time="$secs" -print_final_stats=1 -dict=tests/fuzz/safetensors.dict \
    -artifact_prefix="$work/" "$work/new" tests/fuzz/corpus 2> "$work/log"; then
  tail -40 "$work/log" >&2
  echo "fuzz: the parser crashed; the input is in $work" >&2
  exit 1
fi
grep -E 'stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$work/log"
echo "fuzz: ${secs} s, no crash"
rm -rf "$work"
