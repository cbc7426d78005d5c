"""FaceNet for inference: batch norm folded into the convolutions, no Chainer graph.

At inference a batch norm is a fixed per-channel scale and shift. The scale folds into its
convolution's weights and the shift becomes a bias, which each convolution adds, with the
ReLU, to every chunk of its output while the chunk is still in cache
(`charaid.fastops.ring_conv`). That removes a full pass over every map, the per-call weight
re-layouts and Chainer's graph bookkeeping. With the small-map changes of `ring_conv`, one
320x512 frame on 2 threads took 10.8 ms instead of 15.8 (bench/README.md, "Detector inference
with batch norm folded in").

`fold(net)` snapshots the weights: fold again after they change (train_detector's validation
does, each time it scores).
"""

from __future__ import annotations

import numpy as np

from charaid.detector.net import FaceNet, trunk
from charaid.fastops.ring_conv import (
    conv1x1,
    conv3x3,
    conv3x3_s2,
    matrix_1x1,
    matrix_3x3_s2,
    taps_3x3,
)
from charaid.fastops.ring_layout import nchw_from_ring, ring_from_nchw
from charaid.fastops.upsample import add_upsampled


class FoldedFaceNet:
    """`fold(net)`: (N, 3, H, W) float32 in [0, 1] -> (N, 4, H/4, W/4) raw head maps, as
    `net` in inference mode (`chainer.config.train` False) gives them, to float32 rounding."""

    def __init__(self, layers: dict[str, tuple[np.ndarray, np.ndarray]], levels: int) -> None:
        self.layers, self.levels = layers, levels

    def _cbr(self, name: str, h: np.ndarray) -> np.ndarray:
        w, b = self.layers[name]
        if name == "stem" or name.startswith("down"):
            return conv3x3_s2(h, w, b)[0]
        return conv1x1(h, w, b) if name.startswith("lat") else conv3x3(h, w, b)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        p = trunk(ring_from_nchw(np.asarray(x, np.float32)), self.levels, self._cbr, add_upsampled)
        w, b = self.layers["head"]
        y = nchw_from_ring(conv1x1(p, w))
        y += b[:, None, None]
        return y


def _folded(conv, bn) -> tuple[np.ndarray, np.ndarray]:
    """(W * scale, beta - mean * scale) in float32, scale = gamma / sqrt(var + eps): the
    conv-BN pair as one convolution with a bias."""
    scale = bn.gamma.array.astype(np.float64) / np.sqrt(bn.avg_var.astype(np.float64) + bn.eps)
    shift = bn.beta.array - bn.avg_mean * scale
    w = conv.W.array * scale[:, None, None, None]
    return w.astype(np.float32), shift.astype(np.float32)


def fold(net: FaceNet) -> FoldedFaceNet:
    """The inference network of `net`'s current weights (CPU, numpy arrays)."""
    names = ["stem", "smooth"]
    for i in range(1, net.levels + 1):
        names += [f"down{i}", f"block{i}", f"lat{i}"]
    layers = {}
    for name in names:
        w, b = _folded(getattr(net, name), getattr(net, f"{name}_bn"))
        if name == "stem" or name.startswith("down"):
            layers[name] = matrix_3x3_s2(w), b
        elif name.startswith("lat"):
            layers[name] = matrix_1x1(w), b
        else:
            layers[name] = taps_3x3(w), b
    layers["head"] = matrix_1x1(net.head.W.array), net.head.b.array.astype(np.float32)
    return FoldedFaceNet(layers, net.levels)
