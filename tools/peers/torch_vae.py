#!/usr/bin/python3
"""The PyTorch peer of clnet's VAE (issue #18): the architecture of the Keras
"Variational AutoEncoder" example, trained in PyTorch (CPU) on Fashion-MNIST
(x / 255): the reference for issue #18's `clnet-train vae` (not built yet;
the primitives it will use are in clnet/merge.h).

    tools/peers/torch_vae.py --epochs 3 --seed 1 --threads 1
    tools/peers/torch_vae.py --epochs 1 --limit 512      # a quick smoke run

Model (NCHW here; Keras is NHWC, same arithmetic):
  encoder  Conv2D(32, 3, stride 2, same, relu) -> Conv2D(64, 3, stride 2,
           same, relu) -> Flatten -> Dense(16, relu) -> Dense(2) mean,
           Dense(2) log-variance -> z = mean + exp(logvar / 2) * eps
  decoder  Dense(7*7*64, relu) -> Reshape(64, 7, 7) ->
           Conv2DTranspose(64, 3, stride 2, same, relu) ->
           Conv2DTranspose(32, 3, stride 2, same, relu) ->
           Conv2DTranspose(1, 3, same, sigmoid)
Keras' "same" is TensorFlow's: for a stride-2 3x3 convolution of an even
input the one padding row/column goes after (bottom/right), and the stride-2
transposed convolution keeps the first 2 * in of PyTorch's 2 * in + 1
outputs (padding 0); clnet's clnet_conv2d_params_set_same and
clnet_conv2d_transpose_params_set_same pad the same way. Keras'
initialization: Glorot-uniform kernels, zero biases.

Loss per image, in nats: binary cross-entropy summed over the 784 pixels
(from the decoder's logits, the stable form that Keras also uses behind a
sigmoid output) plus KL(N(mean, exp(logvar)) || N(0, I)) =
-0.5 * sum(1 + logvar - mean^2 - exp(logvar)); the training loss is its
mean over the batch. Adam (lr 1e-3), batch 128, shuffled each epoch.

Prints one line per epoch (training loss, reconstruction and KL, seconds),
the median step time, and last `test loss: X`: the mean over the 10,000 test
images of reconstruction + KL, with one z per image sampled from a generator
seeded with --eval-seed (the same z noise for every run and epoch).
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import load  # noqa: E402  (Fashion-MNIST, x / 255, NCHW)

LATENT = 2


class SamePadStride2(nn.Module):
    """TensorFlow 'same' for a 3x3 stride-2 convolution of an even input:
    total padding 1, all of it after."""

    def forward(self, x):
        return F.pad(x, (0, 1, 0, 1))


class ConvTransposeSame(nn.ConvTranspose2d):
    """nn.ConvTranspose2d(cin, cout, 3, stride) with TensorFlow 'same' output
    (in * stride), computed through F.conv2d: this torch's CPU transposed
    convolution (slow_conv_transpose2d) is about 6x slower than its direct
    convolution, and a 3-epoch run would take hours. Same parameters (weight
    (cin, cout, 3, 3), bias), same arithmetic up to the float summation order.

    Stride 2: output row 2i + a of the transposed convolution reads
    x[i] * w[0] + x[i-1] * w[2] (a = 0) or x[i] * w[1] (a = 1), so the four
    (row, column) phases are one 2x2 convolution of x padded by one row and
    column before, with 4 * cout channels, and a pixel shuffle. TensorFlow
    'same' keeps rows 0 .. 2 * in - 1 of the padding-0 output (2 * in + 1
    rows), the rows this computes; PyTorch's padding=1, output_padding=1
    would keep rows 1 .. 2 * in instead (same shape, shifted by one).
    Stride 1: the convolution with the flipped kernel, padding 1."""

    TAP = ((2, 0), (None, 1))  # phase a: kernel index at window row 0 (x[i-1]), 1 (x[i])

    def __init__(self, cin, cout, stride):
        super().__init__(cin, cout, 3, stride=stride)

    def forward(self, x):
        w = self.weight
        if self.stride[0] == 1:
            return F.conv2d(x, w.flip(2, 3).transpose(0, 1), self.bias, padding=1)
        cin, cout = w.shape[0], w.shape[1]
        zero = w.new_zeros(cout, cin)
        phases = []
        for a in range(2):
            for b in range(2):
                rows = []
                for p in range(2):
                    ka = self.TAP[a][p]
                    rows.append(torch.stack([
                        w[:, :, ka, self.TAP[b][q]].t()
                        if ka is not None and self.TAP[b][q] is not None else zero
                        for q in range(2)], -1))
                phases.append(torch.stack(rows, -2))  # (cout, cin, 2, 2)
        wc = torch.stack(phases, 1).reshape(cout * 4, cin, 2, 2)
        y = F.conv2d(F.pad(x, (1, 0, 1, 0)), wc, self.bias.repeat_interleave(4))
        return F.pixel_shuffle(y, 2)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            SamePadStride2(), nn.Conv2d(1, 32, 3, stride=2), nn.ReLU(),    # 28 -> 14
            SamePadStride2(), nn.Conv2d(32, 64, 3, stride=2), nn.ReLU(),   # 14 -> 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, 16), nn.ReLU())
        self.z_mean = nn.Linear(16, LATENT)
        self.z_log_var = nn.Linear(16, LATENT)
        # Ends in logits: the sigmoid is applied in decode() and, for the
        # loss, inside binary_cross_entropy_with_logits.
        self.decoder = nn.Sequential(
            nn.Linear(LATENT, 7 * 7 * 64), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            ConvTransposeSame(64, 64, 2), nn.ReLU(),    # 7 -> 14
            ConvTransposeSame(64, 32, 2), nn.ReLU(),    # 14 -> 28
            ConvTransposeSame(32, 1, 1))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def encode(self, x):
        h = self.encoder(x)
        return self.z_mean(h), self.z_log_var(h)

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def loss_terms(self, x, generator=None):
        """Per-image reconstruction (BCE summed over pixels) and KL, in nats."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator)
        z = mean + torch.exp(0.5 * logvar) * eps
        logits = self.decoder(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(dim=(1, 2, 3))
        kl = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).sum(dim=1)
        return rec, kl


@torch.no_grad()
def test_loss(model, x, seed, batch=1000):
    """Mean over the images of reconstruction + KL, one z per image from a
    generator seeded with `seed`."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(0, len(x), batch):
        rec, kl = model.loss_terms(x[i:i + batch], g)
        total += (rec + kl).sum().item()
    model.train()
    return total / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--eval-seed', type=int, default=12345,
                    help='seed of the test loss\'s z noise (fixed across runs)')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--limit', type=int, default=0, help='train on the first N images only')
    ap.add_argument('--test-limit', type=int, default=0,
                    help='score the first N test images only (smoke runs; the test loss '
                         'that peers compare is over all 10,000)')
    args = ap.parse_args()
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0 or args.limit < 0 or \
            args.test_limit < 0:
        ap.error('--epochs and --batch-size must be >= 1, --lr > 0, limits >= 0')
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    xtr, _ = load('train')
    xte, _ = load('t10k')
    if args.limit:
        xtr = xtr[:args.limit]
    if args.test_limit:
        xte = xte[:args.test_limit]
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    print('pytorch %s, %d thread(s), model vae, batch %d, %d training images' %
          (torch.__version__, torch.get_num_threads(), args.batch_size, len(xtr)))
    step_times = []
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(xtr))
        t0 = time.perf_counter()
        tot = rec_sum = kl_sum = 0.0
        for i in range(0, len(xtr), args.batch_size):
            xb = xtr[perm[i:i + args.batch_size]]
            s0 = time.perf_counter()
            opt.zero_grad()
            rec, kl = model.loss_terms(xb)
            loss = (rec + kl).mean()
            loss.backward()
            opt.step()
            step_times.append(time.perf_counter() - s0)
            tot += loss.item() * len(xb)
            rec_sum += rec.sum().item()
            kl_sum += kl.sum().item()
        n = len(xtr)
        print('epoch %d: loss %.4f (reconstruction %.4f, kl %.4f), %.1f s' %
              (epoch, tot / n, rec_sum / n, kl_sum / n, time.perf_counter() - t0))
    step_times.sort()
    print('median step: %.2f ms (batch %d)' % (1e3 * step_times[len(step_times) // 2],
                                                args.batch_size))
    print('test loss: %.4f' % test_loss(model, xte, args.eval_seed))


if __name__ == '__main__':
    main()
