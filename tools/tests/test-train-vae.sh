#!/bin/sh
# train-vae: a short clnet-train vae run (docs/vae.md): every epoch's loss is
# finite and the last is at least 2% below the first (trained: ~6%; without
# optimizer steps the losses wander by 0.01%); the last line before the timing is
# a finite `test loss: X`; the three pictures are whole PNG files and the
# weights (one file: the whole graph model) are written; --eval-only --load of
# those weights with the same --seed prints the same test loss (its noise is
# the Sampling layer's inference draw, fixed by the seed); bad uses exit 2
# first.
#   usage: test-train-vae.sh path/to/clnet-train
set -u
train=$1
data=/usr/share/datasets/fashion-mnist    # clnet/data.h: CLNET_FASHION_MNIST_DIR
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
bad() { echo "train-vae: FAIL: $*"; failures=$((failures + 1)); }

# Refusals: exit 2 naming the option, before opening a device.
refuse() {
    name=$1
    shift
    timeout 60 "$train" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 2 ] || bad "exit $rc, expected 2: $*"
    grep -q -- "$name" "$tmp/err" || bad "message does not name $name: $* -> $(head -1 "$tmp/err")"
}
refuse --out vae --out "$tmp/no/such/dir/v"
refuse --save vae --save "$tmp/no/such/dir/w"
refuse --csv vae --csv "$tmp/h.csv"
refuse --epochs vae --epochs 0
refuse --load vae --eval-only

if [ ! -r "$data/train-images-idx3-ubyte" ] && [ ! -r "$data/train-images-idx3-ubyte.gz" ]; then
    echo "train-vae: SKIP the training runs: no Fashion-MNIST in $data (apt-get install dataset-fashion-mnist)"
    [ "$failures" -eq 0 ] || exit 1
    exit 77
fi

# 4 steps an epoch, the last one of 32 images (the smaller last batch).
"$train" vae --limit 224 --batch-size 64 --epochs 3 --quiet --seed 2 --out "$tmp/v" \
    --save "$tmp/w.safetensors" >"$tmp/run.out" 2>&1 || bad "training run failed: $(tail -3 "$tmp/run.out")"
losses=$(sed -n 's|^epoch [0-9]*/3: loss \([^ ]*\) .*|\1|p' "$tmp/run.out")
[ "$(echo "$losses" | wc -w)" -eq 3 ] || bad "expected 3 epoch lines, got: $losses"
echo "$losses" | awk 'NR == 1 { first = $1 } { if ($1 !~ /^[0-9]+\.[0-9]+$/) bad = 1; last = $1 }
                      END { exit (bad || !(last < 0.98 * first)) }' ||
    bad "epoch losses not finite or not 2% down: $losses"
last=$(grep -v '^total ' "$tmp/run.out" | tail -1)
case "$last" in
"test loss: "[0-9]*.[0-9]*) ;;
*) bad "the last line is not a finite test loss: $last" ;;
esac
for p in samples reconstructions manifold; do
    f="$tmp/v-$p.png"
    [ "$(head -c 8 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] ||
        bad "$f is missing or not a PNG"
    tail -c 12 "$f" 2>/dev/null | grep -q IEND || bad "$f does not end with IEND"
done
[ -s "$tmp/w.safetensors" ] || bad "weights not saved"
"$train" vae --load "$tmp/w.safetensors" --eval-only --quiet --seed 2 --out "$tmp/e" >"$tmp/eval.out" 2>&1 ||
    bad "evaluating the saved weights failed: $(tail -3 "$tmp/eval.out")"
again=$(grep '^test loss: ' "$tmp/eval.out")
[ -n "$again" ] && [ "$again" = "$last" ] || bad "--eval-only --load: \"$again\", the run's \"$last\""

[ "$failures" -eq 0 ] || exit 1
echo "train-vae: OK (losses $(echo $losses), $last)"
