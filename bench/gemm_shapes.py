"""MKL's SGEMM against numpy's OpenBLAS on the shapes charaid's layers give them, one core.

Both through the same ctypes call `charaid.fastops.blas` makes (row-major, accumulating, beta
1), interleaved shape by shape, best of 3 timed loops of ~2 GFLOP each. Rows are (M, K, N):
M rows of a row block (4,096 for the ring convolutions' chunks), K the taps' channels (C for a
shifted GEMM, 9C for a patch matrix), N the output channels.

    python bench/gemm_shapes.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: fastops splits work itself
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import charaid  # noqa: F401,E402  (first: it picks OpenBLAS's kernels before numpy loads them)

# isort: split
import time  # noqa: E402

import numpy as np  # noqa: E402

from charaid.fastops.blas import _mkl_sgemm, _openblas_sgemm  # noqa: E402

SHAPES = [
    (4096, 16, 16),  # FaceNet stem / 16-channel shifted GEMMs
    (4096, 32, 32),  # block1, smooth: a tap of a 32-channel 3x3
    (4096, 64, 64),
    (4096, 96, 96),
    (4096, 128, 128),
    (4096, 27, 16),  # the stem's patch matrix (3x3x3)
    (4096, 144, 32),  # down1's patch matrix (3x3x16)
    (4096, 288, 64),  # down2's (3x3x32)
    (4096, 128, 32),  # a lateral 1x1
]


def _time(fn, a, b, c, reps: int) -> float:
    m, k = a.shape
    n = b.shape[1]
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(101, 111, 111, m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, n, 1.0, c.ctypes.data, n)
    return (time.perf_counter() - t0) / reps


def main() -> None:
    mkl, openblas = _mkl_sgemm(), _openblas_sgemm()
    if mkl is None or openblas is None:
        raise SystemExit("needs both the mkl wheel and numpy's OpenBLAS")
    rng = np.random.default_rng(0)
    print(f"load average {os.getloadavg()[0]:.2f}; GFLOP/s, one core, best of 3")
    print(f"{'M x K x N':>16s} {'openblas':>9s} {'mkl':>7s} {'mkl/openblas':>13s}")
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.zeros((m, n), np.float32)
        reps = max(20, int(2e9 / (2 * m * n * k)))
        for fn in (openblas, mkl):
            _time(fn, a, b, c, 5)  # warm: packing buffers, caches
        best = {"openblas": float("inf"), "mkl": float("inf")}
        for _ in range(3):
            for name, fn in (("openblas", openblas), ("mkl", mkl)):
                best[name] = min(best[name], _time(fn, a, b, c, reps))
        g = 2 * m * n * k / 1e9
        print(
            f"{f'{m} x {k} x {n}':>16s} {g / best['openblas']:9.1f} {g / best['mkl']:7.1f} "
            f"{best['openblas'] / best['mkl']:12.2f}x"
        )


if __name__ == "__main__":
    main()
