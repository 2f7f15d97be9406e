#!/bin/sh
# bench-onnx: clnet-bench --onnx on models exported from PyTorch at test time
# (tests/onnx/export_run.py): the reference CNN and the residual net pass
# --check against the float64 ONNX interpreter (tools/bench/onnx-ref.c) on
# two pocl devices, and time a training step; a wrong output planted on
# device 1 reads FAIL there only (exit status 3); a model the importer
# refuses is an error naming the ops (exit status 1); --batch without --onnx
# is a usage error (2). The float64 reference itself matches PyTorch's
# outputs on both models (onnx-ref-check).
#   usage: test-onnx.sh path/to/clnet-bench SOURCE_ROOT path/to/onnx-ref-check
set -u
bench=$1
src=$2
refcheck=$3
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "bench-onnx: $*"; cat "$tmp/out"; exit 1; }

if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "bench-onnx: skipped: /usr/bin/python3 has no torch (Debian's python3-torch)"
    exit 77
fi
/usr/bin/python3 "$src/tests/onnx/export_run.py" "$tmp" --no-torchvision >"$tmp/out" 2>&1 || fail "export failed"

# The reference against PyTorch (float32) on the exported inputs.
for m in cnn residual; do
    "$refcheck" "$tmp/$m.onnx" "$tmp/$m.in.npy" "$tmp/$m.out.npy" >"$tmp/out" 2>&1 ||
        fail "$m: the float64 reference does not match PyTorch"
done

# The CNN at the batch the file was exported with (3: dynamic batch, so --batch).
"$bench" --onnx "$tmp/cnn.onnx" --batch 3 --check --reps 1 --quick --no-peak \
    --csv "$tmp/cnn.csv" >"$tmp/out" 2>&1 || fail "cnn: exit status $?"
# Columns: 3 name, 17 check.
[ "$(awk -F, '$3 == "onnx_infer_b3" { print $17 }' "$tmp/cnn.csv")" = pass ] ||
    fail "cnn: inference not checked pass"
awk -F, '$3 == "onnx_train_b3"' "$tmp/cnn.csv" | grep -q . ||
    fail "cnn: no training row"
grep -q 'normwise' "$tmp/out" || fail "cnn: no normwise error printed"

# The residual net on two devices, a wrong element planted on device 1.
POCL_DEVICES="pthread pthread" "$bench" --onnx "$tmp/residual.onnx" --batch 2 --device all \
    --check --reps 1 --quick --no-peak --inject-fault onnx_infer_b2@1 \
    --csv "$tmp/res.csv" >"$tmp/out" 2>&1
status=$?
[ "$status" -eq 3 ] || fail "residual: exit status $status with a fault, expected 3"
awk -F, '$3 == "onnx_infer_b2" { print $17 }' "$tmp/res.csv" >"$tmp/inj"
printf 'pass\nfail\n' | cmp -s - "$tmp/inj" || fail "residual: not pass/fail: $(cat "$tmp/inj")"
[ "$(awk -F, '$3 == "onnx_train_b2"' "$tmp/res.csv" | wc -l)" -eq 2 ] ||
    fail "residual: expected a training row per device"

# A model the importer refuses: every op named, exit status 1.
"$bench" --onnx "$tmp/unsupported.onnx" --check --reps 1 --quick --no-peak >"$tmp/out" 2>&1
status=$?
[ "$status" -eq 1 ] || fail "unsupported: exit status $status, expected 1"
grep -q Selu "$tmp/out" && grep -q Erf "$tmp/out" || fail "unsupported: ops not named"

"$bench" --batch 2 >"$tmp/out" 2>&1
[ $? -eq 2 ] || fail "--batch without --onnx: expected usage error (2)"
"$bench" --onnx "$tmp/missing.onnx" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q missing.onnx "$tmp/out" || fail "a missing file: expected status 1 naming it"
echo "bench-onnx: ok"
