#!/usr/bin/python3
"""Fine-tunes the reference CNN exported from PyTorch in clnet and in PyTorch,
from the same weights on the same batches with the same optimizer, and
prints the two loss curves side by side (docs/onnx.md, "Fine-tuning").

  tools/onnx-finetune.py [--steps 300] [--batch 32] [--lr 1e-3] [--seed 1]
                         [--tool build/tools/onnx-finetune] [--device SPEC]
                         [--every N] [--max-diff D]

The model is tools/peers/torch_train.py's cnn() (Keras initialization, seed
--seed) with a Softmax appended, exported with torch.onnx.export and read
by clnet's importer (build/tools/onnx-finetune, tools/onnx-finetune.c).
Both train with Adam (lr, betas 0.9/0.999, eps 1e-8) and cross-entropy
(clnet: sparse CE on the softmax output, fused; PyTorch: F.cross_entropy on
the logits before the softmax: the same function), step k on Fashion-MNIST
training images [k B, (k + 1) B) in file order. --max-diff D: exit status 1
unless every step's |clnet - PyTorch| <= D and both curves fall (the mean
of the last 5 steps below that of the first 5). Needs Debian's
python3-torch and dataset-fashion-mnist; exit status 77 without them.
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(path):
    import numpy as np
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def data_file(name):
    for p in (os.path.join(DATA, name), os.path.join(DATA, name + ".gz")):
        if os.path.exists(p):
            return p
    return None


def torch_curve(model, images, labels, steps, batch, lr):
    import torch
    import torch.nn.functional as F
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    model.train()
    losses, n = [], len(labels)
    for k in range(steps):
        idx = [(k * batch + i) % n for i in range(batch)]
        x = torch.from_numpy(images[idx].astype("float32") / 255.0).unsqueeze(1)
        y = torch.from_numpy(labels[idx].astype("int64"))
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tool", default=os.path.join(HERE, "..", "build", "tools", "onnx-finetune"))
    p.add_argument("--device")
    p.add_argument("--every", type=int, default=0, help="print every N-th step (default: ~30 rows)")
    p.add_argument("--max-diff", type=float, default=None)
    a = p.parse_args(argv)
    try:
        import copy

        import torch
        from torch import nn
    except ImportError:
        print("onnx-finetune: skipped: /usr/bin/python3 has no torch (python3-torch)")
        return 77
    files = [data_file(n) for n in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")]
    if not all(files):
        print("onnx-finetune: skipped: no Fashion-MNIST in %s (dataset-fashion-mnist)" % DATA)
        return 77
    images, labels = load_idx(files[0]), load_idx(files[1])

    sys.path.insert(0, os.path.join(HERE, "peers"))
    import torch_train
    warnings.simplefilter("ignore")
    torch.manual_seed(a.seed)
    cnn = torch_train.cnn()
    start = copy.deepcopy(cnn)
    with tempfile.TemporaryDirectory(prefix="clnet-finetune-") as tmp:
        path = os.path.join(tmp, "cnn.onnx")
        exported = nn.Sequential(cnn, nn.Softmax(1)).eval()
        torch.onnx.export(exported, torch.rand(1, 1, 28, 28), path, opset_version=13,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        cmd = [a.tool, path, "--steps", str(a.steps), "--batch", str(a.batch),
               "--lr", repr(a.lr)] + (["--device", a.device] if a.device else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            sys.stderr.write(out.stderr)
            print("onnx-finetune: %s failed with status %d" % (a.tool, out.returncode))
            return 1
    mine = [float(line.split()[3]) for line in out.stdout.splitlines() if line.startswith("step")]
    theirs = torch_curve(start, images, labels, a.steps, a.batch, a.lr)
    if len(mine) != a.steps:
        print("onnx-finetune: clnet printed %d losses, expected %d" % (len(mine), a.steps))
        return 1

    every = a.every or max(1, a.steps // 30)
    print("the reference CNN exported from PyTorch (torch %s), batch %d, Adam lr %g, seed %d:"
          % (torch.__version__, a.batch, a.lr, a.seed))
    print("%6s %12s %12s %12s" % ("step", "clnet", "PyTorch", "difference"))
    for k in range(a.steps):
        if k % every == 0 or k == a.steps - 1:
            print("%6d %12.6f %12.6f %12.2e" % (k, mine[k], theirs[k], mine[k] - theirs[k]))
    win = 50 if a.steps >= 100 else 0
    if win:  # the curves' trend, past the steps where float32 rounding makes them drift
        print("mean loss over windows of %d steps:" % win)
        for s in range(0, a.steps - win + 1, win):
            print("  steps %3d-%3d: clnet %.4f, PyTorch %.4f" % (
                s, s + win - 1, sum(mine[s:s + win]) / win, sum(theirs[s:s + win]) / win))
    diffs = [abs(x - y) for x, y in zip(mine, theirs)]
    w = min(5, a.steps)
    head = (sum(mine[:w]) / w, sum(theirs[:w]) / w)
    tail = (sum(mine[-w:]) / w, sum(theirs[-w:]) / w)
    print("mean of the first %d steps: clnet %.4f, PyTorch %.4f; of the last %d: clnet %.4f, "
          "PyTorch %.4f" % (w, head[0], head[1], w, tail[0], tail[1]))
    print("largest |difference| %.2e (step %d)" % (max(diffs), diffs.index(max(diffs))))
    if a.max_diff is not None:
        bad = [k for k, d in enumerate(diffs) if not d <= a.max_diff]
        if bad:
            print("onnx-finetune: FAIL: %d steps differ by more than %g (first: step %d)"
                  % (len(bad), a.max_diff, bad[0]))
            return 1
        if not (tail[0] < head[0] and tail[1] < head[1]):
            print("onnx-finetune: FAIL: the loss did not fall")
            return 1
        print("onnx-finetune: ok (every step within %g)" % a.max_diff)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
