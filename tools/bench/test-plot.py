#!/usr/bin/env python3
"""bench-plot: clnet-bench's plot from made-up results (tools/bench/test-plot.c).

  test-plot.py path/to/bench-plot-writer

The numbers drawn (--plot-data) are the ones the results imply: GFLOP/s =
flops / ms / 1e6, each device's speed-up over device 0 = device 0's time /
its time (0.25 and 10 here), a failed --check is "fail" and draws no bar.
The picture is a whole PNG, SVG or PDF of the canvas' width (1200), and the
PNG and SVG have the same size.
"""
import csv
import os
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

writer = sys.argv[1]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("bench-plot: FAIL: " + what)


def close(a, b):
    return abs(a - b) <= 1e-6 * abs(b)


with tempfile.TemporaryDirectory() as tmp:
    sizes = {}
    for ext in ("png", "svg", "pdf"):
        pic, data = os.path.join(tmp, "p." + ext), os.path.join(tmp, ext + ".csv")
        r = subprocess.run([writer, pic, data], capture_output=True, text=True)
        check(r.returncode == 0, "%s: exit %d: %s" % (ext, r.returncode, r.stderr))
        if r.returncode:
            continue
        with open(pic, "rb") as f:
            head = f.read()
        if ext == "png":
            check(head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", "p.png is not a PNG")
            sizes[ext] = struct.unpack(">II", head[16:24])
            check(head.endswith(b"IEND\xaeB`\x82"), "p.png is cut short")
        elif ext == "svg":
            root = ET.fromstring(head)
            check(root.tag.endswith("svg"), "p.svg's root is %s" % root.tag)
            num = lambda v: float(v.rstrip("pt"))
            sizes[ext] = (num(root.get("width")), num(root.get("height")))
        else:
            check(head[:5] == b"%PDF-" and head.rstrip().endswith(b"%%EOF"), "p.pdf is not a whole PDF")
        with open(data) as f:
            rows = list(csv.DictReader(f))
        got = {(r["panel"], r["case"], int(r["device"])): r["value"] for r in rows}
        want = {}
        ms0 = {"gemm_N1024": 2.0, "conv_Small": 1.0, "relu_GB": 0.5, "pool_Checked": 0.25}
        flops = {"gemm_N1024": 2e9, "conv_Small": 1e6, "pool_Checked": 3e7}
        factor = [1, 4, 0.1]
        for case, t in ms0.items():
            for d in range(3):
                failed = case == "pool_Checked" and d == 2
                if case in flops:
                    want[("gflops", case, d)] = "fail" if failed else flops[case] / (t * factor[d]) / 1e6
                else:
                    want[("gbps", case, d)] = 4e6 / (t * factor[d]) / 1e6
                if d:
                    want[("speedup", case, d)] = "fail" if failed else 1 / factor[d]
        check(set(got) == set(want), "%s: rows %s, expected %s" % (ext, sorted(got), sorted(want)))
        for k, v in want.items():
            g = got.get(k)
            ok = g == v if isinstance(v, str) else g not in (None, "", "fail") and close(float(g), v)
            check(ok, "%s: %s is %s, expected %s" % (ext, k, g, v))
    check(sizes.get("png", (0,))[0] == 1200, "PNG width %s, expected 1200" % (sizes.get("png"),))
    check(sizes.get("png") == tuple(int(v) for v in sizes.get("svg", (0, 0))),
          "PNG %s and SVG %s differ in size" % (sizes.get("png"), sizes.get("svg")))
print("bench-plot: %s" % ("%d failures" % len(failures) if failures else "ok"))
sys.exit(1 if failures else 0)
