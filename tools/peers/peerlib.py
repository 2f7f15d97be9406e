"""Shared by the peer benchmarks and tools/compare.py: the workloads (names,
shapes, FLOP and byte formulas, exactly as clnet-bench defines them), the
timing method (first call apart, warm-up excluded, median of repetitions),
and the tables and JSON/CSV files in clnet-bench's format.

Plain Python; numpy and torch are imported by the peer scripts, not here.
docs/bench.md describes every workload and column.
"""

import csv
import json
import math
import os
import socket
import statistics
import sys
import time
from datetime import datetime, timezone

# The columns of clnet-bench's JSON and CSV files, in order.
COLUMNS = [
    "device", "suite", "name", "median_ms", "min_ms", "max_ms", "q1_ms", "q3_ms", "reps",
    "inner", "gflops", "gbps", "peak_pct", "bound", "peak_gflops", "peak_gbps", "check",
    "max_err", "event_ms", "first_call_ms", "first_call_warm_ms", "cache", "error", "about",
    "date", "host", "version",
]

NAME_WIDTH = 34


# ---- Workloads ---------------------------------------------------------------
# Each is a dict: suite, name, about, quick, flops (per operation, 0: n/a),
# bytes (minimal memory traffic per operation, 0: n/a) and its shape fields.

def gemm_workloads():
    """The same list as tools/bench/suite-gemm.c: C = A * B, row-major."""
    shapes = [
        (512, 512, 512, True, "square"),
        (1024, 1024, 1024, False, "square"),
        (2048, 2048, 2048, False, "square"),
        (32, 64, 1600, True, "CNN dense 1600->64, batch 32"),
        (32, 676, 9, True, "CNN conv1 1->32 3x3 on 28x28 as GEMM (one image)"),
        (64, 121, 288, True, "CNN conv2 32->64 3x3 on 13x13 as GEMM (one image)"),
        (32, 256, 28, True, "LSTM(64) input projection, 28 features, batch 32"),
        (32, 256, 64, True, "LSTM(64) recurrent / stacked projection, batch 32"),
    ]
    out = []
    for m, n, k, quick, about in shapes:
        name = "gemm_n%d" % n if m == n == k else "gemm_m%dn%dk%d" % (m, n, k)
        out.append(dict(suite="gemm", name=name, about=about, quick=quick, m=m, n=n, k=k,
                        flops=2.0 * m * n * k, bytes=4.0 * (m * k + k * n + m * n)))
    return out


def conv_workloads():
    """2-D convolution, NCHW, stride 1, with bias. fwd: y = conv(x, w) + b.
    bwdd: dx from dy and w (backward data); bwdw: dw from x and dy (backward
    filter, no bias gradient); each one GEMM-sized product, as benchdnn's
    BWD_D and BWD_W. fwdbwd: the forward, then from dy both dx and dw, db:
    three GEMM-sized products."""
    shapes = [  # batch, in channels, image, out channels, kernel, padding, quick
        (32, 1, 28, 32, 3, 0, True, "CNN conv1"),
        (64, 1, 28, 32, 3, 0, False, "CNN conv1"),
        (32, 32, 13, 64, 3, 0, True, "CNN conv2"),
        (64, 32, 13, 64, 3, 0, False, "CNN conv2"),
        (8, 64, 56, 64, 3, 1, False, "ResNet-style 3x3 layer"),
    ]
    out = []
    for mb, ic, ih, oc, kh, ph, quick, about in shapes:
        oh = ih + 2 * ph - kh + 1
        x, w, y = mb * ic * ih * ih, oc * ic * kh * kh, mb * oc * oh * oh
        fwd = 2.0 * mb * oc * oh * oh * ic * kh * kh
        base = "conv_mb%dic%dih%doc%dkh%d" % (mb, ic, ih, oc, kh) + ("ph%d" % ph if ph else "")
        shape = dict(mb=mb, ic=ic, ih=ih, oc=oc, kh=kh, ph=ph)
        out.append(dict(suite="conv", name=base + "_fwd", about=about + " forward", quick=quick,
                        flops=fwd, bytes=4.0 * (x + w + oc + y), direction="fwd", **shape))
        out.append(dict(suite="conv", name=base + "_bwdd", about=about + " backward data",
                        quick=quick, flops=fwd, bytes=4.0 * (y + w + x), direction="bwdd",
                        **shape))
        out.append(dict(suite="conv", name=base + "_bwdw", about=about + " backward filter",
                        quick=quick, flops=fwd, bytes=4.0 * (x + y + w), direction="bwdw",
                        **shape))
        # backward data reads dy and w, writes dx; backward weights reads x
        # and dy, writes dw and db.
        bwd_bytes = 4.0 * ((y + w + x) + (x + y + w + oc))
        out.append(dict(suite="conv", name=base + "_fwdbwd", about=about + " forward + backward",
                        quick=quick, flops=3.0 * fwd, bytes=4.0 * (x + w + oc + y) + bwd_bytes,
                        direction="fwdbwd", **shape))
    return out


def pool_workloads():
    """Max pooling 2x2, stride 2, no padding (floor), on the CNN's shapes at
    batch 32 and 64. fwdbwd: the forward, then dx from dy (through the
    argmax)."""
    out = []
    for mb, ic, ih, about in [(32, 32, 26, "CNN pool1 26->13"), (64, 32, 26, "CNN pool1 26->13"),
                              (32, 64, 11, "CNN pool2 11->5"), (64, 64, 11, "CNN pool2 11->5")]:
        oh = ih // 2
        x, y = mb * ic * ih * ih, mb * ic * oh * oh
        base = "pool_max_mb%dic%dih%dkh2" % (mb, ic, ih)
        shape = dict(mb=mb, ic=ic, ih=ih, kh=2)
        out.append(dict(suite="pool", name=base + "_fwd", about=about + " forward", quick=True,
                        flops=0.0, bytes=4.0 * (x + y), direction="fwd", **shape))
        out.append(dict(suite="pool", name=base + "_fwdbwd", about=about + " forward + backward",
                        quick=True, flops=0.0, bytes=4.0 * (x + y) + 4.0 * (2 * y + x),
                        direction="fwdbwd", **shape))
    return out


def act_workloads():
    """relu, sigmoid, tanh on 2^20 float32 elements, and softmax over the
    last axis of (rows, cols): a classifier's 32 x 10 and 1024 x 1000. fwd:
    y = f(x) into an existing y. fwdbwd: y = f(x), then dx from dy."""
    out = []
    for fn, rows, cols in [("relu", 1, 1 << 20), ("sigmoid", 1, 1 << 20), ("tanh", 1, 1 << 20),
                           ("softmax", 32, 10), ("softmax", 1024, 1000)]:
        n = rows * cols
        base = ("act_softmax_r%dc%d" % (rows, cols) if fn == "softmax" else
                "act_%s_n%d" % (fn, n))
        out.append(dict(suite="act", name=base + "_fwd", about=fn + " forward", quick=True,
                        flops=0.0, bytes=8.0 * n, direction="fwd", fn=fn, n=n, rows=rows,
                        cols=cols))
        out.append(dict(suite="act", name=base + "_fwdbwd", about=fn + " forward + backward",
                        quick=True, flops=0.0, bytes=20.0 * n, direction="fwdbwd", fn=fn, n=n,
                        rows=rows, cols=cols))
    return out


# Forward FLOP per image of the reference CNN (2 per multiply-add): conv1
# 1->32 3x3 to 26x26, conv2 32->64 3x3 to 11x11, dense 1600->64, 64->10.
CNN_FWD_FLOP = 2.0 * (32 * 9 * 26 * 26 + 64 * 32 * 9 * 11 * 11 + 1600 * 64 + 64 * 10)


def cnn_workloads():
    """The reference CNN (tools/models.c, tools/peers/torch_train.py): a
    training step (forward, softmax cross-entropy, backward, Adam) and an
    inference forward to the softmax, on random images and labels. FLOP are
    nominal: a step counts as 3 forwards."""
    out = []
    for mb, train, quick in [(32, True, True), (64, True, False), (64, False, True)]:
        about = ("reference CNN training step (forward, loss, backward, Adam)" if train else
                 "reference CNN inference (forward to softmax)")
        out.append(dict(suite="cnn", name="cnn_%s_b%d" % ("train" if train else "infer", mb),
                        about=about, quick=quick, flops=(3.0 if train else 1.0) * CNN_FWD_FLOP * mb,
                        bytes=0.0, mb=mb, train=train))
    return out


# Forward FLOP per sequence of the reference 3xLSTM(64) stack on 28 steps of
# 28 features: each layer's GEMMs, 2 T 4H (F + H), with F = 28, 64, 64, and
# Dense 64->10.
LSTM_STACK_FWD_FLOP = 2.0 * 28 * 4 * 64 * ((28 + 64) + 2 * (64 + 64)) + 2.0 * 64 * 10


def lstm_workloads():
    """One LSTM layer (PyTorch's nn.LSTM cell, batch first, zero initial
    states): fwd, an inference forward (y, hT, cT); fwdbwd, the forward, then
    dx, dW and db from a given dy (dhT = dcT = 0), as a layer returning its
    sequence. F = 2 N T 4H (F + H) FLOP (the GEMMs; nominal: with h0 = 0 the
    first step's recurrent product is not needed), fwdbwd 3F. Bytes: x,
    weights, biases, y, hT, cT; the backward reads dy, x and the weights and
    writes dx, dW, db. And one training step of the reference stack
    (3 x LSTM(64), the last state into Dense(10)) at batch 32, nominal 3
    forwards of FLOP."""
    out = []
    shapes = [  # steps, features, units, batch, quick
        (28, 28, 64, 32, True, "LSTM(64) on 28 steps of 28 (the reference stack's first layer)"),
        (100, 256, 256, 64, False, "LSTM(256) on 100 steps of 256"),
    ]
    for t, f, h, n, quick, about in shapes:
        fwd = 2.0 * n * t * 4 * h * (f + h)
        wts = 4.0 * h * (f + h) + 8.0 * h
        fwd_bytes = 4.0 * (n * t * f + wts + n * t * h + 2 * n * h)
        bwd_bytes = 4.0 * (n * t * h + n * t * f + wts - 8 * h + n * t * f + wts)
        base = "lstm_t%df%dh%d_b%d" % (t, f, h, n)
        shape = dict(t=t, f=f, h=h, mb=n)
        out.append(dict(suite="lstm", name=base + "_fwd", about=about + ", inference forward",
                        quick=quick, flops=fwd, bytes=fwd_bytes, direction="fwd", **shape))
        out.append(dict(suite="lstm", name=base + "_fwdbwd",
                        about=about + ", forward + backward (dx, dW, db)", quick=quick,
                        flops=3.0 * fwd, bytes=fwd_bytes + bwd_bytes, direction="fwdbwd",
                        **shape))
    out.append(dict(suite="lstm", name="lstm_train_b32", quick=True,
                    about="reference 3xLSTM(64) stack training step (forward, loss, backward, "
                    "Adam)", flops=3.0 * LSTM_STACK_FWD_FLOP * 32, bytes=0.0, direction="train",
                    mb=32))
    return out


# Forward FLOP per sample of the reference DCGAN (2 per multiply-add; a
# transposed convolution does one per input element, output channel and
# kernel tap). G: Dense 100->6272, ConvT 128->64 5x5 from 7x7, ConvT 64->1
# 5x5 from 14x14. D: Conv 1->64 5x5 to 14x14, Conv 64->128 5x5 to 7x7,
# Dense 6272->1.
GAN_G_FWD_FLOP = 2.0 * (100 * 6272 + 128 * 49 * 64 * 25 + 64 * 196 * 25)
GAN_D_FWD_FLOP = 2.0 * (64 * 196 * 25 + 128 * 49 * 64 * 25 + 6272)


def gan_workloads():
    """The reference DCGAN (tools/models.c, torch_train.dcgan()) at batch
    B = 64, as clnet-train gan's loop runs it: train, one iteration (G
    forward on new noise, a D step on [real; fake] (2B images), a G step
    through the frozen D; Adam lr 2e-4, beta1 0.5; BCE from logits); d_step
    and g_step its two halves (g_step draws new noise and runs G forward);
    generate, G's inference forward. FLOP nominal, a backward counted as
    twice its forward: train B (3 G + 8 D), d_step 6 B D, g_step B (3 G +
    2 D), generate B G."""
    mb, g, d = 64, GAN_G_FWD_FLOP, GAN_D_FWD_FLOP
    cases = [
        ("train", True, 3 * g + 8 * d, "DCGAN training iteration: G forward, D step on "
         "[real; fake], G step through frozen D (Adam)"),
        ("d_step", False, 6 * d, "DCGAN D step: forward, BCE, backward, Adam on [real; fake] "
         "(2B images)"),
        ("g_step", False, 3 * g + 2 * d, "DCGAN G step: new noise, G forward, frozen D forward "
         "+ backward, G backward, Adam"),
        ("generate", True, g, "DCGAN generator inference (noise to images)"),
    ]
    return [dict(suite="gan", name="gan_%s_b%d" % (kind, mb), about=about, quick=quick,
                 flops=flops * mb, bytes=0.0, direction=kind, mb=mb)
            for kind, quick, flops, about in cases]


WORKLOADS = {"gemm": gemm_workloads, "conv": conv_workloads, "pool": pool_workloads,
             "act": act_workloads, "cnn": cnn_workloads, "lstm": lstm_workloads,
             "gan": gan_workloads}


def select(suites, quick, cases=None):
    """The workloads of these suites: the quick set with quick, else all;
    with cases (names), exactly those, quick or not (clnet-bench --case)."""
    out = []
    for s in suites:
        out += [w for w in WORKLOADS[s]()
                if (w["name"] in cases if cases else w["quick"] or not quick)]
    return out


# ---- The BLAS actually loaded ---------------------------------------------------

def loaded_blas():
    """Which BLAS this process has mapped (call after the first product):
    "openblas", "mkl", "blis", "refblas" (Debian's libblas3, the netlib
    reference: 10-50x slower) or "unknown". numpy and torch from Debian
    link libblas.so.3, whichever implementation the alternatives (or
    LD_LIBRARY_PATH) point it to."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return "unknown"
    for key, name in [("openblas", "openblas"), ("libmkl_", "mkl"), ("libblis", "blis"),
                      ("/libblas.so", "refblas")]:
        if any(key in p.lower() for p in paths):
            return name
    return "unknown"


def blas_config():
    """The loaded BLAS's own description where it has one (OpenBLAS:
    openblas_get_config(), "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen
    MAX_THREADS=64"), else its file name, else None. Call after the first
    product."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "/" in line})
    except OSError:
        return None
    for p in paths:
        if "openblas" in p.lower() and ".so" in p:
            try:
                fn = ctypes.CDLL(p).openblas_get_config
                fn.restype = ctypes.c_char_p
                return fn().decode().strip()
            except (OSError, AttributeError):
                return os.path.basename(p)
    for p in paths:
        if "blas" in os.path.basename(p).lower():
            return os.path.basename(p)
    return None


def blas_warning(blas):
    if blas == "openblas":
        return ""
    return ("warning: the BLAS here is %s, not OpenBLAS: GEMM peers are not what BASELINES.md "
            "measured;\nsee docs/bench.md (libopenblas0-pthread)" % blas)


# ---- Timing -------------------------------------------------------------------

def measure(fn, reps, quick):
    """Times fn() as clnet-bench does: the first call apart, one warm-up, then
    reps repetitions of `inner` back-to-back calls (inner chosen so that a
    repetition lasts 5 ms, 20 ms without quick); fewer reps (3 at least) when
    a case would take more than 2 s (20 s). Returns a dict of ms per call."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    target, budget = (0.005, 2.0) if quick else (0.02, 20.0)
    inner = max(1, min(1000, math.ceil(target / one))) if one > 0 else 1000
    if reps > 3 and one * inner * reps > budget:
        reps = max(3, int(budget / (one * inner)))
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        ms.append((time.perf_counter() - t0) * 1e3 / inner)
    ms.sort()
    q = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else [ms[0]] * 3
    return dict(median_ms=statistics.median(ms), min_ms=ms[0], max_ms=ms[-1], q1_ms=q[0],
                q3_ms=q[2], reps=reps, inner=inner, first_call_ms=first * 1e3)


def result(device, w, timing=None, error=None, version=None):
    """One result object in clnet-bench's schema; version names the peer's
    library ("torch 1.13.1")."""
    r = {c: None for c in COLUMNS}
    r.update(device=device, suite=w["suite"], name=w["name"], about=w["about"],
             date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             host=socket.gethostname(), cache="as found", error=error, version=version)
    if timing:
        r.update(timing)
        med = timing["median_ms"]
        r["gflops"] = w["flops"] / med * 1e-6 if w["flops"] > 0 else None
        r["gbps"] = w["bytes"] / med * 1e-6 if w["bytes"] > 0 else None
    return r


# ---- Output -------------------------------------------------------------------

def fmt_ms(x):
    if x is None or x < 0:
        return "-"
    return "%.1f" % x if x >= 100 else "%.3f" % x if x >= 1 else "%.4f" % x


def fmt_num(x):
    if x is None:
        return "-"
    return "%.1f" % x if x >= 100 else "%.2f" % x if x >= 1 else "%.3f" % x


ROW = "%-6s %-" + str(NAME_WIDTH) + "s %10s %10s %10s %12s %9s %8s %7s %-5s %10s"


def print_device_table(rs, device, index, out=sys.stdout):
    """The per-device table, as clnet-bench prints it."""
    print("\ndevice %d: %s" % (index, device), file=out)
    mine = [r for r in rs if r["device"] == device]
    if mine and mine[0].get("peak_gflops"):
        print("  measured peak: %.1f GFLOP/s, %.1f GB/s" % (mine[0]["peak_gflops"],
                                                           mine[0]["peak_gbps"]), file=out)
    else:
        print("  peak not measured", file=out)
    print(ROW % ("suite", "name", "median ms", "min ms", "max ms", "reps x inner", "GFLOP/s",
                 "GB/s", "%peak", "check", "events ms"), file=out)
    for r in mine:
        if r.get("error"):
            print(("%-6s %-" + str(NAME_WIDTH) + "s ERROR %s") % (r["suite"], r["name"],
                                                                  r["error"]), file=out)
            continue
        pct = "-" if r.get("peak_pct") is None else "%.0f%% %s" % (r["peak_pct"], r["bound"])
        check = {"pass": "pass", "fail": "FAIL"}.get(r.get("check"), "-")
        print(ROW % (r["suite"], r["name"], fmt_ms(r["median_ms"]), fmt_ms(r["min_ms"]),
                     fmt_ms(r["max_ms"]), "%d x %d" % (r["reps"], r["inner"]),
                     fmt_num(r.get("gflops")), fmt_num(r.get("gbps")), pct, check,
                     fmt_ms(r.get("event_ms"))), file=out)


def devices_of(rs):
    seen = []
    for r in rs:
        if r["device"] not in seen:
            seen.append(r["device"])
    return seen


def print_tables(rs, out=sys.stdout):
    for i, d in enumerate(devices_of(rs)):
        print_device_table(rs, d, i, out)


def _cell(r, base):
    if r is None:
        return "-"
    if r.get("error"):
        return "error"
    if r.get("check") == "fail":
        return "FAIL"
    ok_base = base is not None and not base.get("error") and base.get("check") != "fail"
    if r is base or not ok_base:
        return fmt_ms(r["median_ms"])
    return "%s (%.2fx)" % (fmt_ms(r["median_ms"]), base["median_ms"] / r["median_ms"])


def print_side_by_side(rs, out=sys.stdout, width=18):
    """Median ms per workload and device, speed-up against the first device;
    a failed check reads FAIL and is not ranked."""
    devs = devices_of(rs)
    print("\nside by side: median ms per operation (speed-up against device 0; FAIL: a wrong "
          "answer, not ranked)", file=out)
    for i, d in enumerate(devs):
        print("  device %d: %s" % (i, d), file=out)
    print(("%-" + str(NAME_WIDTH) + "s") % "name" +
          "".join((" %" + str(width) + "s") % ("device %d" % i) for i in range(len(devs))),
          file=out)
    names = []
    for r in rs:
        if r["name"] not in names:
            names.append(r["name"])
    by = {(r["device"], r["name"]): r for r in rs}
    for name in names:
        base = by.get((devs[0], name))
        cells = [_cell(by.get((d, name)), base) for d in devs]
        print(("%-" + str(NAME_WIDTH) + "s") % name +
              "".join((" %" + str(width) + "s") % c for c in cells), file=out)


def _target(path):
    """The file a write to path replaces: a symlink's target, or path."""
    return os.path.realpath(path) if os.path.islink(path) else path


def check_outputs(prog, args):
    """Before the work, as clnet-bench does (tools/outfile.c): an existing
    --json/--csv target must be a regular file (never a device node, FIFO or
    directory) and its directory must take a new file. Exits with status 2
    and a message naming the option otherwise."""
    for option, path in (("--json", args.json), ("--csv", args.csv)):
        if path is None:
            continue
        why = None
        if not path:
            why = "an empty path"
        elif os.path.lexists(path) and not os.path.exists(path):
            why = "a symlink to nothing"
        elif os.path.exists(path) and not os.path.isfile(path):
            why = "not a regular file; refusing to replace it"
        else:
            probe = "%s.tmp-%d-probe" % (_target(path), os.getpid())
            try:
                os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                os.unlink(probe)
            except OSError as e:
                why = "cannot create a file there: %s" % e.strerror
        if why:
            print('%s: %s "%s": %s' % (prog, option, path, why), file=sys.stderr)
            sys.exit(2)


def _write_atomic(path, fill, **open_args):
    """fill(f) into PATH.tmp-PID-N next to the target, fsync, rename: a
    failed write (a full disk) leaves the old file as it was."""
    dest = _target(path)
    tmp = "%s.tmp-%d-%x" % (dest, os.getpid(), id(fill) & 0xffff)
    try:
        with open(tmp, "x", **open_args) as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, rs):
    def fill(f):
        json.dump([{c: r.get(c) for c in COLUMNS} for r in rs], f, indent=1)
        f.write("\n")
    _write_atomic(path, fill)


def write_csv(path, rs):
    _write_atomic(path, lambda f: _fill_csv(f, rs), newline="")


def _fill_csv(f, rs):
    w = csv.writer(f, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rs:
        w.writerow(["" if r.get(c) is None else
                    "%.6g" % r[c] if isinstance(r[c], float) else r[c] for c in COLUMNS])


def common_args(parser, suites):
    parser.add_argument("--suite", action="append", choices=suites,
                        help="run only this suite (repeatable); default: all of " +
                        ", ".join(suites))
    parser.add_argument("--quick", action="store_true", help="the small set of cases")
    parser.add_argument("--case", action="append", metavar="NAME",
                        help="run only this workload (repeatable; from the full set even with "
                        "--quick, which then sets the repetitions only)")
    parser.add_argument("--reps", type=int, default=0,
                        help="timed repetitions (default 10, 5 with --quick)")
    parser.add_argument("--json", metavar="FILE", help="write the results as a JSON array")
    parser.add_argument("--csv", metavar="FILE", help="write the results as CSV")


def finish(args, rs, header, warning=""):
    print(header)
    if warning:
        print(warning)
    print("times: per operation, median of the repetitions (a repetition calls the operation "
          "`inner` times),\nwall clock; warm-up excluded; no peak is measured for peers")
    print_tables(rs)
    if args.json:
        write_json(args.json, rs)
    if args.csv:
        write_csv(args.csv, rs)
    return 1 if any(r.get("error") for r in rs) else 0
