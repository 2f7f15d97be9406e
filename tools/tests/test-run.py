#!/usr/bin/python3
"""clnet-run end to end: models exported from PyTorch at test time
(tests/onnx/export_run.py) run from .npy files, outputs compared with
PyTorch's (normwise relative error < 1e-4); inputs and outputs by order and
by NAME=; the refusals (an unknown input name, an unsupported model, a wrong
input shape, a directory or FIFO as output, a missing file, bad usage) with
their exit status and message. Needs /usr/bin/python3 with torch and numpy.

Usage: test-run.py CLNET_RUN SOURCE_ROOT
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

RUN, ROOT = sys.argv[1], sys.argv[2]


def run(*args):
    p = subprocess.run([RUN] + list(args), capture_output=True, text=True)
    return p.returncode, p.stderr


def expect(args, rc, needle):
    got, err = run(*args)
    assert got == rc and needle in err, '%s: exit %d, expected %d with "%s":\n%s' % (
        ' '.join(args), got, rc, needle, err)


def main():
    with tempfile.TemporaryDirectory(prefix='clnet-run-test.') as d:
        subprocess.run([sys.executable, os.path.join(ROOT, 'tests/onnx/export_run.py'), d,
                        '--no-torchvision'], check=True)
        p = lambda f: os.path.join(d, f)
        for name, inarg, outarg in (('cnn', p('cnn.in.npy'), p('y.npy')),
                                    ('residual', 'x=' + p('residual.in.npy'), 'y=' + p('y.npy'))):
            rc, err = run(p(name + '.onnx'), '--input', inarg, '--output', outarg)
            assert rc == 0, '%s: exit %d: %s' % (name, rc, err)
            got, want = np.load(p('y.npy')), np.load(p(name + '.out.npy'))
            assert got.shape == want.shape, (got.shape, want.shape)
            rel = np.linalg.norm(got - want) / np.linalg.norm(want)
            assert rel < 1e-4, '%s: relative error %g' % (name, rel)
            print('%s: relative error %.3g against PyTorch' % (name, rel))
        cnn = p('cnn.onnx')
        expect([cnn, '--input', 'z=' + p('cnn.in.npy'), '--output', p('o.npy')], 2,
               'the model has 1 inputs (x)')
        expect([p('unsupported.onnx'), '--input', p('unsupported.in.npy'), '--output',
                p('o.npy')], 1, 'op Selu; op Erf')
        expect([cnn, '--input', p('residual.in.npy'), '--output', p('o.npy')], 1,
               'clnet_model_forward_multi')
        expect([cnn, '--input', p('cnn.in.npy'), '--output', d], 2, 'is a directory')
        os.mkfifo(p('fifo'))
        expect([cnn, '--input', p('cnn.in.npy'), '--output', p('fifo')], 2, 'fifo')
        expect([cnn, '--input', p('fifo'), '--output', p('o.npy')], 2, 'fifo')
        expect([cnn, '--input', p('missing.npy'), '--output', p('o.npy')], 2, 'missing.npy')
        expect([cnn, '--output', p('o.npy')], 2, 'needs MODEL.onnx, --input and --output')
        expect([cnn, '--input'], 2, '--input needs a value')
        expect([cnn, '--input', p('cnn.in.npy'), '--output', p('o.npy'), '--frobnicate'], 2,
               'unexpected argument')
        expect([cnn, '--input', p('cnn.in.npy'), '--output', p('o.npy'), '--device', ''], 2,
               '--device needs a value')
        with open(p('bad.npy'), 'wb') as f:
            f.write(b'\x93NUMPY\x01\x00')
        expect([cnn, '--input', p('bad.npy'), '--output', p('o.npy')], 1, 'bad.npy')
        assert not os.path.exists(p('o.npy')), 'a failed run left an output file'
    print('ok')


if __name__ == '__main__':
    main()
