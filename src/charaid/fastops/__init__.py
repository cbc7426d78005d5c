"""Fast CPU kernels for SeedCNN's layers, as Chainer `FunctionNode`s (forward and backward).

Chainer 7's CPU path builds a 6-D im2col for every convolution *and* every max-pooling and
reduces it with a generic argmax; on a small CPU that is most of the training time. These
kernels compute the same functions with a layout chosen for numpy:

* Internal layout "CWHN" (channels, width, height, batch). The batch is innermost, so every
  spatial shift or stride-2 slice copies contiguous runs of N (or H*N) floats, and a
  convolution is the GEMM ``W(O, C*kw*kh) @ col(C*kw*kh, Wo*Ho*N)`` whose result is CWHN again.
  It runs a few output columns at a time so that each chunk of `col` is built and consumed in
  cache (the backward rebuilds the chunks instead of keeping a 40-50 MB patch matrix).
* Max pooling, col2im, bias+relu and relu's backward are compiled loops
  (`charaid.fastkernels`, numba): one pass over the map instead of numpy's pass per tap. The
  pooling keeps the winning tap (uint8) per output, ties going to the first in Chainer's
  (ky, kx) order, and its backward scatters each gradient to that tap.
* conv -> relu -> max-pool is fused as conv -> max-pool -> (+bias, relu): bias is a per-channel
  constant and relu is monotone, so both commute with the max and run on the 4x smaller pooled
  map; the relu mask is applied to the pooled gradient before it is scattered back.

* Every kernel splits its own work over the cores (`set_num_threads`; default: all of them):
  a convolution's output-column chunks (or, for the input gradient, its input channels), a
  pooling's channels, a linear layer's features, a parameter's elements. Each thread runs
  single-threaded BLAS on its part, so the copies, pooling and Adam run in parallel too, not
  only the GEMMs, and no BLAS thread spins waiting for the next call.

The public functions take "NCHW" (Chainer's layout) or "CWHN"; models chain CWHN layers and
convert once at each end (`to_cwhn`, `from_cwhn`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import chainer
import chainer.functions as F
import numpy as np
import threadpoolctl
from chainer import function_node

from charaid import fastkernels

LAYOUTS = ("NCHW", "CWHN")
T = TypeVar("T")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4

_allocator_tuned = False

# patch-matrix chunk for the conv GEMMs: big enough for BLAS, small enough to stay in cache
_CHUNK_BYTES = 4 << 20


def tune_allocator() -> bool:
    """Make glibc keep freed memory so that per-iteration numpy buffers reuse warm pages.

    Fresh multi-megabyte arrays are mmap'd and page-faulted on every touch; kept heap memory
    fills ~4x faster. Raising M_MMAP_THRESHOLD is capped at 32 MB by glibc (inference at batch
    256 allocates 40 MB maps), so mmap is switched off instead. Returns True if mallopt
    accepted the settings (False on non-glibc, where this is a no-op).
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = (
        (_M_MMAP_MAX, 0),  # never mmap: big arrays come from the (kept) heap
        (_M_TRIM_THRESHOLD, 1 << 30),  # never give freed heap back to the OS
        (_M_TOP_PAD, 64 << 20),  # grow the heap in large steps
    )
    _allocator_tuned = all(mallopt(param, value) == 1 for param, value in settings)
    return _allocator_tuned


# ---------------------------------------------------------------------------------------------
# threads: every kernel splits its own work (a convolution's output-column chunks or input
# channels, a pooling's channels, a parameter's elements) over `_n_threads` threads, each
# running single-threaded BLAS on its part. Measured on the 2-core reference VM: OpenBLAS's own
# 2-thread GEMMs swung between 70 and 160 ms per SeedCNN update (its workers spin and wait for
# each other between calls), single-threaded BLAS held 96-116 ms, and splitting the whole layer
# (copies, pooling and Adam too, not only the GEMMs) over two threads beat both.

_n_threads: int | None = None  # None: every core this process may use
_executor: ThreadPoolExecutor | None = None
_blas_limit: threadpoolctl.threadpool_limits | None = None
_setup_lock = threading.Lock()  # `serve` threads may make their first split at the same time


def default_num_threads() -> int:
    """The cores this process may run on, capped by OMP_NUM_THREADS when that is set (the
    usual knob: `train.processes` sets it to 1 for each MPI process)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else cores


def get_num_threads() -> int:
    """Threads the kernels split their work over (default: every core this process may use)."""
    return default_num_threads() if _n_threads is None else _n_threads


def set_num_threads(n: int | None) -> None:
    """Threads the kernels split their work over; None: every core. With 1, everything runs
    in the calling thread and BLAS keeps its own threads."""
    global _n_threads, _executor, _blas_limit
    if n is not None and n < 1:
        raise ValueError("need at least one thread")
    if _executor is not None:
        _executor.shutdown()
        _executor = None
    if _blas_limit is not None:
        _blas_limit.restore_original_limits()
        _blas_limit = None
    _n_threads = n


def _forget_executor() -> None:
    global _executor
    _executor = None  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def _split(fn: Callable[[int, int], T], n: int, grain: int = 1) -> list[T]:
    """fn(lo, hi) over [0, n) in up to `get_num_threads()` contiguous slices of at least
    `grain`; returns the slices' results in order. The caller runs the first slice.

    Once work is split, BLAS stays single-threaded (until `set_num_threads`): each of our
    threads runs its own GEMMs, and BLAS threads on top would only fight them.
    """
    global _executor, _blas_limit
    threads = get_num_threads()
    k = min(threads, n // grain)
    if k <= 1:
        return [fn(0, n)]
    with _setup_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(threads - 1, thread_name_prefix="fastops")
        if _blas_limit is None:
            _blas_limit = threadpoolctl.threadpool_limits(1, user_api="blas")
    bounds = [n * i // k for i in range(k + 1)]
    futures = [_executor.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, k)]
    try:
        first = fn(bounds[0], bounds[1])
    finally:
        rest = [f.result() for f in futures]
    return [first, *rest]


def _by_channel(kernel: Callable[..., T], *arrays: np.ndarray) -> list[T]:
    """kernel(*slices) over slices of `arrays` along axis 0 (channels), split over threads;
    the slices' results in order."""
    return _split(lambda lo, hi: kernel(*(a[lo:hi] for a in arrays)), arrays[0].shape[0])


# ---------------------------------------------------------------------------------------------
# layout helpers


def to_cwhn(x: chainer.Variable | np.ndarray) -> chainer.Variable:
    """NCHW -> CWHN (a view; the next layer's padding copy makes it contiguous)."""
    return F.transpose(x, (1, 3, 2, 0))


def from_cwhn(x: chainer.Variable | np.ndarray) -> chainer.Variable:
    """CWHN -> NCHW."""
    return F.transpose(x, (3, 0, 2, 1))


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _out_len(size: int, k: int, s: int, p: int) -> int:
    """Output length with cover_all=False (Chainer's and PyTorch's floor rule)."""
    return (size + 2 * p - k) // s + 1


def _span(start: int, count: int, step: int) -> slice:
    return slice(start, start + step * (count - 1) + 1, step)


# ---------------------------------------------------------------------------------------------
# convolution kernels (CWHN)


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


# ---------------------------------------------------------------------------------------------
# max-pooling (compiled loops in charaid.fastkernels)


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
    gx = np.zeros(in_shape, dtype=g.dtype)
    g = np.ascontiguousarray(g)
    _split(
        lambda lo, hi: fastkernels.max_pool_bwd(g[lo:hi], arg[lo:hi], k[0], *s, *p, gx[lo:hi]),
        g.shape[0],
    )
    return gx


# ---------------------------------------------------------------------------------------------
# FunctionNodes (CWHN)


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


class LinearThreaded(function_node.FunctionNode):
    """x @ W.T + b for 2-D x, its GEMMs split over the threads (output features forward and
    for dW, input features for dx). Inputs: x, W and optionally b."""

    def forward(self, inputs: tuple) -> tuple:
        x, w = inputs[:2]
        self.retain_inputs((0, 1))
        y = _gemm_split(lambda lo, hi: x @ w[lo:hi].T, w.shape[0], 1, x.size * w.shape[0])
        if len(inputs) == 3:
            y += inputs[2]
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        x, w = (v.array for v in self.get_retained_inputs())
        gy = grad_outputs[0].array
        flops = gy.size * x.shape[1]
        out = []
        if 0 in indexes:
            gx = _gemm_split(lambda lo, hi: gy @ w[:, lo:hi], w.shape[1], 1, flops)
            out.append(chainer.Variable(gx))
        if 1 in indexes:
            gw = _gemm_split(lambda lo, hi: gy[:, lo:hi].T @ x, w.shape[0], 0, flops)
            out.append(chainer.Variable(gw))
        if 2 in indexes:
            out.append(chainer.Variable(gy.sum(axis=0)))
        return tuple(out)


def _gemm_split(fn: Callable[[int, int], np.ndarray], n: int, axis: int, flops: int) -> np.ndarray:
    """fn's slices over [0, n) joined along `axis`; small products (under ~1 MFLOP) stay whole."""
    parts = _split(fn, n, grain=n if flops < 1 << 20 else 1)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


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


# ---------------------------------------------------------------------------------------------
# public functions


def _needs_grad(*inputs: chainer.Variable | np.ndarray) -> bool:
    return chainer.config.enable_backprop and any(
        isinstance(v, chainer.Variable) and v.requires_grad for v in inputs
    )


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


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


def linear(
    x: chainer.Variable | np.ndarray,
    W: chainer.Variable | np.ndarray,  # noqa: N803 (Chainer's name)
    b: chainer.Variable | np.ndarray | None = None,
) -> chainer.Variable:
    """`F.linear(x, W, b)` (x flattened after its first axis), its GEMMs on every thread."""
    if x.ndim != 2:
        x = F.reshape(x, (x.shape[0], -1))
    return LinearThreaded().apply((x, W) if b is None else (x, W, b))[0]


# ---------------------------------------------------------------------------------------------
# optimizer


class _FastAdamRule(chainer.optimizers.adam.AdamRule):
    """AdamRule whose CPU update is one compiled pass; other cases fall back to Chainer's."""

    def update_core_cpu(self, param: chainer.Parameter) -> None:
        hp = self.hyperparam
        grad, data = param.grad, param.data
        plain = not (hp.amsgrad or hp.adabound)
        if grad is None or not plain or data.dtype != np.float32 or not data.flags.c_contiguous:
            super().update_core_cpu(param)
            return
        self._check_eps(np.float32)
        flat = [
            a.reshape(-1)
            for a in (data, np.ascontiguousarray(grad), self.state["m"], self.state["v"])
        ]
        hyper = (
            1.0 - hp.beta1,
            1.0 - hp.beta2,
            self.alpha_t,
            hp.eps,
            hp.eta,
            1.0 - hp.eta * hp.weight_decay_rate,
        )
        _split(
            lambda lo, hi: fastkernels.adam_update(*(a[lo:hi] for a in flat), *hyper),
            data.size,
            grain=1 << 16,  # threads only pay on the big weight matrices
        )


class FastAdam(chainer.optimizers.Adam):
    """`chainer.optimizers.Adam` with a one-pass CPU update (same state, so snapshots match)."""

    def create_update_rule(self) -> chainer.UpdateRule:
        return _FastAdamRule(self.hyperparam)


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
