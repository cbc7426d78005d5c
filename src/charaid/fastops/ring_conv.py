"""Convolutions without bias in the ring layout (`charaid.fastops.ring_layout`): 3x3 at stride 1
or 2 (pad 1) and 1x1 at stride 1, forward and backward, as FaceNet chains them.

- 3x3, stride 1: the output's rows are the sum over the nine taps of a shifted row block of
  the input times that tap's (C, O) weights: nine accumulating GEMMs (`fastops.blas.sgemm`),
  no patch matrix. The input gradient is the same with the shifts reversed and the weights
  transposed; the weight gradient of a tap is its shifted input block (transposed) times the
  output gradient. The zero ring makes every shifted read land on padding or a neighbour.
- 3x3, stride 2: a patch matrix (cells, 9*C) with the taps and channels innermost (a compiled
  loop, `charaid.fastkernels`), times the (9*C, O) weights. At stride 2 the matrix holds
  9/4 of the input, against 9x for im2col at stride 1.
- 1x1: the map's (cells, C) matrix itself, ring included (zeros in, zeros out).

Row blocks are split over the threads (`fastops.threads`) and, within a thread, into chunks
that stay in cache; weight gradients sum each thread's part in a fixed order.
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
# the fewest output cells worth a thread in a stride-2 convolution (its patches are 9C wide):
# FaceNet's 10x16-cell level gains from two threads, the 5x8 one loses
_S2_GRAIN = 64


def _taps(wp: int) -> list[int]:
    """Row offsets of the nine taps (ky, kx) of a 3x3 kernel in a ring map of width wp."""
    return [(ky - 1) * wp + (kx - 1) for ky in range(3) for kx in range(3)]


def _chunked(lo: int, hi: int):
    for a in range(lo, hi, _CHUNK_ROWS):
        yield a, min(hi, a + _CHUNK_ROWS)


def _shifted_sum(src: np.ndarray, weights: np.ndarray, offsets: list[int], out: np.ndarray):
    """out[r] = sum_t src[r + offsets[t]] @ op(weights[t]) for the rows r in [Wp+1, T-Wp-1):
    every inside cell of every picture (ring cells between them are computed too and
    zeroed by the caller)."""
    total = src.shape[0]
    first, last = -min(offsets), total - max(offsets)

    def work(lo: int, hi: int) -> None:
        acc = aligned_empty((_CHUNK_ROWS, out.shape[1]), out.dtype)
        for a, b in _chunked(first + lo, first + hi):
            part = acc[: b - a]
            for t, off in enumerate(offsets):
                sgemm(src[a + off : b + off], weights[t], part, 0.0 if t == 0 else 1.0)
            out[a:b] = part

    _split(work, last - first, grain=_GRAIN)


class Conv3x3Ring(function_node.FunctionNode):
    """3x3 convolution, pad 1, stride 1, no bias, ring layout in and out."""

    def forward(self, inputs: tuple) -> tuple:
        x, w = inputs
        n, hp, wp, c = x.shape
        o = w.shape[0]
        self.taps = np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(9, c, o)
        y = aligned_empty((n, hp, wp, o), x.dtype)
        flat = y.reshape(-1, o)
        offsets = _taps(wp)
        flat[: -min(offsets)] = 0
        flat[flat.shape[0] - max(offsets) :] = 0
        _shifted_sum(x.reshape(-1, c), self.taps, offsets, flat)
        self.retain_inputs((0, 1))
        return (zero_ring(y),)

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


class Conv3x3Stride2Ring(function_node.FunctionNode):
    """3x3 convolution, pad 1, stride 2, no bias, ring layout in and out."""

    def forward(self, inputs: tuple) -> tuple:
        x, w = inputs
        n, hp, wp, c = x.shape
        o = w.shape[0]
        ho, wo = (hp - 3) // 2 + 1, (wp - 3) // 2 + 1  # (H + 2 - 3) // 2 + 1
        self.shape = (ho, wo)
        cols = aligned_empty((n, ho, wo, 3, 3, c), x.dtype)
        wmat = np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(9 * c, o)
        y2 = aligned_empty((n * ho * wo, o), x.dtype)
        col2 = cols.reshape(n * ho, wo * 9 * c)

        def work(lo: int, hi: int) -> None:  # rows (n, yo) of the output
            fastkernels.ring_s2_patches(x, lo, hi, cols)
            a, b = lo * wo, hi * wo
            sgemm(col2[lo:hi].reshape(-1, 9 * c), wmat, y2[a:b], 0.0)

        _split(work, n * ho, grain=-(-_S2_GRAIN // wo))
        self.cols, self.wmat = cols.reshape(-1, 9 * c), wmat
        y = zero_ring(ring_like(n, ho, wo, o, x.dtype))
        interior(y)[...] = y2.reshape(n, ho, wo, o)
        self.x_shape = x.shape
        return (y,)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        gy = grad_outputs[0].array
        n, hp, wp, c = self.x_shape
        ho, wo = self.shape
        o = gy.shape[-1]
        g2 = np.ascontiguousarray(interior(gy)).reshape(-1, o)
        out = []
        if 0 in indexes:  # patches' gradient, scattered back tap by tap (no tap overlaps itself)
            gcol = aligned_empty((g2.shape[0], 9 * c), gy.dtype)
            wmat_t = np.ascontiguousarray(self.wmat.T)
            _split(lambda lo, hi: sgemm(g2[lo:hi], wmat_t, gcol[lo:hi], 0.0), len(g2))
            gcol6 = gcol.reshape(n, ho, wo, 3, 3, c)
            gx = zero_ring(aligned_empty(self.x_shape, gy.dtype))
            _split(lambda lo, hi: fastkernels.ring_s2_gather(gcol6, lo, hi, gx), n * (hp - 2))
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
        n, hp, wp, c = x.shape
        o = w.shape[0]
        wmat_t = np.ascontiguousarray(w.reshape(o, c).T)
        y = aligned_empty((n, hp, wp, o), x.dtype)
        x2, y2 = x.reshape(-1, c), y.reshape(-1, o)
        _split(lambda lo, hi: sgemm(x2[lo:hi], wmat_t, y2[lo:hi], 0.0), len(x2), _GRAIN)
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
