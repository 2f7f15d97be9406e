#!/usr/bin/python3
"""Exports the ONNX models tests/test-onnx.c reads, with random weights in
eval mode, and writes what the C test must find in each (expect.txt):

  model NAME FILE NODES
  ops NAME OP OP ...            (the op types in node order)
  init NAME TENSOR D0xD1x... V0 V1 V2 VLAST   (first three values and the last)

Models: the reference CNN (tools/models.c: Conv 32 3x3, ReLU, MaxPool 2,
Conv 64 3x3, ReLU, MaxPool 2, Flatten, Dense 64 ReLU, Dense 10 softmax) and
a 3-layer LSTM(64) with a Dense(10) head, both from torch.onnx.export, and a
Gemm model whose weight lives in a side file (external data), written with
the small protobuf encoder below: torch 1.13 writes external data only for
models over 2 GiB. Needs only Debian's python3-torch (no onnx package).

Usage: export.py OUTDIR
"""
import os
import struct
import sys
import warnings

import torch
from torch import nn


def tensor_values(t):
    flat = t.detach().reshape(-1)
    return [float(flat[0]), float(flat[1]), float(flat[2]), float(flat[-1])]


def record(out, name, fname, onnx_path, params):
    """Reads back the node list with our own decoder (no onnx package)."""
    ops = [n for n in read_op_types(open(onnx_path, 'rb').read())]
    out.write('model %s %s %d\n' % (name, fname, len(ops)))
    out.write('ops %s %s\n' % (name, ' '.join(ops)))
    for pname, p in params:
        shape = 'x'.join(str(d) for d in p.shape) or 'scalar'
        vals = ' '.join(repr(v) for v in tensor_values(p))
        out.write('init %s %s %s %s\n' % (name, pname, shape, vals))


# ---- a minimal protobuf reader and writer ---------------------------------

def varint(b, i):
    x = s = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7f) << s
        s += 7
        if not c & 0x80:
            return x, i


def fields(b):
    i = 0
    while i < len(b):
        tag, i = varint(b, i)
        num, wire = tag >> 3, tag & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        elif wire == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError('wire type %d' % wire)
        yield num, v


def read_op_types(model):
    graph = [v for n, v in fields(model) if n == 7][0]
    for n, node in fields(graph):
        if n == 1:
            yield [v for k, v in fields(node) if k == 4][0].decode()


def enc_varint(x):
    if x < 0:
        x += 1 << 64
    out = bytearray()
    while True:
        c = x & 0x7f
        x >>= 7
        if x:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def f_varint(num, x):
    return enc_varint(num << 3) + enc_varint(x)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return enc_varint(num << 3 | 2) + enc_varint(len(b)) + b


def value_info(name, dims):
    shape = b''.join(f_bytes(1, f_varint(1, d)) for d in dims)
    tensor_type = f_varint(1, 1) + f_bytes(2, shape)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, tensor_type))


def tensor(name, dims, data=None, external=None):
    b = b''.join(f_varint(1, d) for d in dims) + f_varint(2, 1) + f_bytes(8, name)
    if data is not None:
        b += f_bytes(9, data)
    if external is not None:
        for k, v in external:
            b += f_bytes(13, f_bytes(1, k) + f_bytes(2, v))
        b += f_varint(14, 1)
    return b


def export_external(outdir, out):
    """Gemm(x, W, B) with W (16 x 8) in ext.bin at offset 64, B inline."""
    torch.manual_seed(3)
    lin = nn.Linear(8, 16).eval()
    w = lin.weight.detach().contiguous().numpy().astype('<f4').tobytes()
    b = lin.bias.detach().contiguous().numpy().astype('<f4').tobytes()
    with open(os.path.join(outdir, 'ext.bin'), 'wb') as f:
        f.write(b'\0' * 64 + w + b'\0' * 32)
    node = (f_bytes(1, 'x') + f_bytes(1, 'W') + f_bytes(1, 'B') + f_bytes(2, 'y') +
            f_bytes(3, 'gemm') + f_bytes(4, 'Gemm') +
            f_bytes(5, f_bytes(1, 'transB') + f_varint(3, 1) + f_varint(20, 2)))
    graph = (f_bytes(1, node) + f_bytes(2, 'ext') +
             f_bytes(5, tensor('W', [16, 8], external=[('location', 'ext.bin'),
                                                      ('offset', '64'),
                                                      ('length', str(len(w)))])) +
             f_bytes(5, tensor('B', [16], data=b)) +
             f_bytes(11, value_info('x', [1, 8])) + f_bytes(12, value_info('y', [1, 16])))
    model = (f_varint(1, 8) + f_bytes(2, 'clnet-tests') + f_bytes(7, graph) +
             f_bytes(8, f_bytes(1, '') + f_varint(2, 13)))
    path = os.path.join(outdir, 'ext.onnx')
    with open(path, 'wb') as f:
        f.write(model)
    record(out, 'ext', 'ext.onnx', path, [('W', lin.weight), ('B', lin.bias)])


class LstmStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 64, num_layers=3, batch_first=True)
        self.dense = nn.Linear(64, 10)

    def forward(self, x):
        y, _ = self.lstm(x)
        return torch.softmax(self.dense(y[:, -1]), 1)


def main():
    outdir = sys.argv[1]
    warnings.simplefilter('ignore')
    out = open(os.path.join(outdir, 'expect.txt'), 'w')

    torch.manual_seed(1)
    cnn = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(1600, 64), nn.ReLU(), nn.Linear(64, 10),
                        nn.Softmax(1)).eval()
    path = os.path.join(outdir, 'cnn.onnx')
    torch.onnx.export(cnn, torch.randn(1, 1, 28, 28), path, opset_version=13,
                      input_names=['x'], output_names=['y'],
                      dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}})
    record(out, 'cnn', 'cnn.onnx', path, list(cnn.state_dict().items()))

    torch.manual_seed(2)
    lstm = LstmStack().eval()
    path = os.path.join(outdir, 'lstm.onnx')
    torch.onnx.export(lstm, torch.randn(1, 28, 28), path, opset_version=13,
                      input_names=['x'], output_names=['y'])
    # The LSTM's weights are repacked by the exporter (gate order, W/R/B
    # split) and renamed; only the dense head is compared by name.
    record(out, 'lstm', 'lstm.onnx', path, [('dense.weight', lstm.dense.weight),
                                            ('dense.bias', lstm.dense.bias)])

    export_external(outdir, out)
    out.close()


if __name__ == '__main__':
    main()
