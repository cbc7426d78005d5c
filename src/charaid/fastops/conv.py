"""Convolution in the CWHN layout: alone (`convolution_2d`, no bias: batch norm follows), with
bias and relu, or fused with relu and max pooling.

A convolution is the GEMM ``W(O, C*kw*kh) @ col(C*kw*kh, Wo*Ho*N)`` whose result is CWHN again.
It runs a few output columns at a time so that each chunk of `col` is built and consumed in
cache (the backward rebuilds the chunks instead of keeping a 40-50 MB patch matrix). col2im,
bias+relu and relu's backward are compiled loops (`charaid.fastkernels`, numba).

conv -> relu -> max-pool is fused as conv -> max-pool -> (+bias, relu): bias is a per-channel
constant and relu is monotone, so both commute with the max and run on the 4x smaller pooled
map; the relu mask is applied to the pooled gradient before it is scattered back.
"""

from __future__ import annotations

import chainer
import numpy as np
from chainer import function_node

from charaid import fastkernels
from charaid.fastops.layout import _check_layout, _needs_grad, _out_len, _pair, from_cwhn, to_cwhn
from charaid.fastops.pool import _max_pool, _unmax_pool
from charaid.fastops.threads import _by_channel, _split, get_num_threads

# patch-matrix chunk for the conv GEMMs: big enough for BLAS, small enough to stay in cache
_CHUNK_BYTES = 4 << 20


def _span(start: int, count: int, step: int) -> slice:
    return slice(start, start + step * (count - 1) + 1, step)


def _pad(x: np.ndarray, pw: int, ph: int) -> np.ndarray:
    c, w, h, n = x.shape
    xp = np.empty((c, w + 2 * pw, h + 2 * ph, n), dtype=x.dtype)
    # zero only the border: the interior is overwritten right away
    xp[:, :pw] = 0
    xp[:, pw + w :] = 0
    xp[:, pw : pw + w, :ph] = 0
    xp[:, pw : pw + w, ph + h :] = 0
    xp[:, pw : pw + w, ph : ph + h] = x
    return xp


def _im2col(
    xp: np.ndarray, kw: int, kh: int, sx: int, sy: int, ho: int, w0: int, out: np.ndarray
) -> np.ndarray:
    """Fill `out` (C, kw, kh, nw, Ho, N) with the patches of output columns w0..w0+nw.

    One slab copy per tap, each made of contiguous Ho*N runs (batch innermost).
    """
    nw = out.shape[3]
    for tap in range(kw * kh):
        kx, ky = divmod(tap, kh)
        out[:, kx, ky] = xp[:, _span(w0 * sx + kx, nw, sx), _span(ky, ho, sy)]
    return out


def _chunk_step(wo: int, k: int, row: int, itemsize: int, parts: int = 1) -> int:
    """Output columns per chunk: patch matrices of about _CHUNK_BYTES at most, in a number of
    chunks that `parts` threads share evenly (3 chunks on 2 threads would leave one idle for
    a third of the time: deep layers have maps only a few chunks wide)."""
    step = max(1, min(wo, _CHUNK_BYTES // (k * row * itemsize)))
    chunks = -(-wo // step)
    chunks = -(-chunks // parts) * parts
    return max(1, -(-wo // chunks))


def _conv_gemm(
    xp: np.ndarray, wmat: np.ndarray, kw: int, kh: int, stride: tuple, out_hw: tuple
) -> np.ndarray:
    """y (O, Wo, Ho, N) = W @ im2col(xp), a few output columns at a time.

    Each chunk's patch matrix (~_CHUNK_BYTES) is built and consumed while still in cache;
    measured ~2x faster than one big im2col + GEMM, and no patch matrix is kept. The chunks
    are split over the threads.
    """
    c, _, _, n = xp.shape
    (sx, sy), (wo, ho) = stride, out_hw
    o, k = wmat.shape
    y = np.empty((o, wo, ho, n), dtype=xp.dtype)
    y2 = y.reshape(o, -1)
    row = ho * n
    step = _chunk_step(wo, k, row, xp.itemsize, get_num_threads())
    starts = range(0, wo, step)

    def work(lo: int, hi: int) -> None:
        buf = np.empty((c, kw, kh, step, ho, n), dtype=xp.dtype)
        for w0 in starts[lo:hi]:
            nw = min(step, wo - w0)
            col = _im2col(xp, kw, kh, sx, sy, ho, w0, buf[:, :, :, :nw])
            np.matmul(wmat, col.reshape(k, -1), out=y2[:, w0 * row : (w0 + nw) * row])

    _split(work, len(starts))
    return y


def _conv_gemm_weight(
    xp: np.ndarray, g2: np.ndarray, kw: int, kh: int, stride: tuple, out_hw: tuple
) -> np.ndarray:
    """dL/dW as (O, C*kw*kh) = g2 @ im2col(xp).T, rebuilding the patches chunk by chunk (each
    thread sums its chunks; the threads' sums are added in a fixed order)."""
    c, _, _, n = xp.shape
    (sx, sy), (wo, ho) = stride, out_hw
    o, k = g2.shape[0], c * kw * kh
    row = ho * n
    step = _chunk_step(wo, k, row, xp.itemsize, get_num_threads())
    starts = range(0, wo, step)

    def work(lo: int, hi: int) -> np.ndarray:
        buf = np.empty((c, kw, kh, step, ho, n), dtype=xp.dtype)
        gw = np.zeros((o, k), dtype=g2.dtype)
        for w0 in starts[lo:hi]:
            nw = min(step, wo - w0)
            col = _im2col(xp, kw, kh, sx, sy, ho, w0, buf[:, :, :, :nw])
            gw += g2[:, w0 * row : (w0 + nw) * row] @ col.reshape(k, -1).T
        return gw

    parts = _split(work, len(starts))
    for part in parts[1:]:
        parts[0] += part
    return parts[0]


def _conv_gemm_input(
    g2: np.ndarray, wmat: np.ndarray, xp_shape: tuple, kw: int, kh: int, stride: tuple, ho: int
) -> np.ndarray:
    """dL/d(padded x) = col2im(W.T @ g2), a few output columns at a time (kept in cache). The
    input channels are split over the threads: each writes only its own channels."""
    c, wp, hp, n = xp_shape
    sx, sy = stride
    k = wmat.shape[1]
    taps = kw * kh
    row = ho * n
    wo = g2.shape[1] // row
    step = _chunk_step(wo, k, row, g2.itemsize)
    gxp = np.zeros((c, wp, hp, n), dtype=g2.dtype)
    wt = wmat.T

    def work(lo: int, hi: int) -> None:
        buf = np.empty(((hi - lo) * taps, step * row), dtype=g2.dtype)
        for w0 in range(0, wo, step):
            nw = min(step, wo - w0)
            gcol = np.matmul(
                wt[lo * taps : hi * taps], g2[:, w0 * row : (w0 + nw) * row], out=buf[:, : nw * row]
            )
            fastkernels.col2im_add(
                gcol.reshape(hi - lo, kw, kh, nw, ho, n), gxp[lo:hi], w0 * sx, sx, sy
            )

    _split(work, c)
    return gxp


def _weight_matrix(w: np.ndarray) -> np.ndarray:
    """Chainer's W (O, C, kh, kw) as the (O, C*kw*kh) matrix matching `_im2col`'s rows."""
    return np.ascontiguousarray(w.transpose(0, 1, 3, 2)).reshape(w.shape[0], -1)


def _conv_forward(x: np.ndarray, w: np.ndarray, pad: tuple, stride: tuple) -> tuple:
    """CWHN convolution without bias: (y, padded x, weight matrix) (the last two for backward)."""
    o, _, kh, kw = w.shape
    (pw, ph), (sx, sy) = pad, stride
    _, wd, hd, _ = x.shape
    wo, ho = _out_len(wd, kw, sx, pw), _out_len(hd, kh, sy, ph)
    xp = _pad(x, pw, ph)
    wmat = _weight_matrix(w)
    return _conv_gemm(xp, wmat, kw, kh, (sx, sy), (wo, ho)), xp, wmat


def _conv_backward(
    indexes: tuple,
    g: np.ndarray,
    x_shape: tuple,
    xp: np.ndarray,
    wmat: np.ndarray,
    k: tuple,
    pad: tuple,
    stride: tuple,
) -> tuple[chainer.Variable | None, chainer.Variable | None]:
    """Gradients of x and W (those asked for in `indexes`) from the conv output's gradient g."""
    (kw, kh), (pw, ph) = k, pad
    o, wo, ho = g.shape[:3]
    c = xp.shape[0]
    g2 = g.reshape(o, -1)
    gx = gw = None
    if 0 in indexes:
        gxp = _conv_gemm_input(g2, wmat, xp.shape, kw, kh, stride, ho)
        gx = chainer.Variable(gxp[:, pw : pw + x_shape[1], ph : ph + x_shape[2]])
    if 1 in indexes:
        gwm = _conv_gemm_weight(xp, g2, kw, kh, stride, (wo, ho)).reshape(o, c, kw, kh)
        gw = chainer.Variable(np.ascontiguousarray(gwm.transpose(0, 1, 3, 2)))
    return gx, gw


class Conv2DCWHN(function_node.FunctionNode):
    """conv(x, W) without bias or activation (batch norm follows), on CWHN input."""

    def __init__(self, pad: tuple, stride: tuple, need_grad: bool = True) -> None:
        self.pad, self.stride = pad, stride  # (w, h) pairs
        self.need_grad = need_grad

    def forward(self, inputs: tuple) -> tuple:
        x, w = inputs
        y, xp, wmat = _conv_forward(x, w, self.pad, self.stride)
        if self.need_grad:
            self._saved = (x.shape, xp, wmat, w.shape[3:1:-1])
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        if not self.need_grad:
            raise RuntimeError("forward ran without gradient bookkeeping (need_grad=False)")
        x_shape, xp, wmat, k = self._saved
        g = np.ascontiguousarray(grad_outputs[0].array)
        return _conv_backward(indexes, g, x_shape, xp, wmat, k, self.pad, self.stride)


class Conv2DReLUPoolCWHN(function_node.FunctionNode):
    """relu(conv(x, W) + b), optionally max-pooled, on CWHN input. Inputs: x, W, b."""

    def __init__(
        self,
        pad: tuple,
        stride: tuple,
        pool: tuple | None = None,
        need_grad: bool = True,
    ) -> None:
        self.pad, self.stride = pad, stride  # (w, h) pairs
        self.pool = pool  # ((kw, kh), (sw, sh), (pw, ph)) or None
        self.need_grad = need_grad

    def forward(self, inputs: tuple) -> tuple:
        x, w, b = inputs
        y, xp, wmat = _conv_forward(x, w, self.pad, self.stride)
        kw, kh = w.shape[3], w.shape[2]
        if self.pool is not None:
            z, arg = _max_pool(y, *self.pool, self.need_grad)
        else:
            z, arg = y, None
        # bias and relu after the pool: both commute with max, and the map is 4x smaller
        _by_channel(fastkernels.bias_relu, z, b)
        if self.need_grad:
            self._saved = (x.shape, xp, y.shape, wmat, (kw, kh), arg)
            self.retain_outputs((0,))
        return (z,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        if not self.need_grad:
            raise RuntimeError("forward ran without gradient bookkeeping (need_grad=False)")
        x_shape, xp, y_shape, wmat, (kw, kh), arg = self._saved
        (z,) = self.get_retained_outputs()
        g_out = np.ascontiguousarray(grad_outputs[0].array)
        g = np.empty_like(g_out)
        gb = np.concatenate(_by_channel(fastkernels.relu_grad_bias, g_out, z.array, g))
        if self.pool is not None:
            g = _unmax_pool(g, arg, y_shape, *self.pool)
        gx, gw = _conv_backward(indexes, g, x_shape, xp, wmat, (kw, kh), self.pad, self.stride)
        return gx, gw, chainer.Variable(gb)


def convolution_2d(
    x: chainer.Variable | np.ndarray,
    W: chainer.Variable | np.ndarray,  # noqa: N803 (Chainer's name)
    pad: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
    layout: str = "NCHW",
) -> chainer.Variable:
    """`F.convolution_2d(x, W, None, stride, pad)` (no bias: batch norm follows)."""
    _check_layout(layout)
    ph, pw = _pair(pad)
    sy, sx = _pair(stride)
    node = Conv2DCWHN((pw, ph), (sx, sy), _needs_grad(x, W))
    if layout == "NCHW":
        return from_cwhn(node.apply((to_cwhn(x), W))[0])
    return node.apply((x, W))[0]


def convolution_2d_relu(
    x: chainer.Variable | np.ndarray,
    W: chainer.Variable | np.ndarray,  # noqa: N803 (Chainer's name)
    b: chainer.Variable | np.ndarray,
    pad: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
    layout: str = "NCHW",
) -> chainer.Variable:
    """`F.relu(F.convolution_2d(x, W, b, stride, pad))`."""
    return _conv_relu_pool(x, W, b, pad, stride, None, layout)


def convolution_2d_relu_max_pooling_2d(
    x: chainer.Variable | np.ndarray,
    W: chainer.Variable | np.ndarray,  # noqa: N803 (Chainer's name)
    b: chainer.Variable | np.ndarray,
    pad: int | tuple[int, int],
    ksize: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    pool_pad: int | tuple[int, int] = 0,
    conv_stride: int | tuple[int, int] = 1,
    layout: str = "NCHW",
) -> chainer.Variable:
    """`F.max_pooling_2d(F.relu(F.convolution_2d(x, W, b, conv_stride, pad)), ksize, stride,
    pool_pad, cover_all=False)` in one node."""
    kh, kw = _pair(ksize)
    sy, sx = _pair(ksize if stride is None else stride)
    ph, pw = _pair(pool_pad)
    pool = ((kw, kh), (sx, sy), (pw, ph))
    return _conv_relu_pool(x, W, b, pad, conv_stride, pool, layout)


def _conv_relu_pool(x, W, b, pad, stride, pool, layout: str) -> chainer.Variable:  # noqa: N803
    _check_layout(layout)
    ph, pw = _pair(pad)
    sy, sx = _pair(stride)
    node = Conv2DReLUPoolCWHN((pw, ph), (sx, sy), pool, _needs_grad(x, W, b))
    if layout == "NCHW":
        return from_cwhn(node.apply((to_cwhn(x), W, b))[0])
    return node.apply((x, W, b))[0]
