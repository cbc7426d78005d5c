"""The ring layout: (N, H+2, W+2, C), channels innermost, each picture's map framed by a ring
of zeros one cell wide. FaceNet runs in it (`charaid.detector.net`).

Why: with the ring in place, a 3x3 convolution at stride 1 reads tap (dy, dx) of every output
cell at one fixed offset, dy * (W+2) + dx rows, in the (N*(H+2)*(W+2), C) matrix of the map: nine
GEMMs on shifted row blocks of the input itself, no patch matrix at all, and each GEMM has the
shape BLAS runs fastest on our narrow layers ((cells, C) @ (C, O), the channels innermost)
(`charaid.fastops.ring_conv`). The ring is also the convolution's zero padding.

The invariant every ring op keeps: its outputs and its inputs' gradients have zeros on the
ring, so the next op may read the ring as padding, and a GEMM over whole row blocks (ring cells
included) adds nothing from them.
"""

from __future__ import annotations

import chainer
import numpy as np
from chainer import function_node


def zero_ring(a: np.ndarray) -> np.ndarray:
    """Set the ring of a (N, H+2, W+2, C) array to zero, in place; returns it."""
    a[:, 0] = 0
    a[:, -1] = 0
    a[:, :, 0] = 0
    a[:, :, -1] = 0
    return a


def interior(a: np.ndarray) -> np.ndarray:
    """The (N, H, W, C) view inside the ring."""
    return a[:, 1:-1, 1:-1]


ALIGN = 64  # bytes: a cache line, and an AVX-512 register


def aligned_empty(shape: tuple, dtype=np.float32) -> np.ndarray:
    """np.empty starting on a cache line. numpy aligns to 16 bytes only, so BLAS's loads and
    stores of a map's rows would straddle cache lines or not depending on where malloc put it."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    buf = np.empty(size + ALIGN // dtype.itemsize, dtype)
    skip = (-buf.ctypes.data % ALIGN) // dtype.itemsize
    return buf[skip : skip + size].reshape(shape)


def ring_like(n: int, h: int, w: int, c: int, dtype=np.float32) -> np.ndarray:
    """An uninitialised ring array for an (h, w) map; callers fill the inside and the ring."""
    return aligned_empty((n, h + 2, w + 2, c), dtype)


def _nchw_into_ring(x: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Copy (N, C, H, W) x inside `ring`, a channel at a time: numpy's whole transposed copy
    with 3 channels innermost ran 8x slower (1.3 ms for a 320x512 frame, 0.17 ms so)."""
    inside = interior(ring)
    for k in range(x.shape[1]):
        inside[..., k] = x[:, k]
    return ring


def ring_from_nchw(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> a new (N, H+2, W+2, C) ring map."""
    n, c, h, w = x.shape
    return _nchw_into_ring(x, zero_ring(ring_like(n, h, w, c, x.dtype)))


def nchw_from_ring(x: np.ndarray) -> np.ndarray:
    """(N, H+2, W+2, C) ring map -> a new (N, C, H, W) array of its inside."""
    return np.ascontiguousarray(interior(x).transpose(0, 3, 1, 2))


class ToRing(function_node.FunctionNode):
    """NCHW -> ring layout."""

    def forward(self, inputs: tuple) -> tuple:
        return (ring_from_nchw(inputs[0]),)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        g = grad_outputs[0].array
        return (chainer.Variable(np.ascontiguousarray(interior(g).transpose(0, 3, 1, 2))),)


class FromRing(function_node.FunctionNode):
    """Ring layout -> NCHW."""

    def forward(self, inputs: tuple) -> tuple:
        return (nchw_from_ring(inputs[0]),)

    def backward(self, indexes: tuple, grad_outputs: tuple) -> tuple:
        g = grad_outputs[0].array
        return (chainer.Variable(ring_from_nchw(g)),)


def to_ring(x: chainer.Variable | np.ndarray) -> chainer.Variable:
    """(N, C, H, W) -> (N, H+2, W+2, C) with a zero ring."""
    return ToRing().apply((x,))[0]


def from_ring(x: chainer.Variable | np.ndarray) -> chainer.Variable:
    """(N, H+2, W+2, C) -> (N, C, H, W): the inside of the ring."""
    return FromRing().apply((x,))[0]
