#!/usr/bin/env bash
# Runs the libFuzzer targets for a bounded time each:
#   tools/fuzz.sh [BUILD_DIR [SECONDS [TARGET...]]]
# (defaults: build-fuzz, 20, all of safetensors idx cache-entry onnx npy). BUILD_DIR
# must be configured with CC=clang meson setup BUILD_DIR -Dfuzz=true.
# Each target reads its seed corpus (tests/fuzz/corpus for safetensors,
# tests/fuzz/idx-corpus, tests/fuzz/cache-corpus, tests/fuzz/corpus-onnx, tests/fuzz/corpus-npy) and writes new inputs to a
# temporary directory; the seeds are only read (add a reproducer there by
# hand once its crash is fixed). A crash leaves its input in that directory
# and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
secs=${2:-20}
shift $(( $# < 2 ? $# : 2 ))
targets=${*:-safetensors idx cache-entry onnx npy}
for t in $targets; do
  fuzzer="$build/tests/fuzz/fuzz-$t"
  [ -x "$fuzzer" ] || { echo "fuzz: no $fuzzer; configure with CC=clang meson setup $build -Dfuzz=true" >&2; exit 2; }
  case $t in
    safetensors) corpus=tests/fuzz/corpus; extra=(-dict=tests/fuzz/safetensors.dict) ;;
    idx) corpus=tests/fuzz/idx-corpus; extra=() ;;
    cache-entry) corpus=tests/fuzz/cache-corpus; extra=() ;;
    onnx) corpus=tests/fuzz/corpus-onnx; extra=() ;;
    npy) corpus=tests/fuzz/corpus-npy; extra=() ;;
    *) echo "fuzz: unknown target $t (safetensors, idx, cache-entry, onnx, npy)" >&2; exit 2 ;;
  esac
  work=$(mktemp -d "${TMPDIR:-/tmp}/clnet-fuzz.XXXXXX")
  mkdir -p "$work/new"
  if ! "$fuzzer" -max_total_time="$secs" -print_final_stats=1 "${extra[@]}" \
      -artifact_prefix="$work/" "$work/new" "$corpus" 2> "$work/log"; then
    tail -40 "$work/log" >&2
    echo "fuzz: $t crashed; the input is in $work" >&2
    exit 1
  fi
  grep -E 'stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$work/log" |
    sed "s/^/$t: /"
  echo "fuzz: $t: ${secs} s, no crash"
  rm -rf "$work"
done
