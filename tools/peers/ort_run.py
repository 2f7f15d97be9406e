#!/usr/bin/env python3
"""Runs an ONNX model with ONNX Runtime's CPU provider on .npy inputs.

Usage: ort_run.py MODEL.onnx --input [NAME=]FILE.npy ... [--output [NAME=]FILE.npy ...]

Inputs and outputs match the model's by order, or by name with NAME=, as
clnet-run's. Prints each output's name, shape and first values; writes the
outputs asked for with numpy.save. Needs the onnxruntime and numpy
packages (a virtual environment: python3 -m venv ~/.cache/clnet/onnxruntime-venv;
pip install onnxruntime 'numpy<2').
"""
import argparse
import sys

import numpy as np


def run(model_path, inputs):
    """inputs: a list of arrays (by order) or a dict name -> array. Returns
    (output names, list of arrays)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if not isinstance(inputs, dict):
        if len(inputs) != len(names):
            raise SystemExit("%s has %d inputs (%s), %d given" % (model_path, len(names),
                                                                 ", ".join(names), len(inputs)))
        inputs = dict(zip(names, inputs))
    feed = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}
    outs = [o.name for o in sess.get_outputs()]
    return outs, sess.run(outs, feed)


def split(spec):
    name, sep, path = spec.partition("=")
    return (name, path) if sep and not name.endswith(".npy") else (None, spec)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--input", action="append", default=[])
    ap.add_argument("--output", action="append", default=[])
    a = ap.parse_args(argv)
    ins = [split(s) for s in a.input]
    if any(n for n, _ in ins):
        feed = {n: np.load(p) for n, p in ins}
    else:
        feed = [np.load(p) for _, p in ins]
    names, values = run(a.model, feed)
    for n, v in zip(names, values):
        print("%s %s %s" % (n, list(v.shape), np.array2string(v.ravel()[:6], precision=6)))
    for i, spec in enumerate(a.output):
        n, path = split(spec)
        k = names.index(n) if n else i
        np.save(path, values[k])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
