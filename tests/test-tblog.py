#!/usr/bin/env python3
"""clnet tests — TensorBoard's own reader on clnet's event files.

Usage: test-tblog.py TBLOG_WRITE. Runs tests/tblog-write.c's program, which
writes scalars, images, histograms and a fit with the TensorBoard callback
and prints what it wrote; then reads the file with TensorBoard's
EventAccumulator and compares every value, checks the TFRecord framing
(lengths and masked CRC32C) independently, and cuts the file at every byte
of its first records (every kind of summary) and around every record
boundary after: TensorBoard's loader must read exactly the whole records
before the cut.

Debian's python has no tensorboard: on first use this makes a virtual
environment with it from PyPI (CLNET_TB_VENV, default
~/.cache/clnet/tensorboard-venv) and re-runs itself there. Exit 77 (meson:
skipped) with a message only when PyPI cannot be reached.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

VENV = os.environ.get("CLNET_TB_VENV") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clnet", "tensorboard-venv")
OFFLINE_SIGNS = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                 "ConnectTimeout", "Max retries exceeded", "No matching distribution found",
                 "Could not find a version")


def ensure_venv():
    """Re-executes this script inside a virtual environment with tensorboard."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    py = os.path.join(VENV, "bin", "python")
    have = os.path.exists(py) and subprocess.run(
        [py, "-c", "import tensorboard.backend.event_processing.event_accumulator"],
        capture_output=True).returncode == 0
    if not have:
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        r = subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet", "tensorboard"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            out = r.stdout + r.stderr
            if any(s in out for s in OFFLINE_SIGNS):
                print("SKIP: PyPI is unreachable, so the tensorboard package cannot be installed "
                      "into %s:\n%s" % (VENV, out[-2000:]))
                sys.exit(77)
            sys.exit("pip install tensorboard failed:\n" + out)
    os.execv(py, [py] + sys.argv)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_ends(blob):
    """Offsets just past each record, checking lengths and CRCs on the way."""
    ends, at = [], 0
    while at < len(blob):
        assert at + 12 <= len(blob), "a partial record header at %d" % at
        n, = struct.unpack_from("<Q", blob, at)
        lcrc, = struct.unpack_from("<I", blob, at + 8)
        assert lcrc == masked(blob[at:at + 8]), "length CRC at %d" % at
        data = blob[at + 12:at + 12 + n]
        dcrc, = struct.unpack_from("<I", blob, at + 12 + n)
        assert dcrc == masked(data), "data CRC at %d" % at
        at += 16 + n
        ends.append(at)
    return ends


def png_pixels(png):
    """Decodes an 8-bit, non-interlaced PNG: (height, width, channels, bytes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, ihdr = 8, b"", None
    while at < len(png):
        n, kind = struct.unpack_from(">I4s", png, at)
        body = png[at + 8:at + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0
    ch = {0: 1, 2: 3, 6: 4}[ctype]
    raw, stride, out, prev = zlib.decompress(idat), w * ch, bytearray(), bytearray(w * ch)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return h, w, ch, bytes(out)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    ensure_venv()
    from tensorboard.backend.event_processing import event_accumulator, event_file_loader

    writer = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="clnet-tblog-")
    try:
        logdir = os.path.join(tmp, "run")
        r = subprocess.run([writer, logdir, "fit"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        wrote = [json.loads(line) for line in r.stdout.splitlines()]
        path = next(w["path"] for w in wrote if w["kind"] == "file")
        acc = event_accumulator.EventAccumulator(
            logdir, size_guidance={"scalars": 0, "images": 0, "histograms": 0})
        acc.Reload()
        tags = acc.Tags()
        checked = 0

        # Scalars: float32 values at their steps.
        got = [(e.step, e.value) for e in acc.Scalars("test/scalar")]
        want = [(w["step"], w["value"]) for w in wrote if w["kind"] == "scalar"]
        assert got == [(s, f32(v)) for s, v in want], (got, want)
        checked += len(got)

        # Images: the PNG holds the pixels written.
        for w in (w for w in wrote if w["kind"] == "image"):
            ev, = [e for e in acc.Images(w["tag"]) if e.step == w["step"]]
            assert (ev.height, ev.width) == (w["height"], w["width"])
            h, wd, ch, px = png_pixels(ev.encoded_image_string)
            assert (h, wd, ch) == (w["height"], w["width"], w["channels"])
            assert list(px) == w["pixels"], w["tag"]
            checked += 1

        # Histograms: statistics over the finite values, equal-width buckets
        # over [min, max] whose counts match the values.
        hists = {e.step: e.histogram_value for e in acc.Histograms("test/histogram")}
        for w in (w for w in wrote if w["kind"] == "histogram"):
            v = [f32(x) for x in w["values"] if isinstance(x, float) or isinstance(x, int)]
            hv = hists[w["step"]]
            assert hv.num == len(v) and hv.min == min(v) and hv.max == max(v), (hv.num, len(v))
            assert hv.sum == sum(v) and abs(hv.sum_squares - sum(x * x for x in v)) <= 1e-9 * hv.sum_squares
            lim, cnt = list(hv.bucket_limit), list(hv.bucket)
            assert len(lim) == len(cnt) == w["buckets"]
            assert all(a < b for a, b in zip(lim, lim[1:])) and lim[-1] > hv.max
            want = [sum(1 for x in v if (i == 0 or x >= lim[i - 1]) and x < lim[i]) for i in range(len(lim))]
            assert cnt == want, (cnt, want)
            if w["step"] == 4:
                assert lim[:3] == [1, 2, 3] and cnt == [1, 2, 1, 3], (lim, cnt)
            checked += 1

        # The fit: the history's metrics per epoch, batch losses, parameters.
        epochs = [w for w in wrote if w["kind"] == "epoch"]
        assert len(epochs) == 3
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            got = [(e.step, e.value) for e in acc.Scalars("epoch/" + key)]
            assert got == [(w["epoch"], f32(w[key])) for w in epochs], (key, got)
            checked += len(got)
        assert [e.step for e in acc.Scalars("epoch/seconds")] == [1, 2, 3]
        fit = next(w for w in wrote if w["kind"] == "fit")
        steps = [e.step for e in acc.Scalars("batch/loss")]
        assert steps == list(range(fit["every"], fit["steps"] + 1, fit["every"])), steps
        for name, size in (("layers.0.kernel", 24), ("layers.0.bias", 6), ("layers.1.kernel", 12),
                           ("layers.1.bias", 2)):
            hs = acc.Histograms(name)
            assert [h.step for h in hs] == [1, 2, 3] and all(h.histogram_value.num == size for h in hs)
            checked += 3
        assert "test/scalar" in tags["scalars"] and "test/image3" in tags["images"]

        # Framing, independently of TensorBoard; then a cut at every byte.
        blob = open(path, "rb").read()
        ends = record_ends(blob)
        cut_dir = os.path.join(tmp, "cut")
        os.mkdir(cut_dir)
        cut_path = os.path.join(cut_dir, os.path.basename(path))
        # Every byte through the records of every kind written before the
        # fit (file version, scalars, images, histograms); in the fit's
        # records, which repeat those kinds, both sides of every boundary
        # and every 7th byte (all of it with CLNET_TEST_LONG=1).
        before_fit = ends[sum(1 for w in wrote if w["kind"] in ("scalar", "image", "histogram"))]
        step = 1 if os.environ.get("CLNET_TEST_LONG") == "1" else 7
        cuts = set(range(before_fit + 1)) | set(range(before_fit, len(blob) + 1, step))
        cuts |= {c + d for c in ends for d in (-1, 0, 1) if 0 <= c + d <= len(blob)}
        for cut in sorted(cuts):
            with open(cut_path, "wb") as f:
                f.write(blob[:cut])
            n = sum(1 for _ in event_file_loader.EventFileLoader(cut_path).Load())
            whole = sum(1 for e in ends if e <= cut)
            assert n == whole, "cut at %d of %d: read %d events, %d whole records" % (cut, len(blob), n, whole)
        print("tblog: %d values read back by TensorBoard %s; %d records, %d bytes, cut at %d places"
              % (checked, __import__("tensorboard").__version__, len(ends), len(blob), len(cuts)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
