#!/usr/bin/env bash
# Trains a reference model with clnet-train and with the PyTorch peer
# (tools/peers/torch_train.py) one after the other on this machine, and prints
# both per-epoch lines: the side-by-side run the project quotes.
#   tools/compare-train.sh [cnn|lstm|rnn] [EPOCHS] [extra clnet-train options]
# BUILD_DIR overrides ./build; THREADS sets PyTorch's threads (default 1,
# often its best on 2 cores; see docs/baselines.md).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-cnn}
epochs=${2:-1}
shift $(( $# > 2 ? 2 : $# ))
build=${BUILD_DIR:-build}
python=/usr/bin/python3   # Debian's python3-torch lives there
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== clnet"
"$build/tools/clnet-train" "$model" --epochs "$epochs" --quiet "$@" | grep -E '^(clnet|epoch|test accuracy)'
echo "== pytorch"
"$python" tools/peers/torch_train.py "$model" --epochs "$epochs" --threads "${THREADS:-1}" |
  grep -E '^(pytorch|epoch|median|test accuracy)'
