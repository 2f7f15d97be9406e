#!/usr/bin/python3
"""PyTorch CPU on clnet-bench's workloads: GEMM, convolution, max pooling,
activations, the reference CNN, LSTM and DCGAN, each with 1 and 2 intra-op
threads.

Same names, shapes and FLOP/byte formulas as clnet-bench (tools/peers/
peerlib.py holds them), the same table and JSON/CSV schema; device
"pytorch-cpu (N threads)". On a small machine 2 threads are often slower
than 1 for small ops: compare against the better of the two. Debian's
/usr/bin/python3 has torch 1.13; see docs/bench.md.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_train  # noqa: E402  (the reference models, as the training peer builds them)

SUITES = ["gemm", "conv", "pool", "act", "cnn", "lstm", "gan"]


def uniform(*shape, grad=False):
    return (torch.rand(*shape) * 2 - 1).requires_grad_(grad)


def gemm_fn(w):
    a, b = uniform(w["m"], w["k"]), uniform(w["k"], w["n"])
    c = torch.empty(w["m"], w["n"])
    return lambda: torch.mm(a, b, out=c)


def conv_fn(w):
    bwd = w["direction"] == "fwdbwd"
    x = uniform(w["mb"], w["ic"], w["ih"], w["ih"], grad=bwd)
    wt = uniform(w["oc"], w["ic"], w["kh"], w["kh"], grad=bwd)
    b = uniform(w["oc"], grad=bwd)
    if w["direction"] == "fwd":
        def fwd():
            with torch.no_grad():
                F.conv2d(x, wt, b, padding=w["ph"])
        return fwd
    oh = w["ih"] + 2 * w["ph"] - w["kh"] + 1
    dy = uniform(w["mb"], w["oc"], oh, oh)
    if not bwd:  # one direction alone: the op autograd itself calls
        ph, mask = w["ph"], [w["direction"] == "bwdd", w["direction"] == "bwdw", False]

        def one_direction():
            torch.ops.aten.convolution_backward(dy, x, wt, None, [1, 1], [ph, ph], [1, 1],
                                                False, [0, 0], 1, mask)
        return one_direction

    def fwdbwd():  # dx, dw and db, as a layer inside a network needs
        x.grad = wt.grad = b.grad = None
        F.conv2d(x, wt, b, padding=w["ph"]).backward(dy)
    return fwdbwd


def pool_fn(w):
    bwd = w["direction"] == "fwdbwd"
    x = uniform(w["mb"], w["ic"], w["ih"], w["ih"], grad=bwd)
    if not bwd:
        def fwd():
            with torch.no_grad():
                F.max_pool2d(x, 2, 2)
        return fwd
    oh = w["ih"] // 2
    dy = uniform(w["mb"], w["ic"], oh, oh)

    def fwdbwd():
        x.grad = None
        F.max_pool2d(x, 2, 2).backward(dy)
    return fwdbwd


ACT = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
       "softmax": lambda x, **kw: torch.softmax(x, -1, **kw)}


def act_fn(w):
    shape, f = (w["rows"], w["cols"]) if w["fn"] == "softmax" else (w["n"],), ACT[w["fn"]]
    if w["direction"] == "fwd":
        x, y = uniform(*shape), torch.empty(*shape)
        if w["fn"] == "relu":
            return lambda: torch.clamp_min(x, 0.0, out=y)
        return lambda: f(x, out=y)
    x, dy = uniform(*shape, grad=True), uniform(*shape)

    def fwdbwd():
        x.grad = None
        f(x).backward(dy)
    return fwdbwd


def cnn_fn(w):
    """clnet_model_train_on_batch's work in PyTorch: Keras' initialization,
    Adam (lr 1e-3), softmax cross-entropy on integer labels; inference ends
    with the softmax, as clnet's output layer does."""
    model = torch_train.cnn()
    torch_train.keras_init(model)
    x, y = torch.rand(w["mb"], 1, 28, 28), torch.randint(0, 10, (w["mb"],))
    if w["train"]:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return step
    model.eval()

    def infer():
        with torch.no_grad():
            torch.softmax(model(x), 1)
    return infer


def lstm_fn(w):
    """One nn.LSTM layer (PyTorch's default initialization, as clnet's
    suite draws its weights), or a training step of the reference stack
    (torch_train.RecurrentStack: 3 x LSTM(64), Linear(10); Adam lr 1e-3,
    softmax cross-entropy on integer labels)."""
    if w["direction"] == "train":
        model = torch_train.RecurrentStack("lstm")
        x, y = torch.rand(w["mb"], 28, 28), torch.randint(0, 10, (w["mb"],))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return step
    lstm = torch.nn.LSTM(w["f"], w["h"], batch_first=True)
    if w["direction"] == "fwd":
        x = uniform(w["mb"], w["t"], w["f"])

        def fwd():  # y, (hT, cT)
            with torch.no_grad():
                lstm(x)
        return fwd
    x, dy = uniform(w["mb"], w["t"], w["f"], grad=True), uniform(w["mb"], w["t"], w["h"])

    def fwdbwd():  # dx, dW and db from dy, as a layer returning its sequence
        x.grad = None
        lstm.zero_grad(set_to_none=True)
        lstm(x)[0].backward(dy)
    return fwdbwd


def gan_fn(w):
    """The DCGAN of torch_train.dcgan() (clnet-train gan's models), stepped
    as torch_train.train_gan and clnet's gan_trainer do: D on one batch of
    [real; fake.detach()] against [1; 0], then G through D with D's
    parameters frozen (requires_grad off) against 1; Adam lr 2e-4, beta1
    0.5; BCE from logits. Both models in training mode (batch statistics,
    dropout); generate: G in eval mode under no_grad."""
    g, d = torch_train.dcgan()
    b = w["mb"]
    real = uniform(b, 1, 28, 28)
    if w["direction"] == "generate":
        g.eval()
        z = torch.randn(b, 100)

        def generate():
            with torch.no_grad():
                g(z)
        return generate
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    targets_d, ones = torch.cat([torch.ones(b, 1), torch.zeros(b, 1)]), torch.ones(b, 1)

    def d_step(fake):
        for p in d.parameters():
            p.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        bce(d(torch.cat([real, fake.detach()])), targets_d).backward()
        opt_d.step()

    def g_step(fake):
        for p in d.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        bce(d(fake), ones).backward()
        opt_g.step()

    if w["direction"] == "d_step":
        fixed = g(torch.randn(b, 100)).detach()
        return lambda: d_step(fixed)
    if w["direction"] == "g_step":
        return lambda: g_step(g(torch.randn(b, 100)))

    def train():
        fake = g(torch.randn(b, 100))
        d_step(fake)
        g_step(fake)
    return train


MAKE = {"gemm": gemm_fn, "conv": conv_fn, "pool": pool_fn, "act": act_fn, "cnn": cnn_fn,
        "lstm": lstm_fn, "gan": gan_fn}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    peerlib.common_args(p, SUITES)
    p.add_argument("--threads", default="1,2",
                   help="comma-separated intra-op thread counts (default 1,2)")
    args = p.parse_args()
    peerlib.check_outputs("peer_torch.py", args)
    reps = args.reps or (5 if args.quick else 10)
    torch.manual_seed(0)
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))  # loads the BLAS
    blas = peerlib.loaded_blas()
    version = "torch %s, %s" % (torch.__version__, blas)
    rs = []
    for t in [int(s) for s in args.threads.split(",")]:
        torch.set_num_threads(t)
        device = "pytorch-cpu (%d thread%s)" % (t, "" if t == 1 else "s")
        for w in peerlib.select(args.suite or SUITES, args.quick, args.case):
            try:
                timing = peerlib.measure(MAKE[w["suite"]](w), reps, args.quick)
                rs.append(peerlib.result(device, w, timing, version=version))
            except Exception as e:  # report, do not stop the other cases
                rs.append(peerlib.result(device, w, error=repr(e), version=version))
            print("  %s %s done" % (device, w["name"]), file=sys.stderr)
    backend = [line.strip() for line in torch.__config__.parallel_info().splitlines()
               if "parallel backend" in line]
    return peerlib.finish(args, rs, "peer PyTorch %s CPU (%s; BLAS %s)" %
                          (torch.__version__, backend[0] if backend else "?", blas),
                          peerlib.blas_warning(blas))


if __name__ == "__main__":
    sys.exit(main())
