"""SGEMM that accumulates: C = A @ B + beta * C on views of numpy arrays, through the OpenBLAS
numpy itself loaded (ctypes), so a convolution can add its taps' products straight into one
output (`charaid.fastops.ring_conv`). numpy's matmul cannot accumulate: a temporary and an add
per tap ran the ring convolutions at 43-126 GFLOP/s on one core, the accumulating GEMM at
83-166 (`bench/README.md`, "The ring layout").

Operands are row-major 2-D views with unit stride along their rows (a leading dimension of
their own). Where no OpenBLAS with `cblas_sgemm` is found (another BLAS under numpy), or the
arrays are not float32 (float64 in the gradient checks), the same maths runs through numpy: a
temporary and an add.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@functools.cache
def _cblas_sgemm():
    """numpy's own OpenBLAS `cblas_sgemm` (ILP64 builds name it `cblas_sgemm64_`), or None.

    Only numpy's: a process may hold other OpenBLAS copies (OpenCV's wheel bundles 0.3.3 with
    Haswell kernels, scipy's its own), and threadpoolctl lists them in an order that changes
    from run to run; taking the first that had the symbol ran a third of the processes on
    OpenCV's copy at half speed."""
    import threadpoolctl

    np.ones(1) @ np.ones(1)  # make sure numpy's BLAS is loaded before asking for it
    own = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in threadpoolctl.threadpool_info():
        path = Path(lib.get("filepath", ""))
        if lib.get("internal_api") != "openblas" or path.parent.resolve() != own:
            continue
        try:
            handle = ctypes.CDLL(str(path))
        except OSError:
            return None
        for name, index in (("cblas_sgemm64_", ctypes.c_int64), ("cblas_sgemm", ctypes.c_int)):
            fn = getattr(handle, name, None)
            if fn is None:
                continue
            i, f, p = index, ctypes.c_float, ctypes.c_void_p
            fn.argtypes = [ctypes.c_int] * 3 + [i, i, i, f, p, i, p, i, f, p, i]
            fn.restype = None
            return fn
    return None


def _lead(a: np.ndarray) -> int:
    """The leading dimension of a row-major 2-D float32 view (elements between rows)."""
    if a.ndim != 2 or (a.shape[1] > 1 and a.strides[1] != 4):
        raise ValueError("sgemm needs 2-D views with unit stride along rows")
    return max(a.strides[0] // 4, a.shape[1], 1)


def sgemm(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float, ta=False, tb=False) -> None:
    """c = op(a) @ op(b) + beta * c, in place (op: transposed where `ta` / `tb`)."""
    m, n = c.shape
    k = a.shape[0] if ta else a.shape[1]
    if m == 0 or n == 0:
        return
    fn = _cblas_sgemm() if a.dtype == b.dtype == c.dtype == np.float32 else None
    if fn is None:
        prod = (a.T if ta else a) @ (b.T if tb else b)
        if beta == 0.0:
            c[...] = prod
        else:
            c *= c.dtype.type(beta)
            c += prod
        return
    fn(
        _ROW_MAJOR,
        _TRANS if ta else _NO_TRANS,
        _TRANS if tb else _NO_TRANS,
        m,
        n,
        k,
        1.0,
        a.ctypes.data,
        _lead(a),
        b.ctypes.data,
        _lead(b),
        beta,
        c.ctypes.data,
        _lead(c),
    )
