#!/usr/bin/python3
"""numpy (OpenBLAS) on clnet-bench's GEMM workloads: the CPU BLAS peer.

Runs every gemm case of clnet-bench (same names, shapes and formulas) with
numpy.matmul into a preallocated float32 output, and prints the same table
and JSON/CSV schema as clnet-bench, device "numpy-openblas" (or "numpy-
refblas" etc.: the BLAS actually loaded, with a warning when it is not
OpenBLAS). Debian's /usr/bin/python3 has numpy; see docs/bench.md.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

import numpy as np  # noqa: E402


def run_gemm(w, reps, quick):
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (w["m"], w["k"])).astype(np.float32)
    b = rng.uniform(-1, 1, (w["k"], w["n"])).astype(np.float32)
    c = np.empty((w["m"], w["n"]), dtype=np.float32)
    return peerlib.measure(lambda: np.matmul(a, b, out=c), reps, quick)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    peerlib.common_args(p, ["gemm"])
    args = p.parse_args()
    peerlib.check_outputs("peer_numpy.py", args)
    reps = args.reps or (5 if args.quick else 10)
    np.ones((2, 2), np.float32) @ np.ones((2, 2), np.float32)  # loads the BLAS
    blas = peerlib.loaded_blas()
    device = "numpy-" + blas
    version = "numpy " + np.__version__
    rs = []
    for w in peerlib.select(args.suite or ["gemm"], args.quick, args.case):
        try:
            rs.append(peerlib.result(device, w, run_gemm(w, reps, args.quick), version=version))
        except Exception as e:  # report, do not stop the other cases
            rs.append(peerlib.result(device, w, error=repr(e), version=version))
        print("  %s %s done" % (device, w["name"]), file=sys.stderr)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return peerlib.finish(args, rs, "peer numpy %s (%s, OPENBLAS_NUM_THREADS=%s)" %
                          (np.__version__, device, threads), peerlib.blas_warning(blas))


if __name__ == "__main__":
    sys.exit(main())
