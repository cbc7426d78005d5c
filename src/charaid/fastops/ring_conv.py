"""Convolutions without bias in the ring layout (`charaid.fastops.ring_layout`): 3x3 at stride 1
or 2 (pad 1) and 1x1 at stride 1, forward and backward, as FaceNet chains them.

- 3x3, stride 1: the output's rows are the sum over the nine taps of a shifted row block of
  the input times that tap's (C, O) weights: nine accumulating GEMMs (`fastops.blas.sgemm`),
  no patch matrix. The input gradient is the same with the shifts reversed and the weights
  transposed; the weight gradient of a tap is its shifted input block (transposed) times the
  output gradient. The zero ring makes every shifted read land on padding or a neighbour.
  A small map (FaceNet's 1/16 to 1/64 levels of a frame) runs forward as a patch matrix, as at
  stride 2: there one GEMM of 9C-long rows beats nine short ones.
- 3x3, stride 2: a patch matrix (cells, 9*C) with the taps and channels innermost (a compiled
  loop, `charaid.fastkernels`), times the (9*C, O) weights. At stride 2 the matrix holds
  9/4 of the input, against 9x for im2col at stride 1. The input gradient is the patches'
  gradient, a block of output rows at a time, summed into the input rows while in cache.
- 1x1: the map's (cells, C) matrix itself, ring included (zeros in, zeros out).

Row blocks are split over the threads (`fastops.threads`) and, within a thread, into chunks
that stay in cache; weight gradients sum each thread's part in a fixed order. A map with too
few rows for two threads (FaceNet's smallest levels on one frame) splits its output channels
instead.

The forward passes are array functions (`conv3x3`, `conv3x3_s2`, `conv1x1`) with an optional
bias + ReLU done on each chunk while it is in cache: the nodes call them without, and
inference with batch norm folded into the weights (`charaid.detector.folded`) with.
"""

from __future__ import annotations

import chainer
import numpy as np
from chainer import function_node

from charaid import fastkernels
from charaid.fastops.blas import sgemm
from charaid.fastops.ring_layout import aligned_empty, interior, ring_like, zero_ring
from charaid.fastops.threads import _split

_CHUNK_ROWS = 4096  # rows of a shifted GEMM block: in cache with up to 128 channels
_GRAIN = 256  # the fewest rows worth a thread of their own
# the fewest output cells worth a thread in a patch-matrix convolution (its patches are 9C
# wide): FaceNet's 10x16-cell level gains from two threads, the 5x8 one loses
_S2_GRAIN = 64
_COL_GRAIN = 32  # the fewest output channels worth a thread, where the rows are too few
# a stride-1 map of fewer cells (ring included) runs as one patch matrix, not nine shifted
# GEMMs: FaceNet's 1/16 level of a frame took 0.81 ms so against 0.92, its 1/8 level broke even
_PATCH_CELLS = 1024
# output cells per block of a stride-2 input gradient: its patch gradients (9C wide) in cache
_S2_BLOCK_CELLS = 2048


def _taps(wp: int) -> list[int]:
    """Row offsets of the nine taps (ky, kx) of a 3x3 kernel in a ring map of width wp."""
    return [(ky - 1) * wp + (kx - 1) for ky in range(3) for kx in range(3)]


def _chunked(lo: int, hi: int):
    for a in range(lo, hi, _CHUNK_ROWS):
        yield a, min(hi, a + _CHUNK_ROWS)


def _bias_relu(part: np.ndarray, bias: np.ndarray | None) -> None:
    if bias is not None:
        fastkernels.rows_bias_relu(part, bias)


def _shifted_sum(
    src: np.ndarray,
    weights: np.ndarray,
    offsets: list[int],
    out: np.ndarray,
    bias: np.ndarray | None = None,
) -> None:
    """out[r] = sum_t src[r + offsets[t]] @ op(weights[t]) for the rows r in [Wp+1, T-Wp-1):
    every inside cell of every picture (ring cells between them are computed too and
    zeroed by the caller); then relu(out + bias) where a bias is given."""
    total, o = src.shape[0], out.shape[1]
    first, last = -min(offsets), total - max(offsets)

    def work(lo: int, hi: int, c0: int = 0, c1: int = o) -> None:
        for a, b in _chunked(first + lo, first + hi):
            part = out[a:b, c0:c1]
            for t, off in enumerate(offsets):
                sgemm(src[a + off : b + off], weights[t][:, c0:c1], part, 0.0 if t == 0 else 1.0)
            _bias_relu(part, None if bias is None else bias[c0:c1])

    rows = last - first
    if rows < 2 * _GRAIN:
        _split(lambda c0, c1: work(0, rows, c0, c1), o, grain=_COL_GRAIN)
    else:
        _split(work, rows, grain=_GRAIN)


def taps_3x3(w: np.ndarray) -> np.ndarray:
    """Chainer's (O, C, 3, 3) weights as the nine (C, O) tap matrices `conv3x3` takes."""
    o, c = w.shape[:2]
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(9, c, o)


def matrix_3x3_s2(w: np.ndarray) -> np.ndarray:
    """Chainer's (O, C, 3, 3) weights as the (9C, O) matrix `conv3x3_s2` takes."""
    return taps_3x3(w).reshape(-1, w.shape[0])


def matrix_1x1(w: np.ndarray) -> np.ndarray:
    """Chainer's (O, C, 1, 1) weights as the (C, O) matrix `conv1x1` takes."""
    return np.ascontiguousarray(w.reshape(w.shape[:2]).T)


def conv3x3(x: np.ndarray, taps: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """3x3 convolution, pad 1, stride 1, of a ring map by `taps_3x3` weights (+ bias, ReLU)."""
    n, hp, wp, c = x.shape
    o = taps.shape[2]
    if n * hp * wp < _PATCH_CELLS:  # a map too small for shifted GEMMs to pay: one patch matrix
        return _patch_conv(x, taps.reshape(9 * c, o), 1, bias)[0]
    y = aligned_empty((n, hp, wp, o), x.dtype)
    flat = y.reshape(-1, o)
    offsets = _taps(wp)
    flat[: -min(offsets)] = 0
    flat[flat.shape[0] - max(offsets) :] = 0
    _shifted_sum(x.reshape(-1, c), taps, offsets, flat, bias)
    return zero_ring(y)


def _patch_conv(
    x: np.ndarray, wmat: np.ndarray, stride: int, bias: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """3x3 convolution, pad 1, as the (cells, 9C) patch matrix times (9C, O) weights (+ bias,
    ReLU): the output ring map and the patch matrix."""
    n, hp, wp, c = x.shape
    o = wmat.shape[1]
    ho, wo = (hp - 3) // stride + 1, (wp - 3) // stride + 1  # (H + 2 - 3) // stride + 1
    cols = aligned_empty((n, ho, wo, 3, 3, c), x.dtype)
    y2 = aligned_empty((n * ho * wo, o), x.dtype)
    col2 = cols.reshape(n * ho, wo * 9 * c)

    def work(lo: int, hi: int) -> None:  # rows (n, yo) of the output
        fastkernels.ring_patches(x, stride, lo, hi, cols)
        a, b = lo * wo, hi * wo
        sgemm(col2[lo:hi].reshape(-1, 9 * c), wmat, y2[a:b], 0.0)
        _bias_relu(y2[a:b], bias)

    def by_channel(c0: int, c1: int) -> None:
        sgemm(cols.reshape(-1, 9 * c), wmat[:, c0:c1], y2[:, c0:c1], 0.0)
        _bias_relu(y2[:, c0:c1], None if bias is None else bias[c0:c1])

    grain = -(-_S2_GRAIN // wo)
    if n * ho >= 2 * grain:
        _split(work, n * ho, grain=grain)
    else:  # too few cells for two threads: the patches in one, then the channels split
        fastkernels.ring_patches(x, stride, 0, n * ho, cols)
        _split(by_channel, o, grain=_COL_GRAIN)
    y = zero_ring(ring_like(n, ho, wo, o, x.dtype))
    interior(y)[...] = y2.reshape(n, ho, wo, o)
    return y, cols.reshape(-1, 9 * c)


def conv3x3_s2(
    x: np.ndarray, wmat: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """3x3 convolution, pad 1, stride 2, of a ring map by `matrix_3x3_s2` weights (+ bias,
    ReLU): the output ring map and the (cells, 9C) patch matrix (the weight gradient's)."""
    return _patch_conv(x, wmat, 2, bias)


def conv1x1(x: np.ndarray, wmat: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """1x1 convolution of a ring map by `matrix_1x1` weights (+ bias, ReLU)."""
    n, hp, wp, c = x.shape
    o = wmat.shape[1]
    y = aligned_empty((n, hp, wp, o), x.dtype)
    x2, y2 = x.reshape(-1, c), y.reshape(-1, o)

    def work(lo: int, hi: int) -> None:
        sgemm(x2[lo:hi], wmat, y2[lo:hi], 0.0)
        _bias_relu(y2[lo:hi], bias)

    _split(work, len(x2), _GRAIN)
    return y if bias is None else zero_ring(y)  # ring cells: zeros in, relu(bias) out


class Conv3x3Ring(function_node.FunctionNode):
    """3x3 convolution, pad 1, stride 1, no bias, ring layout in and out."""

    def forward(self, inputs: tuple) -> tuple:
        x, w = inputs
        self.taps = taps_3x3(w)
        self.retain_inputs((0, 1))
        return (conv3x3(x, self.taps),)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        x, w = (v.array for v in self.get_retained_inputs())
        gy = grad_outputs[0].array
        n, hp, wp, c = x.shape
        o = gy.shape[-1]
        offsets = _taps(wp)
        g2 = gy.reshape(-1, o)
        out = []
        if 0 in indexes:  # dL/dx[r] = sum_t dL/dy[r - off_t] @ W_t.T
            gx = aligned_empty(x.shape, x.dtype)
            flat = gx.reshape(-1, c)
            flat[: -min(offsets)] = 0
            flat[flat.shape[0] - max(offsets) :] = 0
            # the taps' transposes as their own arrays: OpenBLAS's transposed-B path ran some
            # processes' input gradients at 40 GFLOP/s instead of 115
            taps_t = np.ascontiguousarray(self.taps.transpose(0, 2, 1))
            _shifted_sum(g2, taps_t, [-f for f in offsets], flat)
            out.append(chainer.Variable(zero_ring(gx)))
        if 1 in indexes:
            out.append(chainer.Variable(self._weight_grad(x.reshape(-1, c), g2, offsets, w)))
        return tuple(out)

    def _weight_grad(self, x2: np.ndarray, g2: np.ndarray, offsets: list[int], w) -> np.ndarray:
        """dL/dW_t = sum_r x[r + off_t].T @ dL/dy[r] over the rows of inside cells (the output
        gradient is zero on the ring, so ring rows add nothing)."""
        c, o = x2.shape[1], g2.shape[1]
        first, last = -min(offsets), x2.shape[0] - max(offsets)

        def work(lo: int, hi: int) -> np.ndarray:
            gw = np.zeros((9, c, o), x2.dtype)
            for a, b in _chunked(first + lo, first + hi):
                for t, off in enumerate(offsets):
                    sgemm(x2[a + off : b + off], g2[a:b], gw[t], 1.0, ta=True)
            return gw

        parts = _split(work, last - first, grain=_GRAIN)
        for part in parts[1:]:
            parts[0] += part
        # (ky, kx, C, O) -> Chainer's (O, C, ky, kx)
        return np.ascontiguousarray(parts[0].reshape(3, 3, c, o).transpose(3, 2, 0, 1))


def _s2_input_grad(g2: np.ndarray, wmat: np.ndarray, x_shape: tuple, out_hw: tuple) -> np.ndarray:
    """dL/dx of a stride-2 3x3 convolution from dL/dy (N * Ho * Wo, O) and its (9C, O) weights:
    the patches' gradient a block of output rows at a time, each block still in cache when the
    compiled gather sums its taps into the input rows those output rows own. Threads split the
    output rows; a thread that starts inside a picture recomputes the row above first."""
    (ho, wo), c = out_hw, x_shape[-1]
    wmat_t = np.ascontiguousarray(wmat.T)
    gx = zero_ring(aligned_empty(x_shape, g2.dtype))
    step = max(1, _S2_BLOCK_CELLS // wo)  # output rows a block

    def work(lo: int, hi: int) -> None:  # output rows (i, yo) as i * Ho + yo
        # the patch gradients of the row above a block, then the block's own
        blocks = aligned_empty(((step + 1) * wo, 9 * c), g2.dtype)
        if lo % ho:
            sgemm(g2[(lo - 1) * wo : lo * wo], wmat_t, blocks[:wo], 0.0)
        for r in range(lo, hi, step):
            e = min(hi, r + step)
            sgemm(g2[r * wo : e * wo], wmat_t, blocks[wo : (e - r + 1) * wo], 0.0)
            s = r
            while s < e:  # the block's rows picture by picture
                i, a = divmod(s, ho)
                b = min(ho, a + e - s)
                part = blocks[(s - r) * wo : (s - r + b - a + 1) * wo]
                fastkernels.ring_s2_gather(part.reshape(-1, wo, 3, 3, c), i, a, b, b == ho, gx)
                s += b - a
            blocks[:wo] = blocks[(e - r) * wo : (e - r + 1) * wo]

    _split(work, len(g2) // wo)
    return gx


class Conv3x3Stride2Ring(function_node.FunctionNode):
    """3x3 convolution, pad 1, stride 2, no bias, ring layout in and out."""

    def forward(self, inputs: tuple) -> tuple:
        x, w = inputs
        self.wmat = matrix_3x3_s2(w)
        y, self.cols = conv3x3_s2(x, self.wmat)
        self.shape = y.shape[1] - 2, y.shape[2] - 2
        self.x_shape = x.shape
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        gy = grad_outputs[0].array
        c = self.x_shape[-1]
        ho, wo = self.shape
        o = gy.shape[-1]
        g2 = np.ascontiguousarray(interior(gy)).reshape(-1, o)
        out = []
        if 0 in indexes:
            gx = _s2_input_grad(g2, self.wmat, self.x_shape, (ho, wo))
            out.append(chainer.Variable(gx))
        if 1 in indexes:

            def work(lo: int, hi: int) -> np.ndarray:
                gw = np.zeros((9 * c, o), gy.dtype)
                sgemm(self.cols[lo:hi], g2[lo:hi], gw, 0.0, ta=True)
                return gw

            parts = _split(work, len(g2), grain=_GRAIN)
            for part in parts[1:]:
                parts[0] += part
            gw = parts[0].reshape(3, 3, c, o).transpose(3, 2, 0, 1)
            out.append(chainer.Variable(np.ascontiguousarray(gw)))
        return tuple(out)


class Conv1x1Ring(function_node.FunctionNode):
    """1x1 convolution, no bias, ring layout in and out (ring cells: zeros in, zeros out)."""

    def forward(self, inputs: tuple) -> tuple:
        x, w = inputs
        y = conv1x1(x, matrix_1x1(w))
        self.retain_inputs((0, 1))
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        x, w = (v.array for v in self.get_retained_inputs())
        gy = grad_outputs[0].array
        c, o = x.shape[-1], gy.shape[-1]
        x2, g2, wmat = x.reshape(-1, c), gy.reshape(-1, o), w.reshape(o, c)
        out = []
        if 0 in indexes:
            gx = aligned_empty(x.shape, x.dtype)
            gx2 = gx.reshape(-1, c)
            _split(lambda lo, hi: sgemm(g2[lo:hi], wmat, gx2[lo:hi], 0.0), len(g2), _GRAIN)
            out.append(chainer.Variable(gx))
        if 1 in indexes:

            def work(lo: int, hi: int) -> np.ndarray:
                gw = np.zeros((o, c), gy.dtype)
                sgemm(g2[lo:hi], x2[lo:hi], gw, 0.0, ta=True)
                return gw

            parts = _split(work, len(g2), grain=_GRAIN)
            for part in parts[1:]:
                parts[0] += part
            out.append(chainer.Variable(parts[0].reshape(w.shape)))
        return tuple(out)


def convolution_ring(x: chainer.Variable, w: chainer.Variable, stride: int = 1) -> chainer.Variable:
    """A bias-free convolution of a ring-layout map by Chainer's W (O, C, k, k): 3x3 (pad 1) at
    stride 1 or 2, or 1x1 at stride 1."""
    k = w.shape[2]
    if (k, stride) == (3, 1):
        node = Conv3x3Ring()
    elif (k, stride) == (3, 2):
        node = Conv3x3Stride2Ring()
    elif (k, stride) == (1, 1):
        node = Conv1x1Ring()
    else:
        raise ValueError(
            f"ring convolutions are 3x3 at stride 1 or 2, or 1x1: got {k}x{k} at stride {stride}"
        )
    return node.apply((x, w))[0]
