#!/bin/sh
# train-watch: clnet-train's --csv, --checkpoint, --early-stopping,
# --lr-schedule, --logdir, --plot and --resume on a small CNN run
# (docs/training.md): a run stopped after one epoch and resumed ends with
# the uninterrupted run's training state, byte for byte, for the CNN, the
# LSTM stack and the GAN (gan --checkpoint/--resume);
# the CSV's learning rates are the schedule's, the checkpoint holds the
# weights of the best test loss (re-evaluated with --load --eval-only), the
# event file and the curves (PNG, SVG, PDF) exist and are whole; bad values
# and unwritable paths exit 2 before any training.
#   usage: test-train-watch.sh path/to/clnet-train
set -u
train=$1
data=/usr/share/datasets/fashion-mnist    # clnet/data.h: CLNET_FASHION_MNIST_DIR
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
bad() { echo "train-watch: FAIL: $*"; failures=$((failures + 1)); }

# Refusals first: exit 2 naming the option, before opening a device.
refuse() {
    name=$1
    shift
    timeout 60 "$train" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 2 ] || bad "exit $rc, expected 2: $*"
    grep -q -- "$name" "$tmp/err" || bad "message does not name $name: $* -> $(head -1 "$tmp/err")"
}
refuse --lr-schedule cnn --lr-schedule bogus:1
refuse --lr-schedule cnn --lr-schedule step:0:0.5
refuse --lr-schedule cnn --lr-schedule exp:0.5,cosine:3
refuse --lr-schedule cnn --lr-schedule plateau:2:1.5
refuse --early-stopping cnn --early-stopping -1
refuse --csv cnn --csv "$tmp/no/such/dir/h.csv"
refuse --checkpoint cnn --checkpoint "$tmp/"
refuse --plot cnn --plot "$tmp/curves.gif"
refuse --csv gan --csv "$tmp/h.csv"

if [ ! -r "$data/train-images-idx3-ubyte" ] && [ ! -r "$data/train-images-idx3-ubyte.gz" ]; then
    echo "train-watch: SKIP the training runs: no Fashion-MNIST in $data (apt-get install dataset-fashion-mnist)"
    [ "$failures" -eq 0 ] || exit 1
    exit 77
fi

# Three epochs: warm-up over two (0.0005, 0.001), then exp's k = 0 (0.001).
"$train" cnn --limit 96 --epochs 3 --quiet --seed 3 --lr-schedule exp:0.5,warmup:2 \
    --csv "$tmp/h.csv" --checkpoint "$tmp/best.safetensors" --logdir "$tmp/tb" \
    --plot "$tmp/curves.png" >"$tmp/run.out" 2>&1 || bad "training run failed: $(tail -3 "$tmp/run.out")"
[ "$(head -1 "$tmp/h.csv")" = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds" ] ||
    bad "CSV header: $(head -1 "$tmp/h.csv")"
[ "$(wc -l <"$tmp/h.csv")" -eq 4 ] || bad "CSV has $(wc -l <"$tmp/h.csv") lines, expected 4"
lrs=$(awk -F, 'NR > 1 { printf "%.6g ", $6 }' "$tmp/h.csv")
[ "$lrs" = "0.0005 0.001 0.001 " ] || bad "learning rates per epoch: $lrs, expected 0.0005 0.001 0.001"
# The checkpoint's test accuracy is the best epoch's.
want=$(awk -F, 'NR > 1 && (best == "" || $4 < best) { best = $4; acc = $5 } END { printf "%.4f", acc }' "$tmp/h.csv")
"$train" cnn --load "$tmp/best.safetensors" --eval-only --quiet >"$tmp/eval.out" 2>&1 ||
    bad "evaluating the checkpoint failed: $(tail -3 "$tmp/eval.out")"
got=$(sed -n 's/^test accuracy: //p' "$tmp/eval.out")
[ "$got" = "$want" ] || bad "checkpoint's test accuracy $got, the best epoch's $want"
ls "$tmp"/tb/events.out.tfevents.* >/dev/null 2>&1 || bad "no event file in --logdir"
[ "$(head -c 4 "$tmp/curves.png" | od -An -c | tr -d ' ')" = "211PNG" ] || bad "curves.png is not a PNG"
ls "$tmp" | grep -q tmp && bad "a temporary file was left: $(ls "$tmp")"

# Stop after one epoch and resume: the state after epoch 3 is byte for byte
# the uninterrupted run's, and so are the losses of epochs 2 and 3.
same="cnn --limit 96 --quiet --seed 3 --lr-schedule exp:0.5,warmup:2"
"$train" $same --epochs 1 --checkpoint "$tmp/r.safetensors" >"$tmp/run.out" 2>&1 ||
    bad "1-epoch run failed: $(tail -3 "$tmp/run.out")"
"$train" $same --epochs 3 --resume "$tmp/r.safetensors.state" --checkpoint "$tmp/d.safetensors" \
    --csv "$tmp/d.csv" >"$tmp/run.out" 2>&1 || bad "resumed run failed: $(tail -3 "$tmp/run.out")"
grep -q "resuming after epoch 1" "$tmp/run.out" || bad "no resume line: $(head -5 "$tmp/run.out")"
cmp -s "$tmp/d.safetensors.state" "$tmp/best.safetensors.state" ||
    bad "the resumed run's state after epoch 3 differs from the uninterrupted run's"
a=$(awk -F, 'NR > 2 { print $1, $2, $3, $6 }' "$tmp/h.csv")
b=$(awk -F, 'NR > 1 { print $1, $2, $3, $6 }' "$tmp/d.csv")
[ "$a" = "$b" ] || bad "epochs 2-3 after resuming: $b; uninterrupted: $a"
refuse --resume cnn --resume "$tmp/no-such.state"

# The same for the reference LSTM stack (3 x LSTM(64)): every LSTM's weights
# and Adam moments, the step count, the shuffle and the dropout counter.
same="lstm --limit 128 --batch-size 64 --quiet --seed 5"
"$train" $same --epochs 2 --checkpoint "$tmp/lu.safetensors" >"$tmp/run.out" 2>&1 ||
    bad "2-epoch lstm run failed: $(tail -3 "$tmp/run.out")"
"$train" $same --epochs 1 --checkpoint "$tmp/lr.safetensors" >"$tmp/run.out" 2>&1 ||
    bad "1-epoch lstm run failed: $(tail -3 "$tmp/run.out")"
"$train" $same --epochs 2 --resume "$tmp/lr.safetensors.state" --checkpoint "$tmp/ld.safetensors" \
    >"$tmp/run.out" 2>&1 || bad "resumed lstm run failed: $(tail -3 "$tmp/run.out")"
grep -q "resuming after epoch 1" "$tmp/run.out" || bad "no lstm resume line: $(head -5 "$tmp/run.out")"
cmp -s "$tmp/ld.safetensors.state" "$tmp/lu.safetensors.state" ||
    bad "the resumed lstm run's state after epoch 2 differs from the uninterrupted run's"

# One epoch with early stopping at patience 0 and the curves as SVG and PDF.
for ext in svg pdf; do
    "$train" cnn --limit 64 --epochs 1 --quiet --early-stopping 0 --lr-schedule cosine:4 \
        --plot "$tmp/curves.$ext" >"$tmp/run.out" 2>&1 || bad "$ext run failed: $(tail -3 "$tmp/run.out")"
done
grep -q "<svg" "$tmp/curves.svg" || bad "curves.svg is not SVG"
[ "$(head -c 4 "$tmp/curves.pdf")" = "%PDF" ] || bad "curves.pdf is not a PDF"

# gan --logdir: its losses and sample grid in the event file.
"$train" gan --limit 128 --batch-size 64 --epochs 1 --quiet --out "$tmp/g.png" --logdir "$tmp/gtb" \
    >"$tmp/run.out" 2>&1 || bad "gan run failed: $(tail -3 "$tmp/run.out")"
for tag in samples epoch/d_loss epoch/g_loss; do
    cat "$tmp"/gtb/events.out.tfevents.* 2>/dev/null | grep -a -q "$tag" || bad "gan --logdir: no $tag"
done

# gan --checkpoint/--resume (its own loop, docs/gan.md): G's and D's weights
# and training states (Adam moments, step counts) and the loop's state (the
# epoch, the noise draws, the shuffle) after a run stopped after epoch 1 and
# resumed are the uninterrupted 2-epoch run's, byte for byte.
same="gan --limit 128 --batch-size 64 --quiet --seed 7 --out $tmp/g.png"
"$train" $same --epochs 2 --checkpoint "$tmp/gu.st" >"$tmp/run.out" 2>&1 ||
    bad "2-epoch gan run failed: $(tail -3 "$tmp/run.out")"
"$train" $same --epochs 1 --checkpoint "$tmp/gr.st" >"$tmp/run.out" 2>&1 ||
    bad "1-epoch gan run failed: $(tail -3 "$tmp/run.out")"
"$train" $same --epochs 2 --resume "$tmp/gr.st.state" --checkpoint "$tmp/gd.st" >"$tmp/run.out" 2>&1 ||
    bad "resumed gan run failed: $(tail -3 "$tmp/run.out")"
grep -q "resuming after epoch 1" "$tmp/run.out" || bad "no gan resume line: $(head -5 "$tmp/run.out")"
for f in "" .d .state .state.d .state.gan; do
    cmp -s "$tmp/gd.st$f" "$tmp/gu.st$f" ||
        bad "gan: the resumed run's checkpoint$f after epoch 2 differs from the uninterrupted run's"
done
# A state set from two epochs (a run killed between the writes) is refused.
cp "$tmp/gr.st.state.d" "$tmp/gu.st.state.d"
"$train" $same --epochs 3 --resume "$tmp/gu.st.state" >"$tmp/run.out" 2>&1 &&
    bad "gan resumed from states of epochs 2 and 1"
grep -q "not from the same epoch" "$tmp/run.out" || bad "gan mixed states: $(tail -1 "$tmp/run.out")"
refuse --checkpoint gan --checkpoint "$tmp/g-{epoch}.st"

[ "$failures" -eq 0 ] || exit 1
echo "train-watch: all checks passed"
