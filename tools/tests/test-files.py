#!/usr/bin/env python3
"""tools-files: every path clnet-train and clnet-bench read or write, given a
special file (FIFO, device node, directory, symlink to a device, a missing
directory), is refused up front with a message naming the option, quickly,
and the special file is left as it was; killed saves' stale temporary files
are cleaned up; a dataset whose images are not 28x28 is refused with the
file and the shapes; the install hint shows only when the data is missing.

    usage: test-files.py path/to/clnet-train path/to/clnet-bench
"""
import os
import stat
import struct
import subprocess
import sys
import tempfile
import time

TRAIN, BENCH = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("tools-files: FAIL:", what, flush=True)


def run(args, timeout=120):
    """(status, stdout + stderr); a run past the timeout is a failure (-999)."""
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True, cwd=tmp)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired:
        return -999, "(timed out after %d s)" % timeout


def write_idx(d, split, n, rows, cols, labels=None):
    """An MNIST-style split of n images rows x cols (and labels, n unless given)."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, split + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, rows, cols))
        f.write(bytes((i * 37) % 256 for i in range(n * rows * cols)))
    with open(os.path.join(d, split + "-labels-idx1-ubyte"), "wb") as f:
        m = n if labels is None else labels
        f.write(struct.pack(">II", 0x801, m))
        f.write(bytes(i % 10 for i in range(m)))


def dataset(d, rows=28, cols=28):
    write_idx(d, "train", 64, rows, cols)
    write_idx(d, "t10k", 32, rows, cols)
    return d


def kind(path):
    try:
        m = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    return ("fifo" if stat.S_ISFIFO(m) else "chr" if stat.S_ISCHR(m) else
            "dir" if stat.S_ISDIR(m) else "link" if stat.S_ISLNK(m) else
            "file" if stat.S_ISREG(m) else "other")


tmp = tempfile.mkdtemp(prefix="tools-files-")
data = dataset(os.path.join(tmp, "data"))
quick = ["--epochs", "1", "--batch-size", "32", "--quiet", "--data", data]
bench = ["--case", "gemm_m32n676k9", "--quick", "--reps", "1", "--no-peak"]


def specials(tag, suffix=""):
    """Special files to hand a tool: (name, argument, the file's path, its
    kind). The files are named argument + suffix. Never a system path: the
    device is a private node made with mknod (a broken tool replaces that,
    not /dev/null); without the right to make one that case is skipped."""
    d = os.path.join(tmp, tag)
    os.makedirs(d)
    out = []

    def add(name, base, make, k):
        make(os.path.join(d, base) + suffix)
        out.append((name, os.path.join(d, base), os.path.join(d, base) + suffix, k))

    add("FIFO", "fifo", os.mkfifo, "fifo")
    add("directory", "dir", os.mkdir, "dir")
    add("dangling symlink", "dangling", lambda p: os.symlink(p + "-nothing", p), "link")
    try:
        add("device", "null", lambda p: os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3)), "chr")
        node = out[-1][2]
        add("symlink to a device", "link", lambda p: os.symlink(node, p), "link")
    except PermissionError:
        print("tools-files: cannot mknod here: the device cases are skipped")
    out.append(("missing directory", os.path.join(d, "no-such-dir", "f"), None, "missing"))
    out.append(("empty path", "", None, None))
    return out


# ---- Output paths ----------------------------------------------------------
# (label, command with {} for the path, the option the message must name)
writers = [
    ("cnn --save", [TRAIN, "cnn"] + quick + ["--save", "{}"], "--save"),
    ("lstm --save", [TRAIN, "lstm"] + quick + ["--save", "{}"], "--save"),
    ("cnn --save-onnx", [TRAIN, "cnn"] + quick + ["--save-onnx", "{}"], "--save-onnx"),
    ("gan --save-onnx", [TRAIN, "gan"] + quick + ["--save-onnx", "{}", "--out",
                                                  os.path.join(tmp, "g.png")], "--save-onnx"),
    ("gan --save", [TRAIN, "gan"] + quick + ["--save", "{}", "--out", os.path.join(tmp, "g.png")],
     "--save"),
    ("gan --checkpoint", [TRAIN, "gan"] + quick + ["--checkpoint", "{}", "--out",
                                                   os.path.join(tmp, "g.png")], "--checkpoint"),
    # --out FILE.png writes FILE-epochNN.png: the special file is epoch 1's.
    ("gan --out (training grids)", [TRAIN, "gan"] + quick + ["--out", "{}"], "--out"),
    ("bench --json", [BENCH] + bench + ["--json", "{}"], "--json"),
    ("bench --csv", [BENCH] + bench + ["--csv", "{}"], "--csv"),
    ("bench --plot", [BENCH] + bench + ["--plot", "{}"], "--plot"),
    ("bench --plot-data", [BENCH] + bench + ["--plot-data", "{}"], "--plot-data"),
]
for label, cmd, option in writers:
    grids = "grids" in label
    for name, arg, path, k in specials(label.replace(" ", "_").replace("-", ""),
                                       "-epoch01.png" if grids else ""):
        t0 = time.time()
        rc, out = run([a.replace("{}", arg + (".png" if grids and arg else "")) for a in cmd])
        secs = time.time() - t0
        what = "%s onto a %s (%s)" % (label, name, path)
        check(rc == 2, "%s: exit %d, expected 2\n%s" % (what, rc, out[-600:]))
        check(option in out, "%s: the message does not name %s:\n%s" % (what, option, out[-600:]))
        check("epoch 1/" not in out and "device 0 " not in out,
              "%s: refused only after the work:\n%s" % (what, out[-600:]))
        if path:
            check(kind(path) == k, "%s: the %s is now a %s" % (what, name, kind(path)))
        check(secs < 60, "%s: took %.0f s" % (what, secs))

# The sample grid of a saved generator, and the GAN's FILE.d.
gen = os.path.join(tmp, "gen.st")
rc, out = run([TRAIN, "gan"] + quick + ["--save", gen, "--out", os.path.join(tmp, "g.png")])
check(rc == 0 and os.path.exists(gen + ".d"), "gan training failed: %d\n%s" % (rc, out[-800:]))
for name, arg, path, k in specials("sample"):
    rc, out = run([TRAIN, "gan", "--load", gen, "--sample", "4", "--out", arg])
    check(rc == 2 and "--out" in out, "gan --sample --out %s: exit %d\n%s" % (name, rc, out[-400:]))
    if path:
        check(kind(path) == k, "gan --sample --out onto a %s: now a %s" % (name, kind(path)))
fifo_d = os.path.join(tmp, "gd")
os.mkfifo(fifo_d + ".d")
rc, out = run([TRAIN, "gan"] + quick + ["--save", fifo_d, "--out", os.path.join(tmp, "g.png")])
check(rc == 2 and kind(fifo_d + ".d") == "fifo", "gan --save whose FILE.d is a FIFO: exit %d" % rc)

# A symlink to a regular file: written through; the link stays a link.
target = os.path.join(tmp, "target.json")
with open(target, "w") as f:
    f.write("old")
link = os.path.join(tmp, "link.json")
os.symlink(target, link)
rc, out = run([BENCH] + bench + ["--json", link])
check(rc == 0 and kind(link) == "link" and open(target).read().startswith("["),
      "bench --json through a symlink: exit %d, link now %s" % (rc, kind(link)))
wlink = os.path.join(tmp, "w-link.st")
os.symlink(os.path.join(tmp, "w-target.st"), wlink)
with open(os.path.join(tmp, "w-target.st"), "w") as f:
    f.write("old")
rc, out = run([TRAIN, "cnn"] + quick + ["--save", wlink])
check(rc == 0 and kind(wlink) == "link" and os.path.getsize(os.path.join(tmp, "w-target.st")) > 3,
      "cnn --save through a symlink: exit %d, link now %s\n%s" % (rc, kind(wlink), out[-400:]))

# The numpy peer (tools/peers) checks and writes the same way, when numpy is
# there (Debian's python3-numpy, with /usr/bin/python3).
peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers", "peer_numpy.py")
if run(["/usr/bin/python3", "-c", "import numpy"])[0] == 0:
    pargs = ["/usr/bin/python3", peer, "--quick", "--case", "gemm_m32n676k9", "--reps", "1"]
    for option in ["--json", "--csv"]:
        for name, arg, path, k in specials("peer" + option):
            rc, out = run(pargs + [option, arg])
            check(rc == 2 and option in out, "peer_numpy %s onto a %s: exit %d\n%s"
                  % (option, name, rc, out[-400:]))
            if path:
                check(kind(path) == k, "peer_numpy %s onto a %s: now a %s" % (option, name,
                                                                            kind(path)))
    rc, out = run(pargs + ["--json", link])
    check(rc == 0 and kind(link) == "link" and "numpy" in open(target).read(),
          "peer_numpy --json through a symlink: exit %d\n%s" % (rc, out[-400:]))
else:
    print("tools-files: no numpy for /usr/bin/python3: the peer's cases are skipped")

# ---- Input paths -----------------------------------------------------------
readers = [
    ("cnn --load", [TRAIN, "cnn"] + quick + ["--load", "{}"], "--load"),
    ("gan --load --sample", [TRAIN, "gan", "--load", "{}", "--sample", "4",
                             "--out", os.path.join(tmp, "s.png")], "--load"),
    ("gan --score", [TRAIN, "gan", "--load", gen, "--eval-only", "--data", data, "--score", "{}"],
     "--score"),
]
for label, cmd, option in readers:
    for name, arg, path, k in specials("in-" + label.replace(" ", "_").replace("-", "")):
        rc, out = run([a.replace("{}", arg) for a in cmd], timeout=60)
        what = "%s from a %s" % (label, name)
        check(rc == 2 and option in out, "%s: exit %d\n%s" % (what, rc, out[-400:]))
        if path:
            check(kind(path) == k, "%s: the %s is now a %s" % (what, name, kind(path)))
# A generator whose FILE.d is a FIFO.
gfifo = os.path.join(tmp, "gfifo.st")
with open(gen, "rb") as src, open(gfifo, "wb") as dst:
    dst.write(src.read())
os.mkfifo(gfifo + ".d")
rc, out = run([TRAIN, "gan"] + quick + ["--load", gfifo], timeout=60)
check(rc != 0 and rc != -999 and gfifo + ".d" in out, "gan --load with FILE.d a FIFO: exit %d" % rc)
# Each data file as a FIFO, a directory, a device.
for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
          "t10k-labels-idx1-ubyte"]:
    for name in ["FIFO", "directory", "device"]:
        d = dataset(os.path.join(tmp, "special-data-" + f + name))
        p = os.path.join(d, f)
        os.unlink(p)
        {"FIFO": os.mkfifo, "directory": os.mkdir,
         "device": lambda q: os.symlink("/dev/zero", q)}[name](p)  # only read
        rc, out = run([TRAIN, "cnn"] + quick + ["--data", d], timeout=60)
        check(rc == 1 and f in out and "apt-get" not in out,
              "--data with %s a %s: exit %d\n%s" % (f, name, rc, out[-400:]))

# ---- Stale temporary files of killed saves -----------------------------------
save = os.path.join(tmp, "stale", "w.st")
os.makedirs(os.path.dirname(save))
old = time.time() - 7200
dead = save + ".tmp-2147483646-1a"          # no such PID: removed
fresh = save + ".tmp-2147483646-2b"         # no such PID, but written just now: kept
alive = save + ".tmp-%d-3c" % os.getpid()   # a live writer: kept
other = os.path.join(os.path.dirname(save), "x.st.tmp-2147483646-4d")  # another file's: kept
for p in [dead, fresh, alive, other]:
    with open(p, "w") as f:
        f.write("partial")
for p in [dead, alive, other]:
    os.utime(p, (old, old))
rc, out = run([TRAIN, "cnn"] + quick + ["--save", save])
check(rc == 0, "cnn --save: exit %d\n%s" % (rc, out[-400:]))
check(not os.path.exists(dead), "a dead writer's old temporary file was not removed")
check(all(os.path.exists(p) for p in [fresh, alive, other]),
      "a temporary file of a live writer, a recent one or another file's was removed")
left = [n for n in os.listdir(os.path.dirname(save)) if ".tmp-%d" % os.getpid() not in n
        and n not in {os.path.basename(p) for p in [fresh, other, save]}]
check(not left, "files left next to the save: %s" % left)

# ---- Dataset geometry and messages -----------------------------------------
small = dataset(os.path.join(tmp, "20x20"), 20, 20)
for model in ["cnn", "lstm", "rnn", "gan"]:
    rc, out = run([TRAIN, model] + quick + ["--data", small])
    check(rc == 1 and "train-images-idx3-ubyte" in out and "20x20" in out and "28x28" in out
          and "apt-get" not in out,
          "%s on 20x20 images: exit %d (expected 1, naming the file and shapes)\n%s"
          % (model, rc, out[-400:]))
wide = os.path.join(tmp, "28x30")
write_idx(wide, "train", 64, 28, 28)
write_idx(wide, "t10k", 32, 28, 30)
rc, out = run([TRAIN, "cnn"] + quick + ["--data", wide])
check(rc == 1 and "t10k-images-idx3-ubyte" in out and "28x30" in out,
      "cnn with 28x30 test images: exit %d\n%s" % (rc, out[-400:]))
counts = os.path.join(tmp, "counts")
write_idx(counts, "train", 64, 28, 28, labels=60)
write_idx(counts, "t10k", 32, 28, 28)
rc, out = run([TRAIN, "cnn"] + quick + ["--data", counts])
check(rc == 1 and "apt-get" not in out, "64 images, 60 labels: exit %d\n%s" % (rc, out[-400:]))
corrupt = dataset(os.path.join(tmp, "corrupt"))
with open(os.path.join(corrupt, "train-images-idx3-ubyte"), "r+b") as f:
    f.write(b"\x00\x00\x09\x09")
rc, out = run([TRAIN, "cnn"] + quick + ["--data", corrupt])
check(rc == 1 and "apt-get" not in out, "a corrupt image file: exit %d\n%s" % (rc, out[-400:]))
rc, out = run([TRAIN, "cnn"] + quick + ["--data", os.path.join(tmp, "nothing")])
check(rc == 1 and "train-images-idx3-ubyte" in out, "a missing data directory: exit %d\n%s"
      % (rc, out[-400:]))

# ---- --epochs 0 evaluates ----------------------------------------------------
w = os.path.join(tmp, "eval.st")
rc, out = run([TRAIN, "cnn"] + quick + ["--save", w])
rc0, out0 = run([TRAIN, "cnn"] + quick + ["--load", w, "--epochs", "0"])
rce, oute = run([TRAIN, "cnn"] + quick + ["--load", w, "--eval-only"])
acc = [line for line in out.splitlines() if line.startswith("test accuracy")]
acc0 = [line for line in out0.splitlines() if line.startswith("test accuracy")]
acce = [line for line in oute.splitlines() if line.startswith("test accuracy")]
check(rc == rc0 == rce == 0 and acc0 and acc0 == acce == acc,
      "--epochs 0 should print the loaded weights' test accuracy: %s vs --eval-only %s, trained %s"
      % (acc0, acce, acc))

if failures:
    print("tools-files: %d failures" % len(failures))
    sys.exit(1)
subprocess.run(["rm", "-rf", tmp])
print("tools-files: ok")
