"""The SGEMM under charaid's kernels (`charaid.fastops.blas`): MKL or numpy's OpenBLAS, picked by
CHARAID_BLAS, both giving numpy's products on views, transposes and accumulation."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from charaid.blas_core import BLAS_ENV, blas_choice
from charaid.errors import CharaidError
from charaid.fastops import blas


def _mkl_installed() -> bool:
    try:
        importlib.metadata.version("mkl")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _in_child(code: str, **env: str) -> tuple[int, str, str]:
    out = subprocess.run(
        [sys.executable, "-c", "import charaid\n" + code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    return out.returncode, out.stdout, out.stderr


# each child runs sgemm on both backends' inputs and prints its name and the product's bits
CHILD = """
import json, numpy as np
from charaid.fastops.blas import blas_name, sgemm
rng = np.random.default_rng(3)
a = rng.standard_normal((300, 37), dtype=np.float32)
b = rng.standard_normal((37, 29), dtype=np.float32)
c = np.zeros((300, 29), np.float32)
sgemm(a, b, c, 0.0)
print(json.dumps({"name": blas_name(), "sum": float(c.astype(np.float64).sum()),
                  "err": float(np.abs(c - a @ b).max())}))
"""


@pytest.mark.parametrize("choice", ["", "openblas", "mkl"])
def test_each_choice_runs_on_its_blas_and_matches_numpy(choice):
    if choice == "mkl" and not _mkl_installed():
        pytest.skip("the mkl wheel is not installed here (x86-64 only)")
    rc, out, err = _in_child(CHILD, CHARAID_BLAS=choice)
    assert rc == 0, err
    got = json.loads(out)
    want = choice or ("mkl" if _mkl_installed() else "openblas")
    assert got["name"] == want
    assert got["err"] < 1e-4


def test_an_unknown_choice_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(BLAS_ENV, "atlas")
    with pytest.raises(CharaidError, match="CHARAID_BLAS='atlas'.*mkl, openblas"):
        blas_choice()


def test_mkl_asked_for_but_missing_says_how_to_install(monkeypatch):
    monkeypatch.setenv(BLAS_ENV, "mkl")
    monkeypatch.setattr(blas, "_mkl_sgemm", lambda: None)  # as on a machine without the wheel
    blas._cblas_sgemm.cache_clear()
    try:
        with pytest.raises(CharaidError, match="CHARAID_BLAS=mkl.*pip install mkl"):
            blas.blas_name()
        monkeypatch.delenv(BLAS_ENV)
        blas._cblas_sgemm.cache_clear()
        assert blas.blas_name() == "openblas"  # unset: falls back without a word
    finally:
        blas._cblas_sgemm.cache_clear()  # the next caller finds the real backends again


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_sgemm_transposes_and_accumulates_on_views(ta, tb):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 50), dtype=np.float32)
    b = rng.standard_normal((60, 70), dtype=np.float32)
    # views with a leading dimension wider than their rows
    av = a[3 : 3 + (23 if ta else 17), 5 : 5 + (17 if ta else 23)]
    bv = b[2 : 2 + (19 if tb else 23), 1 : 1 + (23 if tb else 19)]
    c = rng.standard_normal((30, 40), dtype=np.float32)
    cv = c[4:21, 7:26]
    want = (av.T if ta else av) @ (bv.T if tb else bv) + 0.5 * cv
    outside = c.copy()
    blas.sgemm(av, bv, cv, 0.5, ta=ta, tb=tb)
    np.testing.assert_allclose(cv, want, rtol=1e-4, atol=1e-4)
    outside[4:21, 7:26] = cv
    np.testing.assert_array_equal(c, outside)  # nothing written beyond the view


def test_matmul_takes_transposed_views():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((31, 12), dtype=np.float32)
    b = rng.standard_normal((31, 9), dtype=np.float32)
    np.testing.assert_allclose(blas.matmul(a.T, b), a.T @ b, rtol=1e-5, atol=1e-5)
    out = np.empty((9, 12), np.float32)
    assert blas.matmul(b.T, a, out) is out
    np.testing.assert_allclose(out, b.T @ a, rtol=1e-5, atol=1e-5)
    # float64 (the gradient checks) goes through numpy
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    got = blas.matmul(a64.T, b64)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, a64.T @ b64, rtol=1e-12)


def test_the_same_product_whatever_the_alignment():
    """MKL in its reproducible mode (and OpenBLAS) give the same floats at any address: the
    ring convolutions read row blocks starting anywhere."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((500, 77), dtype=np.float32)
    b = rng.standard_normal((77, 45), dtype=np.float32)
    results = []
    for shift in range(8):
        buf = np.empty(a.size + shift, np.float32)
        aa = buf[shift:].reshape(a.shape)
        aa[...] = a
        c = np.zeros((500, 45), np.float32)
        blas.sgemm(aa, b, c, 0.0)
        results.append(c)
    for c in results[1:]:
        np.testing.assert_array_equal(c, results[0])
