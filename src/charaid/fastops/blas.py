"""SGEMM that accumulates: C = A @ B + beta * C on views of numpy arrays, through ctypes, so a
convolution can add its taps' products straight into one output (`charaid.fastops.ring_conv`).
numpy's matmul cannot accumulate: a temporary and an add per tap ran the ring convolutions at
43-126 GFLOP/s on one core, the accumulating GEMM at 83-166 (`bench/README.md`, "The ring
layout").

Which BLAS: Intel's MKL where the `mkl` wheel is installed (x86-64, requirements.txt), else the
OpenBLAS numpy itself loaded. On the narrow shapes of charaid's layers (K and N of 16-128) MKL's
SGEMM ran 1.07-1.47x OpenBLAS's AVX-512 kernels on one core, and whole training steps
1.14-1.24x (`bench/README.md`, "MKL"). MKL runs sequential (the kernels split work over their
own threads, `fastops.threads`) and in its reproducible mode (`MKL_CBWR_AUTO`: the same code
path, so the same floats, whatever the arrays' alignment). `CHARAID_BLAS=openblas` picks
numpy's OpenBLAS instead (`CHARAID_BLAS=mkl` insists on MKL).

Operands are row-major 2-D views with unit stride along their rows (a leading dimension of
their own). Where neither BLAS is found, or the arrays are not float32 (float64 in the gradient
checks), the same maths runs through numpy: a temporary and an add.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
from pathlib import Path

import numpy as np

from charaid.blas_core import BLAS_ENV, blas_choice
from charaid.errors import CharaidError

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_MKL_THREADING_SEQUENTIAL, _MKL_CBWR_AUTO = 1, 1


def _typed(fn, index=ctypes.c_int):
    """fn with cblas_sgemm's argument types (row-major ints of width `index`)."""
    i, f, p = index, ctypes.c_float, ctypes.c_void_p
    fn.argtypes = [ctypes.c_int] * 3 + [i, i, i, f, p, i, p, i, f, p, i]
    fn.restype = None
    return fn


def _mkl_sgemm():
    """MKL's `cblas_sgemm` from the `mkl` wheel, set sequential and reproducible; None where the
    wheel is not installed."""
    try:
        files = importlib.metadata.files("mkl") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    libs = [f for f in files if f.name.startswith("libmkl_rt.so")]
    if not libs:
        return None
    try:
        handle = ctypes.CDLL(str(Path(libs[0].locate()).resolve()))
    except OSError:
        return None
    # both before any other MKL call: the threading layer is fixed at the first one
    handle.MKL_Set_Threading_Layer(_MKL_THREADING_SEQUENTIAL)
    handle.MKL_CBWR_Set(_MKL_CBWR_AUTO)
    return _typed(handle.cblas_sgemm)


def _openblas_sgemm():
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
            if fn is not None:
                return _typed(fn, index)
    return None


@functools.cache
def _cblas_sgemm():
    """(the `cblas_sgemm` in use or None, the BLAS's name)."""
    choice = blas_choice()
    if choice != "openblas":
        fn = _mkl_sgemm()
        if fn is not None:
            return fn, "mkl"
        if choice == "mkl":
            raise CharaidError(f"{BLAS_ENV}=mkl, but MKL is not installed: pip install mkl")
    fn = _openblas_sgemm()
    return fn, ("openblas" if fn is not None else "numpy")


def blas_name() -> str:
    """Which BLAS `sgemm` runs on: 'mkl', 'openblas' or 'numpy' (numpy's matmul, no ctypes)."""
    return _cblas_sgemm()[1]


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
    fn = _cblas_sgemm()[0] if a.dtype == b.dtype == c.dtype == np.float32 else None
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


def _stored(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """(a as sgemm reads it, transposed?): a itself where its rows have unit stride, else a.T
    where its columns do, else a contiguous copy."""
    if a.ndim == 2 and (a.shape[1] <= 1 or a.strides[1] == a.itemsize):
        return a, False
    if a.ndim == 2 and (a.shape[0] <= 1 or a.strides[0] == a.itemsize):
        return a.T, True
    return np.ascontiguousarray(a), False


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b for 2-D views (transposed views included) through `sgemm`, into `out` if given."""
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    if out.shape[1] > 1 and out.strides[1] != out.itemsize:
        np.matmul(a, b, out=out)
        return out
    (sa, ta), (sb, tb) = _stored(a), _stored(b)
    sgemm(sa, sb, out, 0.0, ta=ta, tb=tb)
    return out
