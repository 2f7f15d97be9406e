#!/usr/bin/python3
"""Checks docs/weights.md against the code: the PyTorch recipes there load
the files clnet saves for the README's models (cnn, lstm, rnn), and PyTorch's
weights saved with the recipes load back into clnet.

For each model: clnet-train trains briefly and saves; this script reads the
file's header with json (no safetensors package needed), checks the tensor
names, shapes and the metadata against what docs/weights.md says, loads the
tensors into the documented PyTorch module with load_state_dict(strict=True),
and compares PyTorch's test accuracy with clnet's. Then it writes the
PyTorch module's weights with the reverse recipe, has clnet-train evaluate
that file, and compares again. A wrong name, layout or gate order makes
PyTorch's accuracy collapse to chance on one side or the other.

Also: Conv2DTranspose 'same' padding (clnet_conv2d_transpose_params_set_same
and clnet_conv2d_transpose_forward, called through ctypes) against
torch.nn.functional.conv_transpose2d in the form docs/weights.md gives, for
kernels 1..5, strides 1..3 and dilations 1 and 2.

usage: tools/weights-check.py [BUILD_DIR]   (default: build; needs
/usr/share/datasets/fashion-mnist and Debian's python3-torch)
"""

import gzip
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import torch

DATA = "/usr/share/datasets/fashion-mnist"


# ---- safetensors without the safetensors package --------------------------------

def read_safetensors(path):
    """{name: float32 tensor}, metadata: the layout of docs/weights.md."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32)
        out[name] = t.reshape(e["shape"]) if e["shape"] else t.reshape(())
    return out, meta


def write_safetensors(path, tensors, metadata):
    """The writer's layout: header padded with spaces to a multiple of 8."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        b = t.detach().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- the recipes of docs/weights.md ------------------------------------------

class Cnn(torch.nn.Sequential):
    """The README's CNN as nn.Sequential: clnet's layer indices are its own."""

    def __init__(self):
        super().__init__(
            torch.nn.Conv2d(1, 32, 3),     # 0: layers.0.kernel (32, 1, 3, 3), layers.0.bias
            torch.nn.MaxPool2d(2),         # 1  (relu is fused into layer 0 in clnet)
            torch.nn.Conv2d(32, 64, 3),    # 2: layers.2.kernel (64, 32, 3, 3), layers.2.bias
            torch.nn.MaxPool2d(2),         # 3
            torch.nn.Flatten(),            # 4
            torch.nn.Linear(1600, 64),     # 5: layers.5.kernel (64, 1600), layers.5.bias
            torch.nn.Linear(64, 10),       # 6: layers.6.kernel (10, 64), layers.6.bias
        )

    def forward(self, x):
        x = self[1](torch.relu(self[0](x)))
        x = self[4](self[3](torch.relu(self[2](x))))
        return self[6](torch.relu(self[5](x)))


def cnn_torch_name(name):          # "layers.5.kernel" -> "5.weight"
    _, i, param = name.split(".")
    return f"{i}." + {"kernel": "weight", "bias": "bias"}[param]


def cnn_clnet_name(name):          # "5.weight" -> "layers.5.kernel"
    i, param = name.split(".")
    return f"layers.{i}." + {"weight": "kernel", "bias": "bias"}[param]


class RnnStack(torch.nn.Module):
    """The README's recurrent stack: rnns.<i> is clnet's layer i, head layer 3."""

    def __init__(self, cell):
        super().__init__()
        make = torch.nn.LSTM if cell == "lstm" else torch.nn.RNN
        self.rnns = torch.nn.ModuleList(make(28 if i == 0 else 64, 64, batch_first=True)
                                        for i in range(3))
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x):          # x (N, 28 steps, 28 features)
        for rnn in self.rnns:
            x, _ = rnn(x)
        return self.head(x[:, -1])


def rnn_torch_state(state):
    """clnet names -> RnnStack's; a single "bias" (Keras's) becomes bias_ih_l0
    with bias_hh_l0 = 0."""
    out = {}
    for name, t in state.items():
        _, i, param = name.split(".")
        if i == "3":
            out["head." + {"kernel": "weight", "bias": "bias"}[param]] = t
        elif param == "bias":
            out[f"rnns.{i}.bias_ih_l0"] = t
            out[f"rnns.{i}.bias_hh_l0"] = torch.zeros_like(t)
        else:
            out[f"rnns.{i}.{param}_l0"] = t
    return out


def rnn_clnet_state(state):
    out = {}
    for name, t in state.items():
        if name.startswith("head."):
            out["layers.3." + {"weight": "kernel", "bias": "bias"}[name.split(".")[1]]] = t
        else:
            _, i, param = name.split(".")
            out[f"layers.{i}.{param[:-3]}"] = t   # weight_ih_l0 -> weight_ih
    return out


# ---- checks ---------------------------------------------------------------------

def load_test_set():
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        x = torch.frombuffer(bytearray(f.read()[16:]), dtype=torch.uint8).float() / 255.0
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        y = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()
    return x.reshape(-1, 28, 28), y


def torch_accuracy(model, x, y, images):
    with torch.no_grad():
        inp = x.unsqueeze(1) if images else x
        pred = torch.cat([model(inp[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return (pred == y).float().mean().item()


def clnet_train(build, args):
    exe = os.path.join(build, "tools", "clnet-train")
    out = subprocess.run([exe] + args + ["--quiet"], capture_output=True, text=True, check=True)
    m = re.search(r"test accuracy: ([0-9.]+)", out.stdout)
    assert m, out.stdout
    return float(m.group(1))


EXPECTED = {
    "cnn": {"layers.0.kernel": (32, 1, 3, 3), "layers.0.bias": (32,),
            "layers.2.kernel": (64, 32, 3, 3), "layers.2.bias": (64,),
            "layers.5.kernel": (64, 1600), "layers.5.bias": (64,),
            "layers.6.kernel": (10, 64), "layers.6.bias": (10,)},
}
for cell, g in (("lstm", 4), ("rnn", 1)):
    EXPECTED[cell] = {"layers.3.kernel": (10, 64), "layers.3.bias": (10,)}
    for i in range(3):
        EXPECTED[cell].update({f"layers.{i}.weight_ih": (g * 64, 28 if i == 0 else 64),
                               f"layers.{i}.weight_hh": (g * 64, 64),
                               f"layers.{i}.bias_ih": (g * 64,),
                               f"layers.{i}.bias_hh": (g * 64,)})


def check_model(build, tmp, kind, x, y):
    saved = os.path.join(tmp, kind + ".safetensors")
    acc_clnet = clnet_train(build, [kind, "--epochs", "1", "--limit", "2048", "--save", saved])
    state, meta = read_safetensors(saved)
    assert set(meta) == {"format", "clnet_version"} and meta["format"] == "pt", meta
    got = {k: tuple(v.shape) for k, v in state.items()}
    assert got == EXPECTED[kind], (kind, got)
    if kind == "cnn":
        model = Cnn()
        model.load_state_dict({cnn_torch_name(k): v for k, v in state.items()}, strict=True)
    else:
        model = RnnStack(kind)
        model.load_state_dict(rnn_torch_state(state), strict=True)
    acc_torch = torch_accuracy(model, x, y, kind == "cnn")
    print(f"{kind}: clnet saved, test accuracy clnet {acc_clnet:.4f}, PyTorch {acc_torch:.4f}")
    assert acc_clnet > 0.3, "too little training to tell a right mapping from a wrong one"
    assert abs(acc_clnet - acc_torch) <= 2e-4, (acc_clnet, acc_torch)
    # And back: PyTorch's state, written with the reverse recipe, in clnet.
    sd = model.state_dict()
    back = {cnn_clnet_name(k): v for k, v in sd.items()} if kind == "cnn" else rnn_clnet_state(sd)
    from_torch = os.path.join(tmp, kind + "-from-torch.safetensors")
    write_safetensors(from_torch, back, {"format": "pt"})
    acc_back = clnet_train(build, [kind, "--load", from_torch, "--eval-only"])
    print(f"{kind}: PyTorch saved, test accuracy clnet {acc_back:.4f}")
    assert abs(acc_back - acc_torch) <= 2e-4, (acc_back, acc_torch)


def transpose_same_torch(x, w, b, s, d):
    """docs/weights.md: Keras' Conv2DTranspose 'same' in PyTorch. With the
    kernel's extent e = d (k - 1) + 1 and t = e - s: padding t // 2, then the
    last t % 2 rows and columns dropped; for e < s, output_padding s - e."""
    k = w.shape[-1]
    t = d * (k - 1) + 1 - s
    conv = torch.nn.functional.conv_transpose2d
    y = conv(x, w, b, stride=s, padding=max(t, 0) // 2, output_padding=max(-t, 0), dilation=d)
    return y[..., :x.shape[-2] * s, :x.shape[-1] * s]


def check_transpose_same(build):
    """clnet_conv2d_transpose_forward with clnet_conv2d_transpose_params_set_same
    (what the Conv2DTranspose layer runs) against transpose_same_torch."""
    import ctypes as C
    lib = C.CDLL(os.path.join(build, "src", "libclnet.so"))
    P, I64 = C.c_void_p, C.c_int64

    class Params(C.Structure):
        _fields_ = [(n, C.c_int) for n in ("stride_h", "stride_w", "pad_top", "pad_bottom",
                                          "pad_left", "pad_right", "dilation_h", "dilation_w",
                                          "output_pad_h", "output_pad_w")]

    for name, args in (("clnet_context_create", [P, P, C.c_char_p, C.c_size_t]),
                       ("clnet_tensor_create", [P, C.c_int, C.c_int, P, P]),
                       ("clnet_tensor_upload", [P, P, C.c_size_t]),
                       ("clnet_tensor_download", [P, P, C.c_size_t]),
                       ("clnet_conv2d_transpose_params_set_same", [P, I64, I64, I64, I64]),
                       ("clnet_conv2d_transpose_forward", [P, P, P, P, P])):
        getattr(lib, name).argtypes, getattr(lib, name).restype = args, C.c_int
    lib.clnet_tensor_destroy.argtypes = [P]
    lib.clnet_context_destroy.argtypes = [P]
    lib.clnet_context_errmsg.argtypes, lib.clnet_context_errmsg.restype = [P], C.c_char_p
    ctx, err = P(), C.create_string_buffer(1024)
    assert lib.clnet_context_create(None, C.byref(ctx), err, 1024) == 0, err.value

    def ok(st):
        assert st == 0, lib.clnet_context_errmsg(ctx)

    def tensor(t):
        h, shape = P(), (I64 * t.dim())(*t.shape)
        ok(lib.clnet_tensor_create(ctx, 0, t.dim(), shape, C.byref(h)))
        buf = t.contiguous().numpy()
        ok(lib.clnet_tensor_upload(h, buf.ctypes.data, buf.nbytes))
        return h

    gen = torch.Generator().manual_seed(5)
    cases = 0
    for k in range(1, 6):
        for s in range(1, 4):
            for d in (1, 2):
                x = torch.rand(2, 3, 3, 5, generator=gen) * 2 - 1      # N, K, H, W
                w = torch.rand(3, 2, k, k, generator=gen) * 2 - 1      # K, C, k, k
                b = torch.rand(2, generator=gen) * 2 - 1
                p = Params(s, s, 0, 0, 0, 0, d, d, 0, 0)
                ok(lib.clnet_conv2d_transpose_params_set_same(C.byref(p), 3, 5, k, k))
                want = transpose_same_torch(x, w, b, s, d)
                assert tuple(want.shape) == (2, 2, 3 * s, 5 * s), (k, s, d, want.shape)
                tx, tw, tb = tensor(x), tensor(w), tensor(b)
                y = torch.full(tuple(want.shape), float("nan"))
                ty = tensor(y)
                ok(lib.clnet_conv2d_transpose_forward(C.byref(p), tx, tw, tb, ty))
                yb = y.numpy()
                ok(lib.clnet_tensor_download(ty, yb.ctypes.data, yb.nbytes))
                err_max = (y - want).abs().max().item()
                assert err_max <= 1e-5, (k, s, d, err_max, (p.pad_top, p.pad_bottom,
                                                            p.output_pad_h))
                for h in (tx, tw, tb, ty):
                    lib.clnet_tensor_destroy(h)
                cases += 1
    lib.clnet_context_destroy(ctx)
    print(f"Conv2DTranspose 'same': clnet and the documented PyTorch form agree "
          f"({cases} kernel/stride/dilation cases)")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    x, y = load_test_set()
    check_transpose_same(build)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("cnn", "rnn", "lstm"):
            check_model(build, tmp, kind, x, y)
    print("weights-check: OK")


if __name__ == "__main__":
    main()
