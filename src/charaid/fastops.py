"""Fast CPU kernels for SeedCNN's layers, as Chainer `FunctionNode`s (forward and backward).

Chainer 7's CPU path builds a 6-D im2col for every convolution *and* every max-pooling and
reduces it with a generic argmax; on a small CPU that is most of the training time. These
kernels compute the same functions with a layout chosen for numpy:

* Internal layout "CWHN" (channels, width, height, batch). The batch is innermost, so every
  spatial shift or stride-2 slice copies contiguous runs of N (or H*N) floats, and a
  convolution is the GEMM ``W(O, C*kw*kh) @ col(C*kw*kh, Wo*Ho*N)`` whose result is CWHN again.
  It runs a few output columns at a time so that each chunk of `col` is built and consumed in
  cache (the backward rebuilds the chunks instead of keeping a 40-50 MB patch matrix).
* Max pooling is separable: a max over the kw taps along W, then over the kh taps along H,
  keeping the winning tap (uint8) per stage. W goes first so that ties resolve to the first
  maximum in Chainer's (ky, kx) order; W is the outer spatial axis so that first pass runs over
  long contiguous rows. The backward scatters gradients tap by tap through those indices.
* conv -> relu -> max-pool is fused as conv -> max-pool -> (+bias, relu): bias is a per-channel
  constant and relu is monotone, so both commute with the max and run on the 4x smaller pooled
  map; the relu mask is applied to the pooled gradient before it is scattered back.

* numpy's copies, maxima and adds run on one core while BLAS uses all; they release the GIL,
  so they can be split by channel (or tap) over a small thread pool (`set_num_threads`; off by
  default, as it did not pay on the 2-core reference machine).

The public functions take "NCHW" (Chainer's layout) or "CWHN"; models chain CWHN layers and
convert once at each end (`to_cwhn`, `from_cwhn`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import chainer
import chainer.functions as F
import numpy as np
from chainer import function_node

LAYOUTS = ("NCHW", "CWHN")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4

_allocator_tuned = False

# patch-matrix chunk for the conv GEMMs: big enough for BLAS, small enough to stay in cache
_CHUNK_BYTES = 4 << 20
# channels pooled together: the ~10 passes of a pooling stage then hit L2, not L3 (-20%)
_POOL_BLOCK_BYTES = 512 << 10


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
# threads: BLAS already uses every core for the GEMMs, but numpy's copies, maxima and adds run
# on one. They release the GIL, so they can be split by channel (or tap) over a few threads.
# Off by default: on the shared 2-core reference VM the split measured 0-10% *slower* (the
# other core is rarely free, and OpenBLAS's workers spin on it between GEMMs).

_n_threads = 1
_executor: ThreadPoolExecutor | None = None


def get_num_threads() -> int:
    """Threads used for the numpy (non-BLAS) parts of the kernels."""
    return _n_threads


def set_num_threads(n: int) -> None:
    """Threads for the numpy (non-BLAS) parts; 1 runs everything in the calling thread."""
    global _n_threads, _executor
    if n < 1:
        raise ValueError("need at least one thread")
    if _executor is not None:
        _executor.shutdown()
        _executor = None
    _n_threads = n


def _forget_executor() -> None:
    global _executor
    _executor = None  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def _split(fn: Callable[[int, int], None], n: int) -> None:
    """Run fn(lo, hi) over [0, n) in up to `_n_threads` slices; the caller takes the first."""
    global _executor
    k = min(_n_threads, n)
    if k <= 1:
        fn(0, n)
        return
    if _executor is None:
        _executor = ThreadPoolExecutor(_n_threads - 1, thread_name_prefix="fastops")
    bounds = [n * i // k for i in range(k + 1)]
    futures = [_executor.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, k)]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()


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


def _axis(ndim: int, axis: int, index: slice) -> tuple[slice, ...]:
    key = [slice(None)] * ndim
    key[axis] = index
    return tuple(key)


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

    def copy(lo: int, hi: int) -> None:
        for tap in range(lo, hi):
            kx, ky = divmod(tap, kh)
            out[:, kx, ky] = xp[:, _span(w0 * sx + kx, nw, sx), _span(ky, ho, sy)]

    _split(copy, kw * kh)
    return out


def _conv_gemm(
    xp: np.ndarray, wmat: np.ndarray, kw: int, kh: int, stride: tuple, out_hw: tuple
) -> np.ndarray:
    """y (O, Wo, Ho, N) = W @ im2col(xp), a few output columns at a time.

    Each chunk's patch matrix (~_CHUNK_BYTES) is built and consumed while still in cache;
    measured ~2x faster than one big im2col + GEMM, and no patch matrix is kept.
    """
    c, _, _, n = xp.shape
    (sx, sy), (wo, ho) = stride, out_hw
    o, k = wmat.shape
    y = np.empty((o, wo, ho, n), dtype=xp.dtype)
    y2 = y.reshape(o, -1)
    row = ho * n
    step = max(1, min(wo, _CHUNK_BYTES // (k * row * xp.itemsize)))
    buf = np.empty((c, kw, kh, step, ho, n), dtype=xp.dtype)
    for w0 in range(0, wo, step):
        nw = min(step, wo - w0)
        col = _im2col(xp, kw, kh, sx, sy, ho, w0, buf[:, :, :, :nw])
        np.matmul(wmat, col.reshape(k, -1), out=y2[:, w0 * row : (w0 + nw) * row])
    return y


def _conv_gemm_weight(
    xp: np.ndarray, g2: np.ndarray, kw: int, kh: int, stride: tuple, out_hw: tuple
) -> np.ndarray:
    """dL/dW as (O, C*kw*kh) = g2 @ im2col(xp).T, rebuilding the patches chunk by chunk."""
    c, _, _, n = xp.shape
    (sx, sy), (wo, ho) = stride, out_hw
    o, k = g2.shape[0], c * kw * kh
    row = ho * n
    step = max(1, min(wo, _CHUNK_BYTES // (k * row * xp.itemsize)))
    buf = np.empty((c, kw, kh, step, ho, n), dtype=xp.dtype)
    gw = np.zeros((o, k), dtype=g2.dtype)
    for w0 in range(0, wo, step):
        nw = min(step, wo - w0)
        col = _im2col(xp, kw, kh, sx, sy, ho, w0, buf[:, :, :, :nw])
        gw += g2[:, w0 * row : (w0 + nw) * row] @ col.reshape(k, -1).T
    return gw


def _conv_gemm_input(
    g2: np.ndarray, wmat: np.ndarray, xp_shape: tuple, kw: int, kh: int, stride: tuple, ho: int
) -> np.ndarray:
    """dL/d(padded x) = col2im(W.T @ g2), a few output columns at a time (kept in cache)."""
    c, wp, hp, n = xp_shape
    sx, sy = stride
    k = wmat.shape[1]
    row = ho * n
    wo = g2.shape[1] // row
    step = max(1, min(wo, _CHUNK_BYTES // (k * row * g2.itemsize)))
    buf = np.empty((k, step * row), dtype=g2.dtype)
    gxp = np.zeros((c, wp, hp, n), dtype=g2.dtype)
    for w0 in range(0, wo, step):
        nw = min(step, wo - w0)
        gcol = np.matmul(wmat.T, g2[:, w0 * row : (w0 + nw) * row], out=buf[:, : nw * row])
        _col2im(gcol.reshape(c, kw, kh, nw, ho, n), gxp, w0 * sx, sx, sy)
    return gxp


def _col2im(gcol: np.ndarray, gxp: np.ndarray, x0: int, sx: int, sy: int) -> None:
    """gxp[:, x0 + kx + sx*w, ky + sy*h] += gcol[:, kx, ky, w, h], split over channels."""
    _, kw, kh, nw, ho, _ = gcol.shape

    def add(lo: int, hi: int) -> None:
        for kx in range(kw):
            for ky in range(kh):
                dst = gxp[lo:hi, _span(x0 + kx, nw, sx), _span(ky, ho, sy)]
                dst += gcol[lo:hi, kx, ky]

    _split(add, gcol.shape[0])


def _weight_matrix(w: np.ndarray) -> np.ndarray:
    """Chainer's W (O, C, kh, kw) as the (O, C*kw*kh) matrix matching `_im2col`'s rows."""
    return np.ascontiguousarray(w.transpose(0, 1, 3, 2)).reshape(w.shape[0], -1)


# ---------------------------------------------------------------------------------------------
# max-pooling kernels (any layout: one axis at a time)


def _taps(size: int, out: int, k: int, s: int, p: int) -> Iterator[tuple[int, int, int, int]]:
    """(tap, first output, end output, first input) for every tap that hits real input."""
    for t in range(k):
        lo = max(0, -((t - p) // s))  # ceil((p - t) / s)
        hi = min(out, (size - 1 - t + p) // s + 1)
        if lo < hi:
            yield t, lo, hi, s * lo + t - p


def _pooled_shape(shape: tuple, axis: int, k: int, s: int, p: int) -> tuple:
    out = list(shape)
    out[axis] = _out_len(shape[axis], k, s, p)
    return tuple(out)


def _max_axis(
    x: np.ndarray, axis: int, k: int, s: int, p: int, m: np.ndarray, arg: np.ndarray | None
) -> None:
    """m = max over k taps along `axis` (padding acts as -inf); arg = first winning tap."""
    if (k, s, p) == (5, 2, 2):
        _max_axis_k5s2p2(x, axis, m, arg)
    else:
        _max_axis_taps(x, axis, k, s, p, m, arg)


def _max_axis_taps(
    x: np.ndarray, axis: int, k: int, s: int, p: int, m: np.ndarray, arg: np.ndarray | None
) -> None:
    """Generic `_max_axis`: one strided view per tap."""
    size = x.shape[axis]
    m.fill(-np.inf)
    if arg is not None:
        arg.fill(0)
    for t, lo, hi, start in _taps(size, m.shape[axis], k, s, p):
        src = x[_axis(x.ndim, axis, _span(start, hi - lo, s))]
        dst = m[_axis(x.ndim, axis, slice(lo, hi))]
        if arg is not None and t > 0:
            # strict '>' keeps the first maximum; taps come in increasing order, so
            # max(arg, t * better) records the latest improvement
            better = np.greater(src, dst)
            arg_view = arg[_axis(x.ndim, axis, slice(lo, hi))]
            np.maximum(arg_view, better.view(np.uint8) * np.uint8(t), out=arg_view)
        np.maximum(dst, src, out=dst)


def _max_axis_k5s2p2(x: np.ndarray, axis: int, m: np.ndarray, arg: np.ndarray | None) -> None:
    """`_max_axis` for the model's k5/s2/p2 with 6 instead of 10 passes (-30% measured).

    Window o covers x[2o-2 .. 2o+2] = pair o-1 (taps 0, 1) | pair o (taps 2, 3) | x[2o+2]
    (tap 4), where pair j = max(x[2j], x[2j+1]) is shared by two windows.
    """
    nd = x.ndim

    def ax(start: int | None, stop: int | None = None, step: int | None = None) -> tuple:
        return _axis(nd, axis, slice(start, stop, step))

    n_pairs = x.shape[axis] // 2
    even, odd = x[ax(0, None, 2)], x[ax(1, None, 2)]
    pair = np.empty(m.shape, dtype=x.dtype)  # pair j; an odd tail is x[-1] alone
    np.maximum(even[ax(0, n_pairs)], odd, out=pair[ax(0, n_pairs)])
    pair[ax(n_pairs)] = even[ax(n_pairs)]
    m[ax(0, 1)] = pair[ax(0, 1)]
    np.maximum(pair[ax(0, -1)], pair[ax(1)], out=m[ax(1)])
    even_next, m_head = even[ax(1)], m[ax(0, -1)]
    if arg is not None:
        odd_wins = np.zeros(m.shape, dtype=np.uint8)  # tap offset inside pair j
        np.greater(odd, even[ax(0, n_pairs)], out=odd_wins[ax(0, n_pairs)].view(bool))
        earlier = np.greater_equal(pair[ax(0, -1)], pair[ax(1)]).view(np.uint8)  # ties: first
        last = np.greater(even_next, m_head).view(np.uint8)  # strict: only if larger
        np.add(odd_wins, 2, out=arg)  # taps 2/3 ...
        tail = arg[ax(1)]
        tail -= earlier * (tail - odd_wins[ax(0, -1)])  # ... or 0/1 (uint8 wraps both ways)
        head = arg[ax(0, -1)]
        np.maximum(head, last * np.uint8(4), out=head)  # ... or 4
    np.maximum(m_head, even_next, out=m_head)


def _covers_class(start: int, count: int, s: int, size: int) -> bool:
    """Do positions start, start+s, ... (count of them) cover every index = start mod s?"""
    last = start % s + s * ((size - 1 - start % s) // s)
    return start < s and start + s * (count - 1) == last


def _unmax_axis(
    g: np.ndarray, arg: np.ndarray, axis: int, k: int, s: int, p: int, gx: np.ndarray
) -> None:
    """Backward of `_max_axis` into gx: send each gradient to its winning tap.

    Per stride residue class, one tap that covers the whole class is *written* (no zero-fill,
    no temporary); the other taps are added on top.
    """
    size = gx.shape[axis]
    taps = list(_taps(size, g.shape[axis], k, s, p))
    first: dict[int, int] = {}
    for t, lo, hi, start in taps:
        if start % s not in first and _covers_class(start, hi - lo, s, size):
            first[start % s] = t
    for r in range(s):
        if r not in first:
            gx[_axis(g.ndim, axis, slice(r, None, s))] = 0
    for t, lo, hi, start in sorted(taps, key=lambda tap: first.get(tap[3] % s) != tap[0]):
        sel = _axis(g.ndim, axis, slice(lo, hi))
        dst = gx[_axis(g.ndim, axis, _span(start, hi - lo, s))]
        if first.get(start % s) == t:
            np.multiply(g[sel], arg[sel] == t, out=dst)
        else:
            dst += g[sel] * (arg[sel] == t)


def _max_pool(
    x: np.ndarray, k: tuple, s: tuple, p: tuple, need_arg: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """CWHN 2-D max pooling as a W pass then an H pass; k/s/p are (w, h) pairs.

    Channels are independent, so they are split over threads.
    """
    row_shape = _pooled_shape(x.shape, 1, k[0], s[0], p[0])
    out_shape = _pooled_shape(row_shape, 2, k[1], s[1], p[1])
    row = np.empty(row_shape, dtype=x.dtype)
    out = np.empty(out_shape, dtype=x.dtype)
    arg_w = np.empty(row_shape, dtype=np.uint8) if need_arg else None
    arg_h = np.empty(out_shape, dtype=np.uint8) if need_arg else None

    def pool(lo: int, hi: int) -> None:
        for a, b in _blocks(lo, hi, x):
            aw = None if arg_w is None else arg_w[a:b]
            ah = None if arg_h is None else arg_h[a:b]
            _max_axis(x[a:b], 1, k[0], s[0], p[0], row[a:b], aw)
            _max_axis(row[a:b], 2, k[1], s[1], p[1], out[a:b], ah)

    _split(pool, x.shape[0])
    return out, arg_w, arg_h


def _blocks(lo: int, hi: int, x: np.ndarray) -> Iterator[tuple[int, int]]:
    """Channel ranges of about _POOL_BLOCK_BYTES of x each."""
    step = max(1, _POOL_BLOCK_BYTES // (x[0].size * x.itemsize))
    for a in range(lo, hi, step):
        yield a, min(hi, a + step)


def _unmax_pool(
    g: np.ndarray,
    arg_w: np.ndarray,
    arg_h: np.ndarray,
    in_shape: tuple,
    k: tuple,
    s: tuple,
    p: tuple,
) -> np.ndarray:
    """Backward of `_max_pool`."""
    g_row = np.empty(arg_w.shape, dtype=g.dtype)
    gx = np.empty(in_shape, dtype=g.dtype)

    def unpool(lo: int, hi: int) -> None:
        for a, b in _blocks(lo, hi, gx):
            _unmax_axis(g[a:b], arg_h[a:b], 2, k[1], s[1], p[1], g_row[a:b])
            _unmax_axis(g_row[a:b], arg_w[a:b], 1, k[0], s[0], p[0], gx[a:b])

    _split(unpool, g.shape[0])
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
        y, self._arg_w, self._arg_h = _max_pool(x, self.k, self.s, self.p, self.need_grad)
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        if self._arg_w is None:
            raise RuntimeError("forward ran without gradient bookkeeping (need_grad=False)")
        g = grad_outputs[0].array
        gx = _unmax_pool(g, self._arg_w, self._arg_h, self._in_shape, self.k, self.s, self.p)
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
        o, _, kh, kw = w.shape
        (pw, ph), (sx, sy) = self.pad, self.stride
        _, wd, hd, _ = x.shape
        wo, ho = _out_len(wd, kw, sx, pw), _out_len(hd, kh, sy, ph)
        xp = _pad(x, pw, ph)
        wmat = _weight_matrix(w)
        y = _conv_gemm(xp, wmat, kw, kh, (sx, sy), (wo, ho))
        if self.pool is not None:
            z, arg_w, arg_h = _max_pool(y, *self.pool, self.need_grad)
        else:
            z, arg_w, arg_h = y, None, None
        # bias and relu after the pool: both commute with max, and the map is 4x smaller
        z += b.reshape(o, 1, 1, 1)
        np.maximum(z, 0, out=z)
        if self.need_grad:
            self._saved = (x.shape, xp, y.shape, wmat, (kw, kh), arg_w, arg_h)
            self.retain_outputs((0,))
        return (z,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        if not self.need_grad:
            raise RuntimeError("forward ran without gradient bookkeeping (need_grad=False)")
        x_shape, xp, y_shape, wmat, (kw, kh), arg_w, arg_h = self._saved
        (z,) = self.get_retained_outputs()
        g = grad_outputs[0].array * (z.array > 0)
        gb = g.sum(axis=(1, 2, 3))
        if self.pool is not None:
            g = _unmax_pool(g, arg_w, arg_h, y_shape, *self.pool)
        o, wo, ho = y_shape[:3]
        c = xp.shape[0]
        (pw, ph), (sx, sy) = self.pad, self.stride
        g2 = g.reshape(o, -1)
        gx = gw = None
        if 0 in indexes:
            gxp = _conv_gemm_input(g2, wmat, xp.shape, kw, kh, (sx, sy), ho)
            gx = chainer.Variable(gxp[:, pw : pw + x_shape[1], ph : ph + x_shape[2]])
        if 1 in indexes:
            gwm = _conv_gemm_weight(xp, g2, kw, kh, (sx, sy), (wo, ho)).reshape(o, c, kw, kh)
            gw = chainer.Variable(np.ascontiguousarray(gwm.transpose(0, 1, 3, 2)))
        return gx, gw, chainer.Variable(gb)


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
