"""Issue #9's speed targets, for tools/compare.py --targets: which workloads
they name, which peer each is held against, and the table that says, for
each, clnet's median, the peer's, their ratio, the target and whether it is
met, under a header naming the date, the machine, the OpenCL device and the
peers' versions. Plain Python; the peers' versions are read by running the
peers' Python (Debian's, with numpy and torch).

Ratios are of medians measured in one run of compare.py (clnet-bench, then
the peers, one after the other on the same machine).
"""

import json
import os
import platform
import re
import subprocess
from datetime import datetime, timezone

# Targets, in the order. kind "speed": clnet's throughput as a share
# of the peer's (peer ms / clnet ms), met when >= bound; kind "time": clnet's
# time as a multiple of the peer's (clnet ms / peer ms), met when <= bound.
# peer "numpy": numpy.matmul on OpenBLAS; "torch": the better (lower median)
# of PyTorch CPU with 1 and 2 threads.
GEMM_CASES = ["gemm_n512", "gemm_n1024", "gemm_n2048", "gemm_m32n64k1600", "gemm_m32n676k9",
              "gemm_m64n121k288", "gemm_m32n256k28", "gemm_m32n256k64"]
CONV_SHAPES = ["conv_mb32ic1ih28oc32kh3", "conv_mb64ic1ih28oc32kh3", "conv_mb32ic32ih13oc64kh3",
               "conv_mb64ic32ih13oc64kh3", "conv_mb8ic64ih56oc64kh3ph1"]
TRAIN_CASES = ["cnn_train_b32", "cnn_train_b64", "lstm_train_b32", "gan_train_b64"]

TARGETS = ([dict(case=c, peer="numpy", kind="speed", bound=0.8) for c in GEMM_CASES] +
           [dict(case="%s_%s" % (s, d), peer="torch", kind="time", bound=1.0)
            for s in CONV_SHAPES for d in ("fwd", "bwdd", "bwdw")] +
           [dict(case=c, peer="torch", kind="time", bound=1.0) for c in TRAIN_CASES])


def case_names():
    return [t["case"] for t in TARGETS]


def now_utc():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def load_average():
    """The 1-minute load average, None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def start():
    """What the header needs from before the run: its date and load."""
    return dict(date=now_utc(), load=load_average())


# ---- The header --------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def opencl_platform(bench, label):
    """The platform line of `clnet-bench --list` for a device labelled
    "NAME [P:D]": "Portable Computing Language (OpenCL 3.0 PoCL 3.1+debian
    ...)", shortened to the name and the version in parentheses' start."""
    m = re.search(r"\[(\d+):\d+\]$", label or "")
    if not m:
        return None
    try:
        out = subprocess.run([bench, "--list"], capture_output=True, text=True,
                             timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if line.startswith("platform %s: " % m.group(1)):
            text = line.split(": ", 1)[1]
            return re.sub(r"(PoCL [^ ]+).*\)$", r"\1)", text)  # drop pocl's build flags
    return None


PEER_VERSIONS = """
import json, sys
sys.path.insert(0, %r)
import peerlib
import numpy as np
np.ones((2, 2), np.float32) @ np.ones((2, 2), np.float32)
v = dict(numpy=np.__version__, blas=peerlib.blas_config() or peerlib.loaded_blas())
try:
    import torch
    v["torch"] = torch.__version__
except ImportError:
    v["torch"] = None
print(json.dumps(v))
"""


def peer_versions(python):
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")
    try:
        out = subprocess.run([python, "-c", PEER_VERSIONS % here], capture_output=True,
                             text=True, timeout=120).stdout
        return json.loads(out)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}


def machine_info(bench, python, results, started):
    """The header's facts; started is start()'s, taken before the run."""
    clnet = [r for r in results if is_clnet(r)]
    label = clnet[0]["device"] if clnet else None
    return dict(started=started["date"], finished=now_utc(), cpu=cpu_model(),
                cores=os.cpu_count(), host=platform.node(), device=label,
                platform=opencl_platform(bench, label),
                clnet=clnet[0].get("version") if clnet else None,
                load=(started["load"], load_average()), peers=peer_versions(python))


# ---- The table ---------------------------------------------------------------

def is_clnet(r):
    return not (r["device"].startswith("numpy-") or r["device"].startswith("pytorch-"))


def usable(r):
    return r is not None and not r.get("error") and r.get("median_ms")


def best(results, name, peer):
    """The peer's result for this workload: numpy's, or the faster PyTorch."""
    prefix = "numpy-" if peer == "numpy" else "pytorch-"
    rs = [r for r in results if r["name"] == name and r["device"].startswith(prefix) and usable(r)]
    return min(rs, key=lambda r: r["median_ms"]) if rs else None


def short_peer(r):
    d = r["device"]
    m = re.match(r"pytorch-cpu \((\d+) threads?\)", d)
    return "torch %st" % m.group(1) if m else d


def evaluate(results, t):
    """(clnet result, peer result, ratio, verdict) for target t."""
    mine = [r for r in results if is_clnet(r) and r["name"] == t["case"]]
    c = mine[0] if mine else None
    p = best(results, t["case"], t["peer"])
    if not usable(c):
        return c, p, None, "no clnet result"
    if c.get("check") == "fail":
        return c, p, None, "FAIL (wrong answer)"
    if p is None:
        return c, p, None, "no peer result"
    ratio = (p["median_ms"] / c["median_ms"] if t["kind"] == "speed" else
             c["median_ms"] / p["median_ms"])
    met = ratio >= t["bound"] if t["kind"] == "speed" else ratio <= t["bound"]
    return c, p, ratio, "met" if met else "missed"


def fmt(x):
    if x is None:
        return "-"
    return "%.1f" % x if x >= 100 else "%.3f" % x if x >= 1 else "%.4f" % x


def print_header(info):
    print("issue #9 speed targets: clnet against its peers, medians of one run")
    print("  date:     %s to %s" % (info["started"], info["finished"]))
    load = info.get("load") or (None, None)
    print("  machine:  %s, %s logical cores (%s)%s" % (
        info["cpu"], info["cores"], info["host"],
        ", 1-min load average %.1f before, %.1f after" % load if None not in load else ""))
    print("  clnet:    %s on %s" % (info.get("clnet") or "?", info.get("device") or "?"))
    if info.get("platform"):
        print("  OpenCL:   %s" % info["platform"])
    v = info.get("peers") or {}
    print("  peers:    numpy %s, PyTorch %s (CPU; the better of 1 and 2 threads)" %
          (v.get("numpy", "?"), v.get("torch") or "not installed"))
    print("  BLAS:     %s" % v.get("blas", "?"))
    print("  speed = peer ms / clnet ms (target >= 0.80: 80% of OpenBLAS's throughput);")
    print("  time  = clnet ms / peer ms (target <= 1.00: as fast as PyTorch or faster)")


ROW = "%-31s %10s %10s %-16s %-5s %7s %8s  %s"


def print_table(results, info):
    print_header(info)
    print()
    print(ROW % ("workload", "clnet ms", "peer ms", "peer", "kind", "ratio", "target", "verdict"))
    met = counted = 0
    for t in TARGETS:
        c, p, ratio, verdict = evaluate(results, t)
        sign = ">=" if t["kind"] == "speed" else "<="
        print(ROW % (t["case"], fmt(c["median_ms"]) if usable(c) else "-",
                     fmt(p["median_ms"]) if p else "-", short_peer(p) if p else t["peer"],
                     t["kind"], "%.3fx" % ratio if ratio is not None else "-",
                     "%s %.2f" % (sign, t["bound"]), verdict))
        counted += ratio is not None
        met += verdict == "met"
    print("\n%d of %d targets met (%d measured)" % (met, len(TARGETS), counted))
