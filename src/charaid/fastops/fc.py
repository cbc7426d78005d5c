"""The linear (fully connected) layer `x @ W.T + b`, its GEMMs split over the threads.

Not named linear.py: the package re-exports the function `linear`, which would shadow a
submodule of that name (`import charaid.fastops.linear as m` would give the function).
"""

from __future__ import annotations

from collections.abc import Callable

import chainer
import chainer.functions as F
import numpy as np
from chainer import function_node

from charaid.fastops.blas import matmul
from charaid.fastops.threads import _split


class LinearThreaded(function_node.FunctionNode):
    """x @ W.T + b for 2-D x, its GEMMs split over the threads (output features forward and
    for dW, input features for dx). Inputs: x, W and optionally b."""

    def forward(self, inputs: tuple) -> tuple:
        x, w = inputs[:2]
        self.retain_inputs((0, 1))
        y = _gemm_split(lambda lo, hi: matmul(x, w[lo:hi].T), w.shape[0], 1, x.size * w.shape[0])
        if len(inputs) == 3:
            y += inputs[2]
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        x, w = (v.array for v in self.get_retained_inputs())
        gy = grad_outputs[0].array
        flops = gy.size * x.shape[1]
        out = []
        if 0 in indexes:
            gx = _gemm_split(lambda lo, hi: matmul(gy, w[:, lo:hi]), w.shape[1], 1, flops)
            out.append(chainer.Variable(gx))
        if 1 in indexes:
            gw = _gemm_split(lambda lo, hi: matmul(gy[:, lo:hi].T, x), w.shape[0], 0, flops)
            out.append(chainer.Variable(gw))
        if 2 in indexes:
            out.append(chainer.Variable(gy.sum(axis=0)))
        return tuple(out)


def _gemm_split(fn: Callable[[int, int], np.ndarray], n: int, axis: int, flops: int) -> np.ndarray:
    """fn's slices over [0, n) joined along `axis`; small products (under ~1 MFLOP) stay whole."""
    parts = _split(fn, n, grain=n if flops < 1 << 20 else 1)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


def linear(
    x: chainer.Variable | np.ndarray,
    W: chainer.Variable | np.ndarray,  # noqa: N803 (Chainer's name)
    b: chainer.Variable | np.ndarray | None = None,
) -> chainer.Variable:
    """`F.linear(x, W, b)` (x flattened after its first axis), its GEMMs on every thread."""
    if x.ndim != 2:
        x = F.reshape(x, (x.shape[0], -1))
    return LinearThreaded().apply((x, W) if b is None else (x, W, b))[0]
