#!/usr/bin/env python3
"""Fashion-MNIST test accuracy of an ONNX classifier in ONNX Runtime.

Usage: onnx-roundtrip.py MODEL.onnx [--data DIR] [--batch N]

The other half of the round trip `clnet-train cnn --epochs 1 --save-onnx
cnn.onnx`: runs the file with ONNX Runtime's CPU provider
(tools/peers/ort_run.py) on the 10,000 test images, scaled as clnet loads
them (pixel / 255, float32, shape (N, 1, 28, 28)), and prints the accuracy
(argmax of the output against the label) to compare with clnet-train's
"test accuracy". Needs onnxruntime and numpy: run it with the virtual
environment's python (~/.cache/clnet/onnxruntime-venv/bin/python, made by
the onnx-export-ort test or by python3 -m venv and pip install onnxruntime
'numpy<2').
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
import ort_run  # noqa: E402


def read_idx(path):
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args(argv)
    images = read_idx(os.path.join(a.data, "t10k-images-idx3-ubyte"))
    labels = read_idx(os.path.join(a.data, "t10k-labels-idx1-ubyte"))
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    correct = 0
    for i in range(0, len(x), a.batch):
        _, (y,) = ort_run.run(a.model, [x[i:i + a.batch]])
        correct += int((y.argmax(axis=1) == labels[i:i + a.batch]).sum())
    print("ONNX Runtime test accuracy: %.4f (%d of %d)" % (correct / len(x), correct, len(x)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
