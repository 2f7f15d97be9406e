#!/usr/bin/python3
"""Times an ONNX model in ONNX Runtime's CPU provider and the same model in
PyTorch, at 1 and 2 threads, as clnet-bench --onnx times it in clnet
(docs/bench.md, "A user's ONNX model"): cases onnx_infer_bN (a forward on
a batch of N uniform inputs in [-1, 1)) and, in PyTorch, onnx_train_bN
(forward, the loss clnet-bench chooses, backward, Adam lr 1e-3).

  onnx_peers.py MODEL.onnx [--batch N] [--threads 1,2]
                [--torch-model torchvision:resnet18 | FILE.py:NAME]
                [--engine ort|torch] [--json FILE] [--reps N] [--quick] [--no-train]

ONNX Runtime lives in a virtual environment (~/.cache/clnet/onnxruntime-venv,
or CLNET_ORT_VENV; tools/peers/ort_run.py says how it is made) and PyTorch
in Debian's /usr/bin/python3, so without --engine the script runs itself
once under each and merges their results. The PyTorch model is the model
the file was exported from, with its own random weights (the times do not
depend on the values): torchvision:NAME (torchvision.models.NAME()) or
FILE.py:NAME (a function or class in that file returning the module);
without --torch-model PyTorch is skipped.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peerlib  # noqa: E402


def ort_python():
    venv = os.environ.get("CLNET_ORT_VENV",
                          os.path.expanduser("~/.cache/clnet/onnxruntime-venv"))
    return os.path.join(venv, "bin", "python")


def workload(name, batch, train, flops=0.0):
    about = ("the ONNX model's training step" if train else "the ONNX model's inference")
    return dict(suite="onnx", name="onnx_%s_b%d" % ("train" if train else "infer", batch),
                about=about, quick=True, flops=flops, bytes=0)


def run_ort(a, threads):
    import numpy as np
    import onnxruntime as ort
    rs = []
    for t in threads:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = t
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(1)
        feed = {}
        for i in sess.get_inputs():
            shape = [a.batch if k == 0 else d for k, d in enumerate(i.shape)]
            if any(not isinstance(d, int) for d in shape):
                raise SystemExit("onnx_peers: input %s has a symbolic dim past the batch: %s" %
                                 (i.name, i.shape))
            feed[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
        outs = [o.name for o in sess.get_outputs()]
        device = "onnxruntime-cpu (%d thread%s)" % (t, "" if t == 1 else "s")
        w = workload(a.model, a.batch, False)
        timing = peerlib.measure(lambda: sess.run(outs, feed), a.reps, a.quick)
        rs.append(peerlib.result(device, w, timing, version="onnxruntime " + ort.__version__))
    return rs


def torch_model(spec):
    import torch  # noqa: F401
    kind, _, name = spec.rpartition(":")
    if kind == "torchvision":
        import torchvision
        return getattr(torchvision.models, name)()
    if not kind.endswith(".py"):
        raise SystemExit("onnx_peers: --torch-model: torchvision:NAME or FILE.py:NAME, not %r"
                         % spec)
    mod_spec = importlib.util.spec_from_file_location("onnx_peer_model", kind)
    mod = importlib.util.module_from_spec(mod_spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(kind)))
    mod_spec.loader.exec_module(mod)
    return getattr(mod, name)()


def run_torch(a, threads, input_shapes):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(1)
    model = torch_model(a.torch_model)
    xs = [torch.rand([a.batch] + list(s)) * 2 - 1 for s in input_shapes]
    rs = []
    for t in threads:
        torch.set_num_threads(t)
        device = "pytorch-cpu (%d thread%s)" % (t, "" if t == 1 else "s")
        version = "torch " + torch.__version__
        model.eval()

        def infer():
            with torch.no_grad():
                model(*xs)
        rs.append(peerlib.result(device, workload(a.model, a.batch, False),
                                 peerlib.measure(infer, a.reps, a.quick), version=version))
        if a.no_train:
            continue
        # The loss clnet-bench takes: sparse cross-entropy for a class vector
        # made by softmax (on its log) or a linear layer, else MSE.
        model.train()
        with torch.no_grad():
            y = model(*xs)
        classes = y.shape[1] if y.dim() == 2 and y.shape[1] >= 2 else 0
        labels = torch.tensor([(i * 7 + 3) % classes for i in range(a.batch)]) if classes else None
        target = torch.rand(y.shape) * 2 - 1
        softmax_out = classes and bool(torch.allclose(y.sum(1), torch.ones(a.batch), atol=1e-4))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            out = model(*xs)
            if classes and softmax_out:
                loss = F.nll_loss(torch.log(out), labels)
            elif classes:
                loss = F.cross_entropy(out, labels)
            else:
                loss = F.mse_loss(out, target)
            loss.backward()
            opt.step()
        rs.append(peerlib.result(device, workload(a.model, a.batch, True),
                                 peerlib.measure(step, a.reps, a.quick), version=version))
    return rs


def input_shapes_ort(model):
    import onnxruntime as ort
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return [list(i.shape[1:]) for i in sess.get_inputs()]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--torch-model", metavar="SPEC")
    p.add_argument("--engine", choices=["ort", "torch"])
    p.add_argument("--input-shapes", help=argparse.SUPPRESS)  # JSON, from the ort pass
    p.add_argument("--reps", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--no-train", action="store_true", help="inference only")
    a = p.parse_args(argv)
    a.reps = a.reps or (5 if a.quick else 10)
    threads = [int(s) for s in a.threads.split(",")]
    if a.engine == "ort":
        rs = run_ort(a, threads)
        shapes = input_shapes_ort(a.model)
        for r in rs:
            r["input_shapes"] = shapes
    elif a.engine == "torch":
        rs = run_torch(a, threads, json.loads(a.input_shapes))
    else:  # both: each engine under its own interpreter
        rs = []
        with tempfile.TemporaryDirectory(prefix="clnet-onnx-peers-") as tmp:
            common = ["--batch", str(a.batch), "--threads", a.threads, "--reps", str(a.reps)]
            common += ["--quick"] if a.quick else []
            common += ["--no-train"] if a.no_train else []
            out = os.path.join(tmp, "ort.json")
            subprocess.run([ort_python(), os.path.abspath(__file__), a.model, "--engine", "ort",
                            "--json", out] + common, check=True)
            with open(out) as f:
                rs = json.load(f)
            if a.torch_model:
                out = os.path.join(tmp, "torch.json")
                subprocess.run(["/usr/bin/python3", os.path.abspath(__file__), a.model,
                                "--engine", "torch", "--torch-model", a.torch_model,
                                "--input-shapes", json.dumps(rs[0]["input_shapes"]),
                                "--json", out] + common, check=True)
                with open(out) as f:
                    rs += json.load(f)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rs, f, indent=1)
    if not (a.engine and a.json):  # the parent prints the merged tables
        peerlib.print_tables(rs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
