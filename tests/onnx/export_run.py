#!/usr/bin/python3
"""Exports the models tests/test-onnx-run.c imports and runs, with random
weights in eval mode, and PyTorch's outputs on random inputs:

  NAME.onnx, NAME.in.npy (the input), NAME.out.npy (PyTorch's output)

Models: the reference CNN (batch 3); a residual block with batch norm and a
Concat of two branches ending in global average pooling, a view
(x.size(0), -1) that exports as a Shape/Gather/Unsqueeze/Concat chain, a
Gemm minus a MatMul (batch 2); and 'unsupported', a depthwise Conv followed by HardSwish and
Erf, which the importer must refuse with every op named. Needs Debian's
python3-torch (and its numpy).

Usage: export_run.py OUTDIR
"""
import os
import sys
import warnings

import numpy as np
import torch
from torch import nn


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


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, groups=4)

    def forward(self, x):
        return torch.erf(nn.functional.hardswish(self.dw(x)))


def export(outdir, name, model, x, opset=13):
    model.eval()
    path = os.path.join(outdir, name + '.onnx')
    torch.onnx.export(model, x, path, opset_version=opset, input_names=['x'],
                      output_names=['y'], dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}})
    with torch.no_grad():
        y = model(x)
    np.save(os.path.join(outdir, name + '.in.npy'), x.numpy().astype('<f4'))
    np.save(os.path.join(outdir, name + '.out.npy'), y.numpy().astype('<f4'))


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


if __name__ == '__main__':
    main()
