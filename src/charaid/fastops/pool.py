"""Max pooling (cover_all=False) in the CWHN layout, as compiled loops (`charaid.fastkernels`,
numba): one pass over the map instead of Chainer's 6-D im2col and generic argmax. The pooling
keeps the winning tap (uint8) per output, ties going to the first in Chainer's (ky, kx) order,
and its backward scatters each gradient to that tap."""

from __future__ import annotations

import chainer
import numpy as np
from chainer import function_node

from charaid import fastkernels
from charaid.fastops.layout import _check_layout, _needs_grad, _out_len, _pair, from_cwhn, to_cwhn
from charaid.fastops.threads import _split


def _pooled_shape(shape: tuple, axis: int, k: int, s: int, p: int) -> tuple:
    out = list(shape)
    out[axis] = _out_len(shape[axis], k, s, p)
    return tuple(out)


def _max_pool(
    x: np.ndarray, k: tuple, s: tuple, p: tuple, need_arg: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """CWHN 2-D max pooling; k/s/p are (w, h) pairs. Returns the map and the winning taps."""
    out_shape = _pooled_shape(_pooled_shape(x.shape, 1, k[0], s[0], p[0]), 2, k[1], s[1], p[1])
    out = np.empty(out_shape, dtype=x.dtype)
    arg = np.empty(out_shape if need_arg else (0, 0, 0, 0), dtype=np.uint8)
    _split(
        lambda lo, hi: fastkernels.max_pool_fwd(
            x[lo:hi], *k, *s, *p, out[lo:hi], arg[lo:hi] if need_arg else arg, need_arg
        ),
        x.shape[0],
    )
    return out, (arg if need_arg else None)


def _unmax_pool(
    g: np.ndarray, arg: np.ndarray, in_shape: tuple, k: tuple, s: tuple, p: tuple
) -> np.ndarray:
    """Backward of `_max_pool`: each gradient goes to its window's winning input."""
    g = np.ascontiguousarray(g)
    if k == s and p == (0, 0):  # tiling windows (BNCNN's 2x2): each input cell written once
        covered = in_shape[1] == g.shape[1] * k[0] and in_shape[2] == g.shape[2] * k[1]
        gx = (np.empty if covered else np.zeros)(in_shape, dtype=g.dtype)
        _split(
            lambda lo, hi: fastkernels.max_pool_bwd_tiles(g[lo:hi], arg[lo:hi], *k, gx[lo:hi]),
            g.shape[0],
        )
        return gx
    gx = np.zeros(in_shape, dtype=g.dtype)
    _split(
        lambda lo, hi: fastkernels.max_pool_bwd(g[lo:hi], arg[lo:hi], k[0], *s, *p, gx[lo:hi]),
        g.shape[0],
    )
    return gx


class MaxPooling2DCWHN(function_node.FunctionNode):
    """Max pooling (cover_all=False) on CWHN input; k/s/p are (w, h) pairs."""

    def __init__(self, k: tuple, s: tuple, p: tuple, need_grad: bool = True) -> None:
        self.k, self.s, self.p = k, s, p
        self.need_grad = need_grad

    def forward(self, inputs: tuple) -> tuple:
        (x,) = inputs
        self._in_shape = x.shape
        y, self._arg = _max_pool(x, self.k, self.s, self.p, self.need_grad)
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        if self._arg is None:
            raise RuntimeError("forward ran without gradient bookkeeping (need_grad=False)")
        g = grad_outputs[0].array
        gx = _unmax_pool(g, self._arg, self._in_shape, self.k, self.s, self.p)
        return (chainer.Variable(gx),)


def max_pooling_2d(
    x: chainer.Variable | np.ndarray,
    ksize: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    pad: int | tuple[int, int] = 0,
    layout: str = "NCHW",
) -> chainer.Variable:
    """`F.max_pooling_2d(x, ksize, stride, pad, cover_all=False)`; (h, w) pairs like Chainer."""
    _check_layout(layout)
    kh, kw = _pair(ksize)
    sy, sx = _pair(ksize if stride is None else stride)
    ph, pw = _pair(pad)
    node = MaxPooling2DCWHN((kw, kh), (sx, sy), (pw, ph), _needs_grad(x))
    if layout == "NCHW":
        return from_cwhn(node.apply((to_cwhn(x),))[0])
    return node.apply((x,))[0]
