#!/usr/bin/python3
"""Exports the models tests/test-onnx-run.c imports and runs, with random
weights in eval mode, and PyTorch's outputs on random inputs:

  NAME.onnx, NAME.in.npy (the input), NAME.out.npy (PyTorch's output)

Models: the reference CNN (batch 3); a residual block with batch norm and a
Concat of two branches ending in global average pooling, a view
(x.size(0), -1) that exports as a Shape/Gather/Unsqueeze/Concat chain, a
Gemm minus a MatMul (batch 2); 'vision', the layers of torchvision's
models on odd sizes (a strided padded Conv, ReLU6, a depthwise and a grouped
Conv with unequal pads, MaxPool with pads, AveragePool with pads not
counted (PyTorch writes a counting one as Pad + AveragePool), a clamp at
0; batch 2); torchvision's resnet18 and mobilenet_v2 (random
weights and batch-norm statistics, batch 1 at 224x224; resnet18 at
batch 8 too with CLNET_TEST_LONG=1, from the same file: its batch dim is
symbolic);
'unsupported', a MaxPool with ceil_mode followed by HardSwish and Erf,
which the importer must refuse with every op named; and bad_*.onnx,
hand-written graphs the reader accepts but the importer must refuse with a
message naming the node (export_bad). Needs Debian's
python3-torch (and its numpy).

Usage: export_run.py OUTDIR
"""
import os
import struct
import sys
import warnings

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import f_bytes, f_varint, tensor, value_info  # noqa: E402


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.side = nn.Conv2d(8, 5, 1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(13, 7)
        self.w = nn.Parameter(torch.randn(13, 7) * 0.3)  # a MatMul, B not transposed

    def forward(self, x):
        h = torch.relu(self.stem(x))
        r = torch.relu(self.bn(self.conv(h) + h))  # after the Add: not folded into the Conv
        c = torch.cat([r, torch.sigmoid(self.side(r))], 1)
        g = nn.functional.adaptive_avg_pool2d(self.pool(c), 1)
        f = g.view(g.size(0), -1)  # Shape, Gather, Unsqueeze, Concat, Reshape
        return torch.tanh(self.head(f)) - torch.matmul(f, self.w)


class Vision(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.grouped = nn.Conv2d(8, 12, (3, 2), padding=(2, 1), groups=4)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.avg = nn.AvgPool2d(3, 1, padding=1, count_include_pad=False)
        self.head = nn.Linear(12 * 6 * 5, 7)
        with torch.no_grad():  # both of relu6's bounds reached
            self.stem.weight.mul_(4)

    def forward(self, x):
        h = nn.functional.relu6(self.stem(x))
        h = nn.functional.relu6(self.bn(self.dw(h)))
        h = self.avg(self.pool(self.grouped(h)))
        return self.head(torch.clamp(h, min=0).flatten(1))


def randomize_bn(model):
    """Batch-norm statistics and affine parameters that are not the identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, x):
        return torch.erf(nn.functional.hardswish(self.pool(x)))


def export(outdir, name, model, x, opset=13):
    model.eval()
    path = os.path.join(outdir, name + '.onnx')
    torch.onnx.export(model, x, path, opset_version=opset, input_names=['x'],
                      output_names=['y'], dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}})
    with torch.no_grad():
        y = model(x)
    np.save(os.path.join(outdir, name + '.in.npy'), x.numpy().astype('<f4'))
    np.save(os.path.join(outdir, name + '.out.npy'), y.numpy().astype('<f4'))


# ---- Models the importer must refuse (the reader accepts them) -------------
# Written with export.py's protobuf encoder: node fields 1 input, 2 output,
# 3 name, 4 op_type, 5 attribute; attribute 1 name, 3 i, 8 ints, 20 type.

def attr_ints(name, vals):
    return f_bytes(5, f_bytes(1, name) + b''.join(f_varint(8, v) for v in vals) + f_varint(20, 7))


def attr_int(name, v):
    return f_bytes(5, f_bytes(1, name) + f_varint(3, v) + f_varint(20, 2))


def node(op, ins, outs, *attrs):
    return (b''.join(f_bytes(1, i) for i in ins) + b''.join(f_bytes(2, o) for o in outs) +
            f_bytes(3, op.lower()) + f_bytes(4, op) + b''.join(attrs))


def int64_tensor(name, vals):
    return (f_varint(1, len(vals)) + f_varint(2, 7) + f_bytes(8, name) +
            f_bytes(9, struct.pack('<%dq' % len(vals), *vals)))


def float_tensor(name, dims):
    n = 1
    for d in dims:
        n *= d
    return tensor(name, dims, data=struct.pack('<%df' % n, *([0.5] * n)))


def write_model(outdir, name, nodes, inits, xdims, ydims):
    graph = (b''.join(f_bytes(1, n) for n in nodes) + f_bytes(2, name) +
             b''.join(f_bytes(5, t) for t in inits) +
             f_bytes(11, value_info('x', xdims)) + f_bytes(12, value_info('y', ydims)))
    model = (f_varint(1, 8) + f_bytes(2, 'clnet-tests') + f_bytes(7, graph) +
             f_bytes(8, f_bytes(1, '') + f_varint(2, 13)))
    with open(os.path.join(outdir, name + '.onnx'), 'wb') as f:
        f.write(model)


def export_bad(outdir):
    img, w = [1, 3, 5, 5], float_tensor('W', [2, 3, 3, 3])
    write_model(outdir, 'bad_kernel', [node('Conv', ['x', 'W'], ['y'],
                                            attr_ints('kernel_shape', [2, 2]))],
                [w], img, [1, 2, 4, 4])
    write_model(outdir, 'bad_group', [node('Conv', ['x', 'W'], ['y'], attr_int('group', 3))],
                [w], img, [1, 2, 3, 3])
    write_model(outdir, 'bad_pool_pads', [node('MaxPool', ['x'], ['y'],
                                               attr_ints('kernel_shape', [2, 2]),
                                               attr_ints('pads', [0, 0, 2, 2]))],
                [], img, [1, 3, 6, 6])
    write_model(outdir, 'bad_gemm', [node('Gemm', ['x', 'G'], ['y'], attr_int('transB', 1))],
                [float_tensor('G', [4, 75])], img, [1, 4])
    write_model(outdir, 'bad_add', [node('Add', ['x', 'C'], ['y'])],
                [float_tensor('C', [4])], [1, 4], [1, 4])
    write_model(outdir, 'bad_reshape', [node('Reshape', ['x', 'S'], ['y'])],
                [int64_tensor('S', [2, -1])], [1, 4], [2, 2])
    write_model(outdir, 'bad_gather', [node('Shape', ['x'], ['s']),
                                       node('Gather', ['s', 'I'], ['y'])],
                [int64_tensor('I', [5])], [1, 4], [1])
    write_model(outdir, 'bad_softmax', [node('Softmax', ['x'], ['y'], attr_int('axis', 1))],
                [], img, img)


def export_torchvision(outdir, full):
    """resnet18 and mobilenet_v2 with random weights; without torchvision
    (Debian's python3-torchvision) the tests that need them fail saying so."""
    try:
        import torchvision
    except ImportError:
        return
    for seed, name in ((5, 'resnet18'), (6, 'mobilenet_v2')):
        torch.manual_seed(seed)
        model = getattr(torchvision.models, name)(weights=None)
        randomize_bn(model)
        export(outdir, name, model, torch.randn(1, 3, 224, 224))
        if name == 'resnet18' and full:  # the batch dim is symbolic: batch 8 of one file
            x8 = torch.randn(8, 3, 224, 224)
            with torch.no_grad():
                y8 = model(x8)
            np.save(os.path.join(outdir, name + '.b8.in.npy'), x8.numpy().astype('<f4'))
            np.save(os.path.join(outdir, name + '.b8.out.npy'), y8.numpy().astype('<f4'))


def main():
    outdir = sys.argv[1]
    warnings.simplefilter('ignore')
    torch.manual_seed(1)
    cnn = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(1600, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(1))
    export(outdir, 'cnn', cnn, torch.rand(3, 1, 28, 28))
    torch.manual_seed(2)
    res = Residual()
    with torch.no_grad():  # batch-norm statistics that are not the identity
        res.bn.running_mean.uniform_(-0.5, 0.5)
        res.bn.running_var.uniform_(0.5, 2.0)
        res.bn.weight.uniform_(0.5, 1.5)
        res.bn.bias.uniform_(-0.5, 0.5)
    export(outdir, 'residual', res, torch.randn(2, 3, 9, 7))
    torch.manual_seed(3)
    export(outdir, 'unsupported', Unsupported(), torch.randn(1, 4, 7, 7), opset=14)
    torch.manual_seed(4)
    vision = Vision()
    randomize_bn(vision)
    export(outdir, 'vision', vision, torch.randn(2, 3, 19, 17))
    export_torchvision(outdir, os.environ.get('CLNET_TEST_LONG') == '1')
    export_bad(outdir)


if __name__ == '__main__':
    main()
