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
counted (PyTorch writes a counting one as Pad + AveragePool), HardSwish,
a clamp at 0; batch 2, opset 14); torchvision's resnet18 and mobilenet_v2 (random
weights and batch-norm statistics, batch 1 at 224x224; resnet18 at
batch 8 too with CLNET_TEST_LONG=1, from the same file: its batch dim is
symbolic); the DCGAN generator and the VAE decoder (ConvTranspose with
PyTorch's crops), the 3 x LSTM(64) stack and a 2-layer GRU
(export_generative, export_recurrent); 'fresh_bn', two convolutions with
fresh batch norm whose folded zero biases the exporter shares through an
Identity (batch 2); 'unsupported', a MaxPool with
ceil_mode followed by Selu and Erf, which the importer must refuse
with every op named; and bad_*.onnx,
hand-written graphs the reader accepts but the importer must refuse with a
message naming the node (export_bad). Needs Debian's
python3-torch (and its numpy).

Usage: export_run.py OUTDIR [--no-torchvision]
(--no-torchvision: the small models only, for tests that need no more)
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
        with torch.no_grad():  # both of relu6's bounds, both of hardswish's bends reached
            self.stem.weight.mul_(4)
            self.grouped.weight.mul_(4)

    def forward(self, x):
        h = nn.functional.relu6(self.stem(x))
        h = nn.functional.relu6(self.bn(self.dw(h)))
        h = nn.functional.hardswish(self.grouped(h))  # opset 14
        h = self.avg(self.pool(h))
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
        return torch.erf(nn.functional.selu(self.pool(x)))


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


def attr_str(name, v):
    return f_bytes(5, f_bytes(1, name) + f_bytes(4, v) + f_varint(20, 3))


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
                [float_tensor('C', [3])], [1, 4], [1, 4])
    write_model(outdir, 'bad_reshape', [node('Reshape', ['x', 'S'], ['y'])],
                [int64_tensor('S', [2, -1])], [1, 4], [2, 2])
    write_model(outdir, 'bad_gather', [node('Shape', ['x'], ['s']),
                                       node('Gather', ['s', 'I'], ['y'])],
                [int64_tensor('I', [5])], [1, 4], [1])
    write_model(outdir, 'bad_softmax', [node('Softmax', ['x'], ['y'], attr_int('axis', 1))],
                [], img, img)
    write_model(outdir, 'bad_transpose', [node('Transpose', ['x'], ['y'],
                                               attr_ints('perm', [0, 2, 1]))],
                [], [1, 2, 3], [1, 3, 2])
    write_model(outdir, 'bad_div', [node('Div', ['x', 'x'], ['y'])], [], [1, 4], [1, 4])
    export_bad_transposed(outdir, img)


def export_bad_transposed(outdir, img):
    """A crop that is not Keras' 'same' (one row before instead of one after:
    3x3 stride 2 'same' crops 0 and 1), and a bidirectional LSTM."""
    write_model(outdir, 'bad_convt', [node('ConvTranspose', ['x', 'T'], ['y'],
                                           attr_ints('strides', [2, 2]),
                                           attr_ints('pads', [1, 1, 0, 0]))],
                [float_tensor('T', [3, 2, 3, 3])], img, [1, 2, 10, 10])
    write_model(outdir, 'bad_lstm', [node('LSTM', ['x', 'W', 'R'], ['y'],
                                          attr_int('hidden_size', 2),
                                          attr_str('direction', 'bidirectional'))],
                [float_tensor('W', [2, 8, 3]), float_tensor('R', [2, 8, 2])], [4, 1, 3],
                [4, 2, 1, 2])


# ---- Transposed convolutions and recurrent layers (the reference models) ----

class View(nn.Module):
    """x.view(x.size(0), *shape): nn.Unflatten does not export here."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.size(0), *self.shape)


class CropTo(nn.Module):
    """Keras' 'same' transposed convolution as PyTorch writes it: the
    ConvTranspose's output cut to `size` rows and columns (a Slice)."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        return x[:, :, :self.size, :self.size]


def random_bn(model):
    with torch.no_grad():  # statistics that are not the identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def dcgan_generator():
    """tools/peers/torch_train.py dcgan()'s generator (Unflatten as a view):
    5x5 stride-2 ConvTranspose with padding 1, then a crop to 2 * in."""
    return nn.Sequential(
        nn.Linear(100, 128 * 7 * 7, bias=False), View(128, 7, 7),
        nn.BatchNorm2d(128, eps=1e-3), nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(128, 64, 5, stride=2, padding=1, bias=False), CropTo(14),
        nn.BatchNorm2d(64, eps=1e-3), nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(64, 1, 5, stride=2, padding=1), CropTo(28), nn.Tanh())


def vae_decoder():
    """tools/peers/torch_vae.py's decoder with its sigmoid, its
    ConvTransposeSame written as PyTorch's ConvTranspose2d: 3x3 stride 2
    without padding cut to 2 * in (TensorFlow's 'same'), and 3x3 stride 1
    padding 1."""
    return nn.Sequential(
        nn.Linear(2, 7 * 7 * 64), nn.ReLU(), View(64, 7, 7),
        nn.ConvTranspose2d(64, 64, 3, stride=2), CropTo(14), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 3, stride=2), CropTo(28), nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1), nn.Sigmoid())


class LastStep(nn.Module):
    """tools/peers/torch_train.py RecurrentStack: 3 x LSTM(64) over the 28
    rows of an image, the last step into Linear(10)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(28, 64, num_layers=3, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        y, _ = self.rnn(x.reshape(x.shape[0], 28, 28))
        return self.fc(y[:, -1])


class Sequence(nn.Module):
    """Two stacked recurrent layers of 5 units on 9 steps of 7 features,
    returning the whole sequence (Y, Squeeze, Transpose)."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(7, 5, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


class Permute(nn.Module):
    def __init__(self, *perm):
        super().__init__()
        self.perm = perm

    def forward(self, x):
        return x.permute(*self.perm)


class Arith(nn.Module):
    """Constants in arithmetic, numpy-broadcast: per channel (C, 1, 1) on
    NCHW (Add, Mul), scalars (Sub, Div, a constant minus x), per feature
    (F) on (batch, F) (Mul, Sub); nearest Resize by 2 x 3; LogSoftmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 15, 7)
        self.b = nn.Parameter(torch.randn(4, 1, 1))
        self.register_buffer('s', torch.rand(4, 1, 1) + 0.5)
        self.register_buffer('v', torch.rand(7) + 0.5)
        self.register_buffer('u', torch.randn(7))

    def forward(self, x):
        h = (self.conv(x) + self.b) * self.s
        h = 0.25 - (h - 0.5) / 3.0
        h = nn.functional.interpolate(h, scale_factor=(2, 3), mode='nearest')
        z = self.fc(h.flatten(1)) * self.v - self.u
        return nn.functional.log_softmax(z, 1)


def export_arith(outdir):
    torch.manual_seed(8)
    export(outdir, 'arith', Arith(), torch.randn(2, 3, 5, 7))
    # A Transpose that moves only dims of extent 1: a view.
    torch.manual_seed(10)
    export(outdir, 'permute', nn.Sequential(nn.Conv2d(3, 6, 5), Permute(0, 2, 3, 1),
                                            nn.Flatten(), nn.Linear(6, 3)),
           torch.randn(3, 3, 5, 5))


def export_fresh_bn(outdir):
    """Two bias-free convolutions with freshly initialized batch norm: in eval
    mode the exporter folds each batch norm into its convolution, both
    folded biases are zeros, and it writes one initializer and an Identity
    for the other (what an untrained torchvision model exports as)."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, bias=False), nn.BatchNorm2d(4))
    export(outdir, 'fresh_bn', model, torch.randn(2, 3, 9, 9))
    with open(os.path.join(outdir, 'fresh_bn.onnx'), 'rb') as f:
        assert b'Identity' in f.read(), 'fresh_bn: the exporter wrote no Identity'


def export_generative(outdir):
    torch.manual_seed(4)
    gen = dcgan_generator()
    random_bn(gen)
    export(outdir, 'dcgan', gen, torch.randn(3, 100))
    torch.manual_seed(5)
    export(outdir, 'vae_decoder', vae_decoder(), torch.randn(2, 2) * 2)


def export_recurrent(outdir):
    torch.manual_seed(6)
    export(outdir, 'lstm', LastStep(), torch.rand(3, 1, 28, 28))
    torch.manual_seed(7)
    export(outdir, 'gru', Sequence(nn.GRU), torch.randn(1, 9, 7))
    torch.manual_seed(9)
    export(outdir, 'srnn', Sequence(nn.RNN), torch.randn(2, 9, 7))


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
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ['--no-torchvision']):
        sys.exit('usage: export_run.py OUTDIR [--no-torchvision]')
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
    export(outdir, 'vision', vision, torch.randn(2, 3, 19, 17), opset=14)
    if '--no-torchvision' not in sys.argv:
        export_torchvision(outdir, os.environ.get('CLNET_TEST_LONG') == '1')
    export_bad(outdir)
    export_generative(outdir)
    export_recurrent(outdir)
    export_arith(outdir)
    export_fresh_bn(outdir)


if __name__ == '__main__':
    main()
