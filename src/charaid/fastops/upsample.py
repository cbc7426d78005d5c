"""Nearest-neighbour 2x upsampling in the CWHN layout, as one node.

`F.repeat` twice (the plain path) makes two nodes, and each backward sums through a generic
reduction over a strided axis (~5x slower at batch 8); here the backward adds the four copies of
each cell as two passes over contiguous runs.
"""

from __future__ import annotations

import chainer
import numpy as np
from chainer import function_node

from charaid.fastops.layout import _check_layout, from_cwhn, to_cwhn


class Upsample2xCWHN(function_node.FunctionNode):
    """(C, W, H, N) -> (C, 2W, 2H, N), each cell repeated in a 2x2 block."""

    def forward(self, inputs: tuple) -> tuple:
        (x,) = inputs
        # np.repeat's own loop: a 6-D broadcast copy crawls when the batch (innermost) is 1
        return (np.repeat(np.repeat(x, 2, axis=2), 2, axis=1),)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        g = grad_outputs[0].array
        c, w2, h2, n = g.shape
        # the two columns of each pair first (contiguous H*N runs), then the two rows: a fixed
        # order of additions, and no reduction over a strided axis
        cols = g.reshape(c, w2 // 2, 2, h2 * n)
        s = (cols[:, :, 0] + cols[:, :, 1]).reshape(c, w2 // 2, h2 // 2, 2, n)
        return (chainer.Variable(s[:, :, :, 0] + s[:, :, :, 1]),)


def upsample_2x(x: chainer.Variable | np.ndarray, layout: str = "NCHW") -> chainer.Variable:
    """Nearest-neighbour 2x upsampling (`F.repeat` by 2 along both spatial axes)."""
    _check_layout(layout)
    if layout == "NCHW":
        return from_cwhn(Upsample2xCWHN().apply((to_cwhn(x),))[0])
    return Upsample2xCWHN().apply((x,))[0]
