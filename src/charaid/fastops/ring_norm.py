"""Batch normalization + relu in the ring layout (`charaid.fastops.ring_layout`): statistics over
the inside cells only, the ring kept at zero; compiled loops in `charaid.fastkernels`, the
rows split over the threads."""

from __future__ import annotations

import chainer
import chainer.functions as F
import numpy as np
from chainer import function_node

from charaid import fastkernels
from charaid.fastops.layout import _needs_grad
from charaid.fastops.ring_layout import aligned_empty, zero_ring
from charaid.fastops.threads import _split


def _rows(x: np.ndarray) -> int:
    """Inside rows of a ring map (pictures x height): what the kernels split over threads."""
    return x.shape[0] * (x.shape[1] - 2)


def _summed(kernel, x: np.ndarray, *args: np.ndarray) -> list[np.ndarray]:
    """kernel(x, *args, r0, r1, *totals) over row ranges split over the threads, each with its
    own two float64 totals per channel; the totals added in a fixed order."""
    c = x.shape[-1]

    def work(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.zeros(c, np.float64), np.zeros(c, np.float64)
        kernel(x, *args, lo, hi, a, b)
        return a, b

    parts = _split(work, _rows(x))
    return [sum(p[k] for p in parts[1:]) + parts[0][k] for k in range(2)]


def _tiled(x: np.ndarray, *per_channel: np.ndarray) -> list[np.ndarray]:
    """Per-channel numbers repeated along a row of x's inside (W * C, in x's dtype): the
    kernels walk each row as one flat run."""
    width = x.shape[2] - 2
    return [np.tile(np.asarray(v, x.dtype), width) for v in per_channel]


def _scale_shift_relu(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    y = zero_ring(aligned_empty(x.shape, x.dtype))
    at, bt = _tiled(x, a, b)
    _split(lambda lo, hi: fastkernels.ring_scale_shift_relu(x, at, bt, lo, hi, y), _rows(x))
    return y


class BatchNormReLURing(function_node.FunctionNode):
    """relu(batch_normalization(x, gamma, beta)), batch statistics over the inside cells. After
    forward, `mean` and `var` (biased, float64) hold them.

    The statistics take one pass over x: sums of x - pivot and of its square, `pivot` a guess
    of each channel's mean (the link's running mean), so the variance does not cancel in
    float32 without a second pass about the exact mean. The backward reads
    relu's mask off x (a * x + b > 0, with the forward's own float32 a and b), not off the
    output: two maps to read per pass instead of three. `m` is the number of inside cells."""

    def __init__(self, eps: float, pivot: np.ndarray | None = None) -> None:
        self.eps, self.pivot = eps, pivot

    def forward(self, inputs: tuple) -> tuple:
        x, gamma, beta = inputs
        self.m = m = _rows(x) * (x.shape[2] - 2)
        pivot = np.zeros(x.shape[-1]) if self.pivot is None else self.pivot
        pivot = pivot.astype(x.dtype)  # the sums' own rounding of it, added back to the mean
        d, dd = _summed(fastkernels.ring_sums, x, *_tiled(x, pivot))
        self.mean = pivot.astype(np.float64) + d / m
        self.var = np.maximum(dd / m - (d / m) ** 2, 0.0)
        scale = gamma / np.sqrt(self.var + self.eps)
        self.a = scale.astype(x.dtype)
        self.b = (beta - self.mean * scale).astype(x.dtype)
        self.retain_inputs((0, 1))
        return (_scale_shift_relu(x, self.a, self.b),)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        x, gamma = (v.array for v in self.get_retained_inputs())
        gy = grad_outputs[0].array
        m = self.m
        mean = self.mean.astype(x.dtype)
        a, b, mean_t = _tiled(x, self.a, self.b, mean)
        sg, sgx = _summed(fastkernels.ring_bn_relu_sums, gy, x, a, b, mean_t)
        # (x - float32 mean): re-centre on the exact mean's rounding
        sgx -= sg * (self.mean - mean.astype(np.float64))
        inv = 1.0 / np.sqrt(self.var + self.eps)
        k = gamma * inv
        # gx = k*g - k*mean(g) - k*inv^2*mean(g*(x-mean))*(x - mean), one multiply-add each
        kx = k * inv * inv * sgx / m
        k_g, k_x, k_0 = _tiled(x, k, kx, -k * sg / m + kx * self.mean)
        gx = zero_ring(aligned_empty(gy.shape, gy.dtype))
        _split(
            lambda lo, hi: fastkernels.ring_bn_relu_gx(gy, x, a, b, k_g, k_x, k_0, lo, hi, gx),
            _rows(x),
        )
        ggamma = (sgx * inv).astype(gy.dtype)
        return chainer.Variable(gx), chainer.Variable(ggamma), chainer.Variable(sg.astype(gy.dtype))


def batch_normalization_relu_ring(
    x: chainer.Variable, bn: chainer.links.BatchNormalization
) -> chainer.Variable:
    """`F.relu(bn(x))` on a ring-layout map, updating bn's running statistics as Chainer's link
    does in training (decay, unbiased variance)."""
    if chainer.config.train:
        node = BatchNormReLURing(bn.eps, bn.avg_mean)
        (y,) = node.apply((x, bn.gamma, bn.beta))
        m = node.m
        bn.avg_mean *= bn.decay
        bn.avg_mean += ((1 - bn.decay) * node.mean).astype(bn.avg_mean.dtype)
        bn.avg_var *= bn.decay
        unbiased = m / max(m - 1.0, 1.0) * node.var
        bn.avg_var += ((1 - bn.decay) * unbiased).astype(bn.avg_var.dtype)
        return y
    scale = bn.gamma.array / np.sqrt(bn.avg_var + bn.eps)
    shift = bn.beta.array - bn.avg_mean * scale
    if _needs_grad(x, bn.gamma, bn.beta):  # fixed statistics, gradients wanted: Chainer's own
        h = F.relu(F.fixed_batch_normalization(
            x, bn.gamma, bn.beta, bn.avg_mean, bn.avg_var, bn.eps, axis=(0, 1, 2)
        ))  # fmt: skip
        mask = zero_ring(np.ones(x.shape[:3] + (1,), x.dtype))
        return h * np.broadcast_to(mask, x.shape)
    xa = x.array if isinstance(x, chainer.Variable) else x
    return chainer.Variable(_scale_shift_relu(xa, scale, shift), requires_grad=False)
