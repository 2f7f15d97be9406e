#!/usr/bin/env python3
"""clnet tests — ONNX Runtime on the models clnet writes.

Usage: test-onnx-export-ort.py CLNET_TESTS SOURCE_ROOT. Runs the Check suite
onnx-export with CLNET_ONNX_EXPORT_DIR set, so that each of its models
leaves NAME.onnx, NAME.in.npy and clnet's outputs NAME.out<k>.npy; then runs
every model with ONNX Runtime's CPU provider (tools/peers/ort_run.py) and
compares: the largest error relative to the largest output must stay under
1e-5 (float32 on both sides, different kernels).

Debian's python has no onnxruntime: on first use this makes a virtual
environment with it from PyPI (CLNET_ORT_VENV, default
~/.cache/clnet/onnxruntime-venv) and re-runs itself there. Exit 77 (meson:
skipped) with a message only when PyPI cannot be reached.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

VENV = os.environ.get("CLNET_ORT_VENV") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clnet", "onnxruntime-venv")
OFFLINE_SIGNS = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                 "ConnectTimeout", "Max retries exceeded", "No matching distribution found",
                 "Could not find a version")
REL_MAX = 1e-5


def ensure_venv():
    """Re-executes this script inside a virtual environment with onnxruntime."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    py = os.path.join(VENV, "bin", "python")
    have = os.path.exists(py) and subprocess.run(
        [py, "-c", "import onnxruntime, numpy"], capture_output=True).returncode == 0
    if not have:
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        r = subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet", "onnxruntime",
                            "numpy<2"], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            out = r.stdout + r.stderr
            if any(s in out for s in OFFLINE_SIGNS):
                print("SKIP: PyPI is unreachable, so onnxruntime cannot be installed into %s:\n%s"
                      % (VENV, out[-2000:]))
                sys.exit(77)
            sys.exit("pip install onnxruntime failed:\n" + out)
    os.execv(py, [py] + sys.argv)


def main():
    runner, root = sys.argv[1], sys.argv[2]
    ensure_venv()
    import numpy as np
    sys.path.insert(0, os.path.join(root, "tools", "peers"))
    import ort_run

    with tempfile.TemporaryDirectory(prefix="clnet-onnx-ort.") as d:
        env = dict(os.environ, CLNET_ONNX_EXPORT_DIR=d)
        r = subprocess.run([runner, "onnx-export"], env=env)
        if r.returncode != 0:
            sys.exit("the onnx-export suite failed (exit %d)" % r.returncode)
        models = sorted(glob.glob(os.path.join(d, "*.onnx")))
        if len(models) < 7:
            sys.exit("expected 7 models in %s, found %d" % (d, len(models)))
        bad = 0
        for path in models:
            name = os.path.basename(path)[:-5]
            x = np.load(os.path.join(d, name + ".in.npy"))
            _, outs = ort_run.run(path, [x])
            for k, got in enumerate(outs):
                want = np.load(os.path.join(d, "%s.out%d.npy" % (name, k)))
                if got.shape != want.shape:
                    print("FAIL %s output %d: shape %s, clnet's %s" % (name, k, got.shape, want.shape))
                    bad += 1
                    continue
                scale = max(float(np.abs(want).max()), 1.0e-30)
                rel = float(np.abs(got.astype(np.float64) - want).max()) / scale
                ok = rel <= REL_MAX
                bad += not ok
                print("%s %s output %d %s: relative error %.3g" % ("ok  " if ok else "FAIL", name, k,
                                                                   list(want.shape), rel))
        if bad:
            sys.exit("%d outputs differ from ONNX Runtime's" % bad)


if __name__ == "__main__":
    main()
