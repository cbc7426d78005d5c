"""The threads every kernel splits its own work over (`set_num_threads`; default: every core).

A convolution's output-column chunks (or, for the input gradient, its input channels), a
pooling's channels, a linear layer's features, a parameter's elements. Each thread runs
single-threaded BLAS on its part, so the copies, pooling and Adam run in parallel too, not
only the GEMMs, and no BLAS thread spins waiting for the next call. Measured on the 2-core
reference VM: OpenBLAS's own 2-thread GEMMs swung between 70 and 160 ms per SeedCNN update (its
workers spin and wait for each other between calls), single-threaded BLAS held 96-116 ms, and
splitting the whole layer over two threads beat both.

The thread state (`_n_threads`, the pool, the BLAS limit, the lock guarding them) lives here
only: other modules go through these functions, never through a copy of the names.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import threadpoolctl

T = TypeVar("T")

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
