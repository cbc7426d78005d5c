"""FaceNet: a CenterNet-style face detector small enough for a CPU.

A plain backbone of stride-2 3x3 convolutions (conv-BN-ReLU, one 3x3 block per level) down to
1/64, a top-down path that adds each level's 1x1 projection to the upsampled level below it
(FPN-style, so the stride-4 map also sees the whole face of a close-up), one 3x3 conv, and a 1x1
head with four maps at stride 4: face-centre logit, log of the box side in cells, and the centre's
sub-cell offset (x, y). Boxes are squares, the convention of every detector in charaid.

With `fast` the same maths runs through charaid's CPU kernels in the ring layout
(`charaid.fastops.ring_*`: channels innermost, a zero ring around each map, so a 3x3
convolution is nine shifted GEMMs with no patch matrix); otherwise through plain Chainer
functions (NCHW), for comparison and for GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from charaid import fastops

STRIDE = 4  # output map stride
ALIGN = 64  # input sides must be multiples of the deepest level's stride
HEAT, SIZE, OFFSET_X, OFFSET_Y = range(4)  # head channels
PRIOR = 0.01  # initial face probability per cell (CenterNet's focal-loss start)
T = TypeVar("T")  # a map: a chainer.Variable in the net, a numpy array when folded


def trunk(h: T, levels: int, cbr: Callable[[str, T], T], add_up: Callable[[T, T], T]) -> T:
    """FaceNet's wiring from the input to the smoothed stride-4 map, whatever runs each
    conv-BN-ReLU pair (`cbr(name, h)`) and each top-down sum (`add_up(lateral, coarser)`, the
    coarser map upsampled 2x): the net and its folded inference form
    (`charaid.detector.folded`) share it."""
    h = cbr("stem", h)
    feats = []
    for i in range(1, levels + 1):
        h = cbr(f"block{i}", cbr(f"down{i}", h))
        feats.append(h)
    p = cbr(f"lat{levels}", feats[-1])
    for i in range(levels - 1, 0, -1):
        p = add_up(cbr(f"lat{i}", feats[i - 1]), p)
    return cbr("smooth", p)


class FaceNet(chainer.Chain):
    """(N, 3, H, W) float32 in [0, 1] -> (N, 4, H/4, W/4) raw head maps (H, W multiples of 64)."""

    def __init__(
        self, widths: tuple[int, ...] = (16, 32, 64, 96, 128, 128), neck: int = 32, fast=True
    ) -> None:
        super().__init__()
        self.widths, self.neck, self.fast = tuple(widths), neck, fast
        with self.init_scope():
            self.stem = L.Convolution2D(3, widths[0], 3, stride=2, pad=1, nobias=True)
            self.stem_bn = L.BatchNormalization(widths[0])
            for i in range(1, len(widths)):
                setattr(self, f"down{i}", L.Convolution2D(widths[i - 1], widths[i], 3, 2, 1, True))
                setattr(self, f"down{i}_bn", L.BatchNormalization(widths[i]))
                setattr(self, f"block{i}", L.Convolution2D(widths[i], widths[i], 3, 1, 1, True))
                setattr(self, f"block{i}_bn", L.BatchNormalization(widths[i]))
                setattr(self, f"lat{i}", L.Convolution2D(widths[i], neck, 1, nobias=True))
                setattr(self, f"lat{i}_bn", L.BatchNormalization(neck))
            self.smooth = L.Convolution2D(neck, neck, 3, pad=1, nobias=True)
            self.smooth_bn = L.BatchNormalization(neck)
            self.head = L.Convolution2D(neck, 4, 1)
        self.head.b.array[HEAT] = -np.log((1 - PRIOR) / PRIOR)

    @property
    def levels(self) -> int:
        return len(self.widths) - 1

    def _cbr(self, name: str, h: chainer.Variable) -> chainer.Variable:
        """conv -> batch norm -> ReLU through the link pair `name`, `name_bn`."""
        conv, bn = getattr(self, name), getattr(self, f"{name}_bn")
        if not self.fast:
            return F.relu(bn(conv(h)))
        h = fastops.convolution_ring(h, conv.W, conv.stride[0])
        return fastops.batch_normalization_relu_ring(h, bn)

    def _up(self, h: chainer.Variable) -> chainer.Variable:
        """Nearest-neighbour 2x upsampling."""
        if self.fast:
            return fastops.upsample_2x_ring(h)
        return F.repeat(F.repeat(h, 2, axis=2), 2, axis=3)

    def forward(self, x: chainer.Variable | np.ndarray) -> chainer.Variable:
        fast = self.fast and self.xp is np
        if self.fast != fast:  # on a GPU: Chainer's own functions
            self.fast = False
        h = fastops.to_ring(x) if self.fast else x
        p = trunk(h, self.levels, self._cbr, lambda lateral, coarse: lateral + self._up(coarse))
        if not self.fast:
            return self.head(p)
        y = fastops.from_ring(fastops.convolution_ring(p, self.head.W))
        return F.bias(y, self.head.b, axis=1)

    def describe(self) -> dict:
        return {"widths": list(self.widths), "neck": self.neck}
