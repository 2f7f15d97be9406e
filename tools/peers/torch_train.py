#!/usr/bin/python3
"""Train clnet's reference models in PyTorch (CPU) on Fashion-MNIST, as the
peer that clnet-train is compared with: same architecture, initialization
family, optimizer, batch size and data order policy (shuffled each epoch).

    tools/peers/torch_train.py cnn --epochs 3 --batch-size 32 --threads 1
    tools/peers/torch_train.py lstm --epochs 3   # or rnn: images read row by row

cnn: Keras' initialization (Glorot-uniform kernels, zero biases), as
clnet's Conv2D and Dense layers. lstm, rnn: three stacked nn.LSTM or
nn.RNN(tanh) layers of 64 units, batch first, on 28 steps of 28 features,
the last step's h into Linear(64, 10), with PyTorch's default
initialization (clnet's recurrent layers initialize as PyTorch does).
    tools/peers/torch_train.py gan --epochs 1 --limit 6400 --threads 1

cnn prints one line per epoch (loss, train accuracy, test accuracy, seconds)
and the median time per training step, in the same words as clnet-train.
gan trains the reference DCGAN (docs/gan.md) the way clnet-train gan does --
D on [real; fake] in one batch of 2B, then G through D with D's parameters
frozen (requires_grad off, as clnet computes no D weight gradients there) --
and prints D and G losses per epoch and the median times of the two phases.
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402  (which BLAS torch loaded)

DATA = '/usr/share/datasets/fashion-mnist'


def read_idx(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    _, _, dtype, ndim = struct.unpack('>BBBB', data[:4])
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    assert dtype == 0x08, 'only unsigned byte IDX files'
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    def find(name):
        for suffix in ('.gz', ''):
            p = os.path.join(DATA, name + suffix)
            if os.path.exists(p):
                return p
        sys.exit('missing %s in %s (apt-get install dataset-fashion-mnist)' % (name, DATA))
    x = read_idx(find(split + '-images-idx3-ubyte')).astype(np.float32) / 255.0
    y = read_idx(find(split + '-labels-idx1-ubyte')).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def keras_init(model):
    # Keras defaults: Glorot-uniform kernels, zero biases.
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10))


class RecurrentStack(nn.Module):
    """clnet's reference recurrent stack (tools/models.c build_rnn_stack):
    an image (1, 28, 28) is 28 steps of 28 features; three layers of 64
    units (nn.LSTM or nn.RNN with tanh), the last step's h into Linear(10)
    (the softmax is in the loss)."""

    def __init__(self, cell):
        super().__init__()
        if cell == 'lstm':
            self.rnn = nn.LSTM(28, 64, num_layers=3, batch_first=True)
        else:
            self.rnn = nn.RNN(28, 64, num_layers=3, nonlinearity='tanh', batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        y, _ = self.rnn(x.reshape(x.shape[0], 28, 28))
        return self.fc(y[:, -1])


def build(name):
    if name == 'cnn':
        model = cnn()
        keras_init(model)
        return model
    return RecurrentStack(name)


class KerasSamePad(nn.Module):
    """Keras' 'same' padding for a 5x5 stride-2 convolution of an even input:
    one row/column before, two after (PyTorch's padding=2 is symmetric)."""

    def forward(self, x):
        return nn.functional.pad(x, (1, 2, 1, 2))


class CropTo(nn.Module):
    """Keras' 'same' transposed convolution, 5x5 stride 2: PyTorch's with
    padding=1 gives 2 * in + 1 outputs; Keras drops the last row/column."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        return x[:, :, :self.size, :self.size]


def dcgan():
    """The generator and discriminator of clnet-train gan (tools/models.c)."""
    g = nn.Sequential(
        nn.Linear(100, 128 * 7 * 7, bias=False), nn.Unflatten(1, (128, 7, 7)),
        nn.BatchNorm2d(128, eps=1e-3, momentum=0.1), nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(128, 64, 5, stride=2, padding=1, bias=False), CropTo(14),
        nn.BatchNorm2d(64, eps=1e-3, momentum=0.1), nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(64, 1, 5, stride=2, padding=1), CropTo(28), nn.Tanh())
    d = nn.Sequential(
        KerasSamePad(), nn.Conv2d(1, 64, 5, stride=2), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        KerasSamePad(), nn.Conv2d(64, 128, 5, stride=2), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    for m in list(g.modules()) + list(d.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # Keras' Glorot uniform: symmetric in the fans, so the transposed
            # kernels' (in, out) layout gives the same limit.
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return g, d


def train_gan(args, xtr):
    g, d = dcgan()
    opt_g = torch.optim.Adam(g.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=args.lr, betas=(0.5, 0.999))
    lossf = nn.BCEWithLogitsLoss()
    b = args.batch_size
    real = xtr * 2 - 1
    targets_d = torch.cat([torch.full((b, 1), 1.0 - args.label_smoothing), torch.zeros(b, 1)])
    ones = torch.ones(b, 1)
    blas = peerlib.loaded_blas()
    print('pytorch %s, %d thread(s), BLAS %s, model gan, batch %d' %
          (torch.__version__, torch.get_num_threads(), blas, b))
    if peerlib.blas_warning(blas):
        print(peerlib.blas_warning(blas))
    d_times, g_times = [], []
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(real))
        t0 = time.perf_counter()
        d_sum, g_sum, steps = 0.0, 0.0, len(real) // b
        for s in range(steps):
            xb = real[perm[s * b:(s + 1) * b]]
            s0 = time.perf_counter()
            fake = g(torch.randn(b, 100))
            for p in d.parameters():
                p.requires_grad_(True)
            opt_d.zero_grad()
            loss_d = lossf(d(torch.cat([xb, fake.detach()])), targets_d)
            loss_d.backward()
            opt_d.step()
            s1 = time.perf_counter()
            for p in d.parameters():
                p.requires_grad_(False)
            opt_g.zero_grad()
            loss_g = lossf(d(fake), ones)
            loss_g.backward()
            opt_g.step()
            s2 = time.perf_counter()
            d_times.append(s1 - s0)
            g_times.append(s2 - s1)
            d_sum += 2 * loss_d.item()
            g_sum += loss_g.item()
        secs = time.perf_counter() - t0
        print('epoch %d/%d: d_loss %.4f, g_loss %.4f, %.1f s, %.1f ms/step' %
              (epoch, args.epochs, d_sum / steps, g_sum / steps, secs, 1e3 * secs / steps))
    d_times.sort()
    g_times.sort()
    dm, gm = d_times[len(d_times) // 2], g_times[len(g_times) // 2]
    print('median step: %.2f ms (D %.2f + G %.2f, batch %d)' % (1e3 * (dm + gm), 1e3 * dm, 1e3 * gm, b))


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model', choices=['cnn', 'lstm', 'rnn', 'gan'])
    ap.add_argument('--epochs', type=int, help='default 3 (gan: 10)')
    ap.add_argument('--batch-size', type=int, help='default 32 (gan: 64)')
    ap.add_argument('--lr', type=float, help='default 1e-3 (gan: 2e-4)')
    ap.add_argument('--label-smoothing', type=float, default=0.0, help='gan: D\'s real target is 1 - this')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--limit', type=int, default=0, help='train on the first N images only')
    args = ap.parse_args()
    gan = args.model == 'gan'
    for name, cnn_default, gan_default in (('epochs', 3, 10), ('batch_size', 32, 64), ('lr', 1e-3, 2e-4)):
        if getattr(args, name) is None:
            setattr(args, name, gan_default if gan else cnn_default)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    xtr, ytr = load('train')
    xte, yte = load('t10k')
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    if gan:
        train_gan(args, xtr)
        return
    model = build(args.model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    lossf = nn.CrossEntropyLoss()
    print('pytorch %s, %d thread(s), model %s, batch %d' %
          (torch.__version__, torch.get_num_threads(), args.model, args.batch_size))
    step_times = []
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(xtr))
        t0 = time.perf_counter()
        total, correct, seen = 0.0, 0, 0
        for i in range(0, len(xtr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            s0 = time.perf_counter()
            opt.zero_grad()
            out = model(xb)
            loss = lossf(out, yb)
            loss.backward()
            opt.step()
            step_times.append(time.perf_counter() - s0)
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
            seen += len(idx)
        secs = time.perf_counter() - t0
        acc = evaluate(model, xte, yte)
        print('epoch %d: loss %.4f, train accuracy %.4f, test accuracy %.4f, %.1f s' %
              (epoch, total / seen, correct / seen, acc, secs))
    step_times.sort()
    print('median step: %.2f ms (batch %d)' % (1e3 * step_times[len(step_times) // 2], args.batch_size))
    print('test accuracy: %.4f' % acc)


if __name__ == '__main__':
    main()
