#!/usr/bin/python3
"""Exports a PyTorch model to ONNX with random weights (and random batch-norm
statistics) in eval mode (no downloads), for clnet-bench --onnx and tools/compare.py --onnx:

  export_onnx.py NAME OUT.onnx [--size 224] [--opset 13]

NAME: a torchvision classification model (resnet18, mobilenet_v2, ...:
torchvision.models.NAME(), input (batch, 3, size, size)) or cnn (clnet's
reference CNN as tools/peers/torch_train.py builds it, input (batch, 1, 28,
28)). The batch dim is symbolic: clnet-bench --batch N picks it. Needs
Debian's python3-torch and python3-torchvision.
"""
import argparse
import os
import sys
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def build(name, size):
    if name == "cnn":
        sys.path.insert(0, HERE)
        import torch_train
        return torch_train.cnn(), (1, 1, 28, 28)
    import torchvision
    if not hasattr(torchvision.models, name):
        raise SystemExit("export_onnx: no torchvision model %r" % name)
    return getattr(torchvision.models, name)(), (1, 3, size, size)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--opset", type=int, default=13)
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    model, shape = build(a.name, a.size)
    # Batch-norm statistics and affine terms as a trained model has them,
    # not the identity: torch.onnx.export shares equal initializers (every
    # fresh BN's ones and zeros) through Identity nodes, which a trained
    # model never shows and the importer does not take as layer weights.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    torch.onnx.export(model, torch.rand(shape), a.out, opset_version=a.opset,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    print("export_onnx: wrote %s (%s, input %s with a symbolic batch)" % (a.out, a.name,
                                                                         list(shape[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
