#!/bin/sh
# bench-check-suites: the negative control of every suite's --check other than
# gemm's (test-check.sh has that one): with one output element perturbed,
# every case of the suite must read "fail" and the exit status be 3; without
# the fault every case must pass.
#   usage: test-check-suites.sh path/to/clnet-bench
set -u
bench=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "bench-check-suites: $*"; cat "$tmp/out"; exit 1; }

for suite in conv pool act cnn lstm gan vae; do
    "$bench" --suite "$suite" --quick --check --reps 1 --no-peak --inject-fault "$suite" \
        --csv "$tmp/r.csv" >"$tmp/out" 2>&1
    status=$?
    [ "$status" -eq 3 ] || fail "$suite: exit status $status with a fault, expected 3"
    # Column 17 is "check": every case of the suite must have failed.
    rows=$(awk -F, 'NR > 1' "$tmp/r.csv" | wc -l)
    fails=$(awk -F, 'NR > 1 && $17 == "fail"' "$tmp/r.csv" | wc -l)
    [ "$rows" -gt 0 ] && [ "$rows" -eq "$fails" ] ||
        fail "$suite: $fails of $rows cases flagged the injected fault"
done

"$bench" --suite conv --suite pool --suite act --suite cnn --suite lstm --suite gan --suite vae --quick --check --reps 1 \
    --no-peak --csv "$tmp/r.csv" >"$tmp/out" 2>&1 || fail "clean run failed with status $?"
bad=$(awk -F, 'NR > 1 && $17 != "pass"' "$tmp/r.csv")
[ -z "$bad" ] || fail "cases did not pass without a fault: $bad"
echo "bench-check-suites: ok"
