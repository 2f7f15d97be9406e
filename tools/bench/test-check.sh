#!/bin/sh
# bench-check: clnet-bench --check must flag a fast wrong answer as FAIL on
# that device only, rank it nowhere, and exit with status 3; every other case
# must pass. Two pocl devices (POCL_DEVICES="pthread pthread") stand in for
# several; a wrong element is injected on device 1 only.
#   usage: test-check.sh path/to/clnet-bench
set -u
bench=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "bench-check: $*"; cat "$tmp/out"; exit 1; }

POCL_DEVICES="pthread pthread" CLNET_BENCH_INJECT_FAULT=gemm_m32n676k9@1 \
    "$bench" --device all --suite gemm --quick --check --reps 2 --no-peak \
    --csv "$tmp/r.csv" --json "$tmp/r.json" >"$tmp/out" 2>&1
status=$?
[ "$status" -eq 3 ] || fail "exit status $status, expected 3 (a check failed)"

# CSV: device-major rows; column 17 is "check". The injected case: pass on
# the first device, fail on the second; every other row passes.
awk -F, 'NR > 1 && $3 == "gemm_m32n676k9" { print $17 }' "$tmp/r.csv" | head -2 >"$tmp/inj"
printf 'pass\nfail\n' | cmp -s - "$tmp/inj" || fail "injected case not pass/fail: $(cat "$tmp/inj")"
others=$(awk -F, 'NR > 1 && $3 != "gemm_m32n676k9" && $17 != "pass"' "$tmp/r.csv")
[ -z "$others" ] || fail "other cases did not pass: $others"
[ "$(awk -F, 'NR > 1' "$tmp/r.csv" | wc -l)" -ge 12 ] || fail "expected 2 devices x 6 cases"

# The side-by-side table says FAIL for it, and the JSON says "fail" once.
grep -q '^gemm_m32n676k9 .* FAIL' "$tmp/out" || fail "side-by-side table lacks FAIL"
[ "$(grep -c '"check": "fail"' "$tmp/r.json")" -eq 1 ] || fail "JSON should hold one fail"

# Without the fault, the same run passes and exits 0.
POCL_DEVICES="pthread pthread" CLNET_BENCH_INJECT_FAULT= "$bench" --device all --suite gemm --quick --check --reps 2 \
    --no-peak >"$tmp/out" 2>&1 || fail "clean run failed with status $?"
echo "bench-check: ok"
