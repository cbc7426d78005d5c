"""Chainer classifiers for face crops.

`SeedCNN` is the blog seed's network: conv5x5x16 -> pool -> conv5x5x32 -> pool -> fc256 -> fcN on
RGB crops (default 50x50). Pooling uses `cover_all=False` (50 -> 25 -> 13) like PyTorch's default,
so the Chainer model and the PyTorch reference in bench/ are the same architecture.
"""

from __future__ import annotations

import chainer
import chainer.functions as F
import chainer.links as L
import numpy

from charaid import fastops

MODELS = ("seed_cnn",)


class SeedCNN(chainer.Chain):
    """The seed's CNN. `fast` switches to charaid's fused CPU kernels (same maths, same parameters).

    The kernels are numpy-only: on another device (`to_device`) the model uses Chainer's own
    functions whatever `fast` says.
    """

    def __init__(self, n_classes: int, dropout: float = 0.5, fast: bool = True) -> None:
        super().__init__()
        self.dropout = dropout
        self.fast = fast
        with self.init_scope():
            self.conv1 = L.Convolution2D(3, 16, 5, pad=2)
            self.conv2 = L.Convolution2D(16, 32, 5, pad=2)
            self.fc3 = L.Linear(None, 256)
            self.fc4 = L.Linear(256, n_classes)

    def forward(self, x: chainer.Variable) -> chainer.Variable:
        fast = self.fast and self.xp is numpy
        h = self._features_fast(x) if fast else self._features_raw(x)
        h = F.dropout(F.relu(self.fc3(h)), self.dropout)
        return self.fc4(h)

    def _features_raw(self, x: chainer.Variable) -> chainer.Variable:
        h = F.max_pooling_2d(F.relu(self.conv1(x)), 5, stride=2, pad=2, cover_all=False)
        return F.max_pooling_2d(F.relu(self.conv2(h)), 5, stride=2, pad=2, cover_all=False)

    def _features_fast(self, x: chainer.Variable) -> chainer.Variable:
        # the same maths through fused conv+relu+pool nodes, chained in the CWHN layout
        h = fastops.to_cwhn(x)
        for conv in (self.conv1, self.conv2):
            h = fastops.convolution_2d_relu_max_pooling_2d(
                h, conv.W, conv.b, pad=2, ksize=5, stride=2, pool_pad=2, layout="CWHN"
            )
        return fastops.from_cwhn(h)


def build_model(name: str, n_classes: int, fast: bool = True) -> chainer.Chain:
    """Return the classifier named in params (`train.model`)."""
    if name == "seed_cnn":
        return SeedCNN(n_classes, fast=fast)
    raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")
