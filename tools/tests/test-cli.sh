#!/bin/sh
# tools-cli: every numeric option of clnet-train and clnet-bench refuses bad
# values (garbage, signs, blanks, overflow, empty, inf/nan, out of range)
# with exit status 2 and a message naming the option, before any device is
# opened; good values are accepted (then --help ends the run).
#   usage: test-cli.sh path/to/clnet-train path/to/clnet-bench
set -u
train=$1
bench=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
bad() { echo "tools-cli: FAIL: $*"; failures=$((failures + 1)); }

# refuse OPTION_FOR_MESSAGE CMD...: must exit 2 and name the option. (The
# training runs point --data at nothing, so that a value wrongly accepted
# ends the run at loading instead of training.)
refuse() {
    name=$1
    shift
    timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne 2 ]; then
        bad "exit $rc, expected 2: $*"
    elif ! grep -q -- "$name" "$tmp/err"; then
        bad "message does not name $name: $* -> $(head -1 "$tmp/err")"
    elif [ "$(wc -l <"$tmp/err")" -gt 3 ]; then
        bad "a value error should not print the whole usage: $*"
    fi
}
# accept CMD...: must exit 0 (the command ends in --help).
accept() {
    "$@" >"$tmp/out" 2>"$tmp/err" || bad "exit $?, expected 0: $* -> $(head -1 "$tmp/err")"
}

# Values no numeric option takes.
garbage='three;3x;x3; 3;3 ;+3;0x10;1,5;--;-;3e;nan;inf;-inf;NaN;Infinity;1e999;99999999999999999999999'

# clnet-train: OPTION|more bad values for it|good values (lists split on ';')
while IFS='|' read -r opt extra good; do
    [ -n "$opt" ] || continue
    old_ifs=$IFS
    IFS=';'
    for v in $garbage $extra ''; do
        IFS=$old_ifs
        refuse "$opt" "$train" cnn --data "$tmp/none" "$opt" "$v"
        refuse "$opt" "$train" gan --data "$tmp/none" "$opt" "$v"
    done
    IFS=';'
    for v in $good; do
        IFS=$old_ifs
        accept "$train" cnn "$opt" "$v" --help
    done
    IFS=$old_ifs
    refuse "$opt" "$train" cnn "$opt"   # no value at all
done <<TABLE
--epochs|-1;1000001;99999999999999;4294967296;1.5;1e3|0;1;3;1000000
--batch-size|0;-1;65537;2147483648;32.0|1;32;65536
--lr|0;-0.001;-1e-3;10.5;1e-400;0x|0.001;1e-3;.5;2e-4;10
--seed|-1;18446744073709551616;1.0|0;1;18446744073709551615
--limit|0;-5;9223372036854775808;100.5|1;100;9223372036854775807
--sample|0;-1;100001;1000000000|1;64;100000
--label-smoothing|1;-0.1;1.5;1e-400|0;0.1;0.999
TABLE

# --device P:D: indices in 0..65535 (the library's parser would wrap them);
# names pass to the library as they are.
for v in 4294967296:0 0:4294967296 -1:0 0:-1 +0:0 99999999999999999999:1 ''; do
    refuse --device "$train" cnn --data "$tmp/none" --device "$v"
    refuse --device "$bench" --device "$v" --list-suites
done
for v in 0:0 65535:1 cpu gpu 'gfx90a:sramecc+:xnack-' 1:2:3 all; do
    [ "$v" = all ] || accept "$train" cnn --device "$v" --help
    accept "$bench" --device "$v" --list-suites --help
done

# Path and name options: an empty value is a mistake, not "the default".
for opt in --data --save --save-onnx --load --out --score; do
    refuse "$opt" "$train" gan --data "$tmp/none" "$opt" ''
done
quick_case="--case gemm_m32n676k9 --quick --reps 1 --no-peak"
for opt in --json --csv --plot --plot-data --suite --case; do
    # shellcheck disable=SC2086 # quick_case is a list of words
    refuse "$opt" "$bench" $quick_case "$opt" ''
done

# clnet-bench --reps
for v in 0 -1 10001 1e3 x '' ' 5' 5x inf nan 99999999999999999999; do
    refuse --reps "$bench" --reps "$v" --list-suites
done
for v in 1 5 10000; do accept "$bench" --reps "$v" --list-suites --help; done
refuse --reps "$bench" --reps
# clnet-bench --batch (with --onnx: the value is refused before the file is read)
for v in 0 -1 65537 x '' ' 2' 2x inf nan 99999999999999999999; do
    refuse --batch "$bench" --onnx /nonexistent.onnx --batch "$v" --list-suites
done
refuse --batch "$bench" --list-suites --batch 2
# clnet-bench --inject-fault NAME[@D]: NAME a suite or case, D in 0..15.
for v in nosuch '' @0 gemm@ gemm@x gemm@-1 gemm@16 gemm@4294967296 'gemm@ 1' gemm@1x; do
    refuse --inject-fault "$bench" --inject-fault "$v" --list-suites
done
for v in nosuch gemm@x; do
    CLNET_BENCH_INJECT_FAULT=$v refuse CLNET_BENCH_INJECT_FAULT "$bench" --list-suites
done
for v in gemm gemm@1 gemm_m32n676k9@0 gemm@15; do
    accept "$bench" --inject-fault "$v" --list-suites
done
CLNET_BENCH_INJECT_FAULT= accept "$bench" --list-suites

[ "$failures" -eq 0 ] || { echo "tools-cli: $failures failures"; exit 1; }
echo "tools-cli: ok"
