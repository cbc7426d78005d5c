"""OpenBLAS's kernels for this CPU, chosen before numpy loads it.

numpy 1.26 (the last numpy Chainer runs on) bundles OpenBLAS 0.3.23, which does not know CPUs
newer than it (e.g. Intel's Sapphire/Emerald Rapids, family 6 model 207) and falls back to its
generic "Prescott" SSE3 kernels: a 2048x2048 SGEMM ran at 72 GFLOP/s there instead of 334 with
the AVX-512 kernels the CPU has, and every convolution and linear layer of charaid's fast CPU
kernels (`charaid.fastops`) is such a GEMM. OpenBLAS reads its choice from OPENBLAS_CORETYPE once,
when the library loads, so the `charaid` package sets it on import, from the CPU's own feature
flags, before anything of charaid imports numpy; processes started afterwards (stages under
`dvc repro`, MPI workers) inherit it.

A value the user set is kept (`OPENBLAS_CORETYPE=Prescott` restores OpenBLAS's own fallback). A
process that imported numpy before charaid keeps the kernels it already has, and is told so
when those are the generic ones (a notebook's `import numpy as np` first line trains 2-4x
slower without a sign).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

ENV = "OPENBLAS_CORETYPE"
# which BLAS charaid's kernels run their GEMMs on (charaid.fastops.blas): unset = MKL where
# installed, else numpy's OpenBLAS
BLAS_ENV = "CHARAID_BLAS"
BLAS_CHOICES = ("mkl", "openblas")

# (OpenBLAS core name, the CPU flags its SGEMM kernels need), the fastest first; every x86-64
# OpenBLAS build with DYNAMIC_ARCH (numpy's wheels) has these two.
CORES = (
    ("SkylakeX", frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})),
    ("Haswell", frozenset({"avx2", "fma"})),
)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's feature flags (Linux's cpuinfo); empty where there is none."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def pick_core(flags: frozenset[str]) -> str | None:
    """The fastest OpenBLAS core whose kernels `flags` can run; None: leave OpenBLAS to choose."""
    for name, needs in CORES:
        if needs <= flags:
            return name
    return None


def choose_openblas_core(environ: dict | os._Environ = os.environ) -> str | None:
    """Set OPENBLAS_CORETYPE from the CPU's flags unless it already holds a value; returns the
    value now in effect (None: unset, OpenBLAS detects the CPU itself)."""
    if environ.get(ENV, "").strip():
        return environ[ENV]
    core = pick_core(cpu_flags())
    if core is not None:
        environ[ENV] = core
    return core


GENERIC = "Prescott"  # OpenBLAS's fallback kernels on an x86-64 CPU it does not know


def warn_if_loaded_generic(environ: dict | os._Environ = os.environ) -> None:
    """numpy was imported before charaid: if its OpenBLAS runs the generic kernels on a CPU with
    better ones, and the user chose none, warn once with what to do. (After
    `choose_openblas_core`, a variable holding another core than ours is the user's.)"""
    core = pick_core(cpu_flags())
    if core is None or environ.get(ENV, "").strip() not in ("", core):
        return  # nothing better to offer, or the user's own choice
    import numpy
    from threadpoolctl import threadpool_info

    # numpy's own copy: OpenCV's and scipy's wheels bring OpenBLAS copies of their own
    own = Path(numpy.__file__).resolve().parent.parent / "numpy.libs"
    loaded = [
        lib.get("architecture")
        for lib in threadpool_info()
        if lib.get("internal_api") == "openblas"
        and Path(lib.get("filepath", "")).resolve().parent == own
    ]
    if GENERIC in loaded:
        warnings.warn(
            f"numpy was imported before charaid, so its OpenBLAS runs the generic {GENERIC} "
            f"kernels on this CPU (2-4x slower training); import charaid before numpy, or "
            f"start Python with {ENV}={core}",
            RuntimeWarning,
            stacklevel=3,
        )


def blas_choice() -> str:
    """The BLAS CHARAID_BLAS asks for ('' = the default: MKL where installed); a CharaidError
    for anything else."""
    choice = os.environ.get(BLAS_ENV, "").strip().lower()
    if choice and choice not in BLAS_CHOICES:
        from charaid.errors import CharaidError

        raise CharaidError(
            f"{BLAS_ENV}={choice!r}: use one of {', '.join(BLAS_CHOICES)}, or leave it unset"
        )
    return choice
