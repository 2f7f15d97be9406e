#!/usr/bin/env python3
"""tools-fulldisk: every output file of clnet-train and clnet-bench, written
onto a full file system (a small tmpfs filled up), fails with a message
saying "No space left on device", leaves the old file byte for byte as it
was and leaves no temporary file behind; the GAN's checkpoint is written
before the grid that cannot be. Needs root (mount); skipped (77) otherwise.

    usage: test-fulldisk.py path/to/clnet-train path/to/clnet-bench
"""
import errno
import os
import struct
import subprocess
import sys
import tempfile

TRAIN, BENCH = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
tmp = tempfile.mkdtemp(prefix="tools-fulldisk-")
mnt = os.path.join(tmp, "mnt")
os.mkdir(mnt)
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                  stderr=subprocess.DEVNULL).returncode != 0:
    print("tools-fulldisk: cannot mount a tmpfs (not root?): skipped")
    os.rmdir(mnt)
    os.rmdir(tmp)
    sys.exit(77)

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("tools-fulldisk: FAIL:", what, flush=True)


def run(args):
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180,
                           text=True, cwd=tmp)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired:
        return -999, "(timed out)"


def fill():
    """Fills the tmpfs to the last page."""
    with open(os.path.join(mnt, "filler"), "wb", buffering=0) as f:
        for size in [65536, 4096, 1]:
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise


def unfill():
    os.unlink(os.path.join(mnt, "filler"))


data = os.path.join(tmp, "data")
os.mkdir(data)
for split, n in [("train", 64), ("t10k", 32)]:
    with open(os.path.join(data, split + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes((i * 7) % 256 for i in range(n * 784)))
    with open(os.path.join(data, split + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
quick = ["--epochs", "1", "--batch-size", "32", "--quiet", "--data", data]
bench = ["--case", "gemm_m32n676k9", "--quick", "--reps", "1", "--no-peak"]
gen = os.path.join(tmp, "gen.st")
rc, out = run([TRAIN, "gan"] + quick + ["--save", gen, "--out", os.path.join(tmp, "g.png")])
check(rc == 0, "training the generator: exit %d\n%s" % (rc, out[-600:]))

# (label, command, the files on the tmpfs it replaces)
cases = [
    ("cnn --save", [TRAIN, "cnn"] + quick + ["--save", mnt + "/w.st"], ["w.st"]),
    ("lstm --save", [TRAIN, "lstm"] + quick + ["--save", mnt + "/l.st"], ["l.st"]),
    ("gan --save", [TRAIN, "gan"] + quick + ["--save", mnt + "/g.st", "--out", tmp + "/x.png"],
     ["g.st", "g.st.d"]),
    ("gan training grid", [TRAIN, "gan"] + quick + ["--save", tmp + "/ckpt.st", "--out",
                                                     mnt + "/grid.png"], ["grid-epoch01.png"]),
    ("gan --sample", [TRAIN, "gan", "--load", gen, "--sample", "16", "--out", mnt + "/s.png"],
     ["s.png"]),
    ("bench --json", [BENCH] + bench + ["--json", mnt + "/b.json"], ["b.json"]),
    ("bench --csv", [BENCH] + bench + ["--csv", mnt + "/b.csv"], ["b.csv"]),
    ("bench --plot", [BENCH] + bench + ["--plot", mnt + "/b.png"], ["b.png"]),
    ("bench --plot SVG", [BENCH] + bench + ["--plot", mnt + "/b.svg"], ["b.svg"]),
]
try:
    for label, cmd, names in cases:
        old = {}
        for n in names:
            old[n] = ("the old %s, which a failed write must leave as it is\n" % n).encode()
            with open(os.path.join(mnt, n), "wb") as f:
                f.write(old[n])
        fill()
        rc, out = run(cmd)
        unfill()
        check(rc > 0, "%s on a full disk: exit %d\n%s" % (label, rc, out[-600:]))
        check("No space left on device" in out,
              "%s on a full disk: the message does not say so:\n%s" % (label, out[-600:]))
        for n in names:
            with open(os.path.join(mnt, n), "rb") as f:
                check(f.read() == old[n], "%s: the old %s was changed" % (label, n))
        left = sorted(set(os.listdir(mnt)) - set(names))
        check(not left, "%s: left behind: %s" % (label, left))
        if label == "gan training grid":
            check(os.path.exists(tmp + "/ckpt.st") and os.path.exists(tmp + "/ckpt.st.d"),
                  "the GAN wrote no checkpoint before the grid that failed")
        for n in names:
            os.unlink(os.path.join(mnt, n))
finally:
    subprocess.run(["umount", mnt])
if failures:
    print("tools-fulldisk: %d failures" % len(failures))
    sys.exit(1)
subprocess.run(["rm", "-rf", tmp])
print("tools-fulldisk: ok")
