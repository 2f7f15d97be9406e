#!/usr/bin/python3
"""A Keras user's sigmoid autoencoder in PyTorch (CPU), the peer of
examples/autoencoder.c (docs/losses.md): 784 -> Linear(64) + ReLU ->
Linear(784) + Sigmoid, MSE, Adam(1e-3, eps 1e-8 as clnet's default),
batch 32, x / 255, the first COUNT training images of Fashion-MNIST in
order (no shuffle), one epoch.

    /usr/bin/python3 tools/peers/autoencoder_torch.py --init ae.safetensors
    build/examples/autoencoder ae.safetensors

--init writes the initial weights (Keras' Glorot-uniform kernels, zero
biases, from --seed) as safetensors in clnet's names (layers.0.kernel, ...;
docs/weights.md) before training, so that clnet starts from the same point.
Prints the MSE over the COUNT images before and after the epoch, and the
epoch's running mean, in the words of the clnet example.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import load  # noqa: E402  (Fashion-MNIST as torch_train reads it)


def write_safetensors(path, tensors):
    """The safetensors format by hand (no Python package needed): an 8-byte
    little-endian header length, the JSON header, then the F32 data."""
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for name, t in tensors:
        data = t.detach().contiguous().numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def mse_over(model, x, batch=256):
    with torch.no_grad():
        total = 0.0
        for s in range(0, len(x), batch):
            xb = x[s:s + batch]
            total += float(nn.functional.mse_loss(model(xb), xb)) * len(xb)
    return total / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--init', help='write the initial weights here (safetensors)')
    ap.add_argument('--count', type=int, default=10000)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x, _ = load('train')
    x = x[:a.count].reshape(-1, 784)
    enc, dec = nn.Linear(784, 64), nn.Linear(64, 784)
    for m in (enc, dec):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)
    model = nn.Sequential(enc, nn.ReLU(), dec, nn.Sigmoid())
    if a.init:
        write_safetensors(a.init, [('layers.0.kernel', enc.weight), ('layers.0.bias', enc.bias),
                                   ('layers.1.kernel', dec.weight), ('layers.1.bias', dec.bias)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    before = mse_over(model, x)
    running = 0.0
    for s in range(0, len(x), 32):
        xb = x[s:s + 32]
        loss = nn.functional.mse_loss(model(xb), xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += float(loss) * len(xb)
    after = mse_over(model, x)
    print('autoencoder (PyTorch %s): %d images, MSE before %.6f, after one epoch %.6f '
          '(epoch running mean %.6f)' % (torch.__version__, len(x), before, after,
                                         running / len(x)))


if __name__ == '__main__':
    main()
