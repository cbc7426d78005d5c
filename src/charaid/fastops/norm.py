"""Batch normalization + relu in the CWHN layout (channels on axis 0), as BNCNN chains it: batch
statistics and compiled forward/backward loops in training (`charaid.fastkernels`), Chainer's
fixed batch norm when gradients are wanted with fixed statistics, one scale-shift-relu pass in
inference."""

from __future__ import annotations

import chainer
import chainer.functions as F
import numpy as np
from chainer import function_node

from charaid import fastkernels
from charaid.fastops.layout import _needs_grad
from charaid.fastops.threads import _by_channel, _split


class BatchNormReLUCWHN(function_node.FunctionNode):
    """relu(batch_normalization(x, gamma, beta)) with batch statistics over (W, H, N), on CWHN
    input. After forward, `mean` and `var` (biased) hold the batch statistics."""

    def __init__(self, eps: float) -> None:
        self.eps = eps

    def forward(self, inputs: tuple) -> tuple:
        x, gamma, beta = inputs
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        self.mean = np.empty(x.shape[0], np.float64)
        self.var = np.empty(x.shape[0], np.float64)
        _split(
            lambda lo, hi: fastkernels.bn_relu_fwd(
                x[lo:hi],
                gamma[lo:hi],
                beta[lo:hi],
                self.eps,
                y[lo:hi],
                self.mean[lo:hi],
                self.var[lo:hi],
            ),
            x.shape[0],
        )
        self._x = x
        self.retain_inputs((1,))
        self.retain_outputs((0,))
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        (gamma,) = self.get_retained_inputs()
        (y,) = self.get_retained_outputs()
        gy = np.ascontiguousarray(grad_outputs[0].array)
        gx = np.empty_like(gy)
        ggamma = np.empty(gamma.shape, gy.dtype)
        gbeta = np.empty(gamma.shape, gy.dtype)
        ga, x, ya = gamma.array, self._x, y.array
        _split(
            lambda lo, hi: fastkernels.bn_relu_bwd(
                gy[lo:hi],
                x[lo:hi],
                ya[lo:hi],
                ga[lo:hi],
                self.mean[lo:hi],
                self.var[lo:hi],
                self.eps,
                gx[lo:hi],
                ggamma[lo:hi],
                gbeta[lo:hi],
            ),
            gy.shape[0],
        )
        return chainer.Variable(gx), chainer.Variable(ggamma), chainer.Variable(gbeta)


def batch_normalization_relu(x: chainer.Variable, bn: chainer.links.BatchNormalization):
    """`F.relu(bn(x))` for a CWHN `x` (channels on axis 0), updating bn's running statistics
    as Chainer's link does in training (decay, unbiased variance)."""
    if chainer.config.train:
        node = BatchNormReLUCWHN(bn.eps)
        (y,) = node.apply((x, bn.gamma, bn.beta))
        m = x.size // x.shape[0]
        decay = bn.decay
        bn.avg_mean *= decay
        bn.avg_mean += ((1 - decay) * node.mean).astype(bn.avg_mean.dtype)
        bn.avg_var *= decay
        bn.avg_var += ((1 - decay) * m / max(m - 1.0, 1.0) * node.var).astype(bn.avg_var.dtype)
        return y
    if _needs_grad(x, bn.gamma, bn.beta):  # fixed statistics but gradients wanted: Chainer's
        h = F.fixed_batch_normalization(
            x, bn.gamma, bn.beta, bn.avg_mean, bn.avg_var, bn.eps, axis=(1, 2, 3)
        )
        return F.relu(h)
    scale = bn.gamma.array / np.sqrt(bn.avg_var + bn.eps)
    shift = bn.beta.array - bn.avg_mean * scale
    xa = np.ascontiguousarray(x.array if isinstance(x, chainer.Variable) else x)
    y = np.empty_like(xa)
    _by_channel(fastkernels.scale_shift_relu, xa, scale, shift, y)
    return chainer.Variable(y, requires_grad=False)
