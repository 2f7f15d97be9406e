#!/usr/bin/python3
"""Runs clnet-bench on the chosen devices, then the peers (numpy/OpenBLAS and
PyTorch CPU with 1 and 2 threads) on the same workloads, and prints one
combined side-by-side table. The one command to compare clnet with its
peers; docs/bench.md explains the columns.

  tools/compare.py --quick                      # default device, all suites
  tools/compare.py --device all --check --json all.json
  tools/compare.py --targets --lock /tmp/clnet-bench.lock   # issue #9's table
  tools/compare.py --onnx resnet18.onnx --batch 8 --lock /tmp/clnet-bench.lock

--targets runs only the workloads of issue #9's speed targets (tools/
targets.py) and prints one row per target: clnet's median, the peer's, the
ratio, the target and whether it is met, under a header naming the date, the
machine, the OpenCL device and the peers' versions.

--onnx MODEL runs clnet-bench --onnx MODEL and tools/peers/onnx_peers.py
(ONNX Runtime's CPU provider and the PyTorch model it was exported from, 1
and 2 threads) and prints one table with clnet's time over each peer's best.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
import peerlib  # noqa: E402
import targets  # noqa: E402  (tools/targets.py)


def find_bench(path):
    candidates = [path] if path else [
        os.path.join(HERE, "..", "build", "tools", "clnet-bench"),
        shutil.which("clnet-bench"),
    ]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    sys.exit("compare: clnet-bench not found; build it (ninja -C build) or pass --bench PATH")


def bench_suites(bench):
    """The suites this clnet-bench has (its --list-suites, one "name: ..." per
    suite, cases indented)."""
    out = subprocess.run([bench, "--list-suites"], capture_output=True, text=True,
                         check=True).stdout
    return [line.split(":")[0] for line in out.splitlines() if line and not line[0].isspace()]


def peer_python():
    """Debian's python3 has torch and numpy; a pyenv python3 may not."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def run(cmd, json_path, what, lock=None):
    """Runs one benchmark (its tables go to our stdout), under `flock LOCK`
    when lock is set; returns its results and exit status."""
    if lock:
        cmd = ["flock", lock] + cmd
    print("\n$ " + " ".join(cmd), flush=True)
    rc = subprocess.run(cmd).returncode
    if not os.path.exists(json_path):
        print("compare: %s wrote no results (exit status %d)" % (what, rc), file=sys.stderr)
        return [], rc
    with open(json_path) as f:
        return json.load(f), rc


def slow_blas(results):
    """The BLAS a peer reported when it is not OpenBLAS (numpy's device name,
    torch's version string end with it), else None."""
    for r in results:
        for field in (r.get("device") or "", r.get("version") or ""):
            for name in ("refblas", "unknown"):
                if field.startswith("numpy-" + name) or field.endswith(", " + name):
                    return name
    return None


def run_all(args, bench, suites, cases=None):
    """clnet-bench, then the numpy peer (GEMM) and the PyTorch peer, on the
    suites (or only the named cases of them); returns (results, clnet-bench's
    exit status)."""
    have = bench_suites(bench)
    common = ["--quick"] if args.quick else []
    common += ["--reps", str(args.reps)] if args.reps else []
    pick = sum((["--case", c] for c in cases), []) if cases else []
    results, status = [], 0
    with tempfile.TemporaryDirectory(prefix="clnet-compare-") as tmp:
        mine = [s for s in suites if s in have]
        if mine:
            cmd = [bench] + sum((["--device", d] for d in args.device), [])
            cmd += sum((["--suite", s] for s in mine), []) + common + pick
            cmd += (["--check"] if args.check else []) + (["--cold"] if args.cold else [])
            rs, rc = run(cmd + ["--json", os.path.join(tmp, "clnet.json")],
                         os.path.join(tmp, "clnet.json"), "clnet-bench", args.lock)
            results += rs
            status = rc
        missing = [s for s in suites if s not in have]
        if missing:
            print("\ncompare: clnet-bench has no suite %s yet: peers only" % ", ".join(missing))
        py = peer_python()
        gemm_cases = [c for c in cases or [] if c.startswith("gemm_")]
        if "gemm" in suites and not args.no_numpy and (gemm_cases or not cases):
            cmd = [py, os.path.join(HERE, "peers", "peer_numpy.py"), "--suite", "gemm"] + common
            cmd += sum((["--case", c] for c in gemm_cases), [])
            rs, _ = run(cmd + ["--json", os.path.join(tmp, "numpy.json")],
                        os.path.join(tmp, "numpy.json"), "the numpy peer", args.lock)
            results += rs
        # --targets holds GEMM against numpy only: PyTorch's GEMM on request.
        no_gemm = args.targets and not args.torch_gemm
        torch_suites = [s for s in suites if not (no_gemm and s == "gemm")]
        torch_cases = [c for c in cases or [] if not (no_gemm and c.startswith("gemm_"))]
        if not args.no_torch and torch_suites and (torch_cases or not cases):
            cmd = [py, os.path.join(HERE, "peers", "peer_torch.py"), "--threads", args.threads]
            cmd += sum((["--suite", s] for s in torch_suites), []) + common
            cmd += sum((["--case", c] for c in torch_cases), [])
            rs, _ = run(cmd + ["--json", os.path.join(tmp, "torch.json")],
                        os.path.join(tmp, "torch.json"), "the PyTorch peer", args.lock)
            results += rs
    return results, status


# torchvision models the PyTorch peer recognizes by the file's name
# (resnet18.onnx); others need --torch-model.
TORCHVISION = {"resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_small",
               "mobilenet_v3_large", "squeezenet1_0", "squeezenet1_1", "shufflenet_v2_x1_0",
               "alexnet", "vgg11", "googlenet", "densenet121", "efficientnet_b0"}


def run_onnx(args, bench):
    """clnet-bench --onnx on the chosen devices, then the ONNX peers; prints
    the combined table and clnet's ratios to the peers' best. Returns
    clnet-bench's exit status."""
    batch = ["--batch", str(args.batch)] if args.batch else []
    common = (["--quick"] if args.quick else []) + (["--reps", str(args.reps)] if args.reps else [])
    stem = os.path.splitext(os.path.basename(args.onnx))[0]
    torch_model = args.torch_model or ("torchvision:" + stem if stem in TORCHVISION else None)
    with tempfile.TemporaryDirectory(prefix="clnet-compare-") as tmp:
        cmd = [bench, "--onnx", args.onnx] + batch + common
        cmd += sum((["--case", c] for c in args.case or []), [])
        cmd += sum((["--device", d] for d in args.device), [])
        cmd += (["--check"] if args.check else []) + (["--cold"] if args.cold else [])
        results, status = run(cmd + ["--json", os.path.join(tmp, "clnet.json")],
                              os.path.join(tmp, "clnet.json"), "clnet-bench", args.lock)
        if not results:
            return status or 1
        # The peers at the batch clnet-bench ran (the file's unless --batch).
        nb = results[0]["name"].rsplit("_b", 1)[1]
        cmd = [peer_python(), os.path.join(HERE, "peers", "onnx_peers.py"), args.onnx,
               "--batch", nb, "--threads", args.threads] + common
        cmd += ["--torch-model", torch_model] if torch_model else []
        if args.case and not any("_train_" in c for c in args.case):
            cmd += ["--no-train"]  # --case onnx_infer_bN: inference only
        rs, _ = run(cmd + ["--json", os.path.join(tmp, "peers.json")],
                    os.path.join(tmp, "peers.json"), "the ONNX peers", args.lock)
        results += rs
    print("\n==== combined ====")
    peerlib.print_side_by_side(results, width=26)
    print("(2.00x: twice as fast as device 0, 0.50x: half as fast)")
    print("\nclnet over each peer's best thread count (median ms; a ratio < 1: clnet faster):")
    for name in sorted({r["name"] for r in results}):
        ok = [r for r in results if r["name"] == name and not r.get("error")
              and r.get("check") != "fail" and r.get("median_ms")]
        mine = [r for r in ok if not r["device"].startswith(("onnxruntime", "pytorch"))]
        for r in results:
            if r["name"] == name and r.get("error") and r["device"] and \
                    not r["device"].startswith(("onnxruntime", "pytorch")):
                print("  %-18s clnet on %s: %s" % (name, r["device"][:40], r["error"][:100]))
        for m in mine:
            cells = []
            for peer in ("onnxruntime", "pytorch"):
                best = min((r for r in ok if r["device"].startswith(peer)),
                           key=lambda r: r["median_ms"], default=None)
                if best:
                    cells.append("%s %.3g ms (%s): %.2f" % (peer, best["median_ms"],
                                                           best["device"].split("(")[1][:-1],
                                                           m["median_ms"] / best["median_ms"]))
            print("  %-18s clnet %.3g ms on %s; %s" % (name, m["median_ms"], m["device"][:40],
                                                      "; ".join(cells) or "no peer"))
    if args.json:
        peerlib.write_json(args.json, results)
    if args.csv:
        peerlib.write_csv(args.csv, results)
    return status


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", action="append", default=[],
                   help="clnet-bench --device (repeatable; \"all\": every device)")
    p.add_argument("--suite", action="append", choices=sorted(peerlib.WORKLOADS),
                   help="run only this suite (repeatable); default: all")
    p.add_argument("--case", action="append", metavar="NAME",
                   help="run only this workload (repeatable), in clnet-bench and the peers")
    p.add_argument("--targets", action="store_true",
                   help="issue #9's speed targets only, and their table (implies --check)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--check", action="store_true", help="clnet-bench --check")
    p.add_argument("--cold", action="store_true", help="clnet-bench --cold")
    p.add_argument("--reps", type=int, default=0)
    p.add_argument("--threads", default="1,2", help="PyTorch thread counts (default 1,2)")
    p.add_argument("--no-numpy", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--torch-gemm", action="store_true",
                   help="with --targets: time PyTorch's GEMM too (the target is numpy's)")
    p.add_argument("--lock", metavar="FILE",
                   help="run each benchmark under `flock FILE` (timing runs never overlap)")
    p.add_argument("--bench", metavar="PATH", help="the clnet-bench to run")
    p.add_argument("--onnx", metavar="MODEL",
                   help="compare on this ONNX model: clnet-bench --onnx and "
                   "tools/peers/onnx_peers.py (ONNX Runtime, PyTorch)")
    p.add_argument("--batch", type=int, default=0, help="with --onnx: the batch")
    p.add_argument("--torch-model", metavar="SPEC",
                   help="with --onnx: the PyTorch model (torchvision:NAME or FILE.py:NAME; "
                   "default: torchvision:STEM when the file's name is a torchvision model)")
    p.add_argument("--json", metavar="FILE", help="write every result as one JSON array")
    p.add_argument("--csv", metavar="FILE", help="the same as CSV")
    args = p.parse_args()
    peerlib.check_outputs("compare.py", args)
    if args.onnx:
        return run_onnx(args, find_bench(args.bench))

    bench = find_bench(args.bench)
    cases = args.case
    if args.targets:
        args.check = True
        cases = targets.case_names()
        started = targets.start()
    suites = args.suite or list(peerlib.WORKLOADS)
    if cases:  # the suites that hold them
        suites = [s for s in suites if any(c.startswith(s + "_") for c in cases)]
    results, status = run_all(args, bench, suites, cases)
    if not results:
        return 1
    print("\n==== combined ====")
    peerlib.print_side_by_side(results)
    print("(2.00x: twice as fast as device 0, 0.50x: half as fast; compare clnet with the "
          "better of\nPyTorch's 1 and 2 threads)")
    slow = slow_blas(results)
    if slow:
        print("\ncompare: warning: the peers ran on %s, not OpenBLAS: their GEMM, conv and CNN "
              "times are\n10-50x too slow. The peers need OpenBLAS: apt-get install -y "
              "libopenblas0-pthread\n(or docs/bench.md's LD_LIBRARY_PATH workaround)" % slow,
              file=sys.stderr)
    if args.json:
        peerlib.write_json(args.json, results)
    if args.csv:
        peerlib.write_csv(args.csv, results)
    if args.targets:
        print("\n==== targets ====")
        info = targets.machine_info(bench, peer_python(), results, started)
        targets.print_table(results, info)
    return status


if __name__ == "__main__":
    sys.exit(main())
