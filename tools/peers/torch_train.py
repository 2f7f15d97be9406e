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

Prints one line per epoch (loss, train accuracy, test accuracy, seconds) and
the mean time per training step, in the same words as clnet-train.
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
    ap.add_argument('model', choices=['cnn', 'lstm', 'rnn'])
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--limit', type=int, default=0, help='train on the first N images only')
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    xtr, ytr = load('train')
    xte, yte = load('t10k')
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
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
