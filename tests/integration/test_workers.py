"""The watchdog pool: hung or crashed tasks are retried once in a fresh process, then FAILED."""

import os
import time
from pathlib import Path

import pytest

from charaid.workers import FAILED, watchdog_map


def flaky(task: str) -> str:
    kind, marker = task.split(":", 1)
    if kind == "always":
        time.sleep(60)
    if kind in ("once", "crash_once") and not Path(marker).exists():
        Path(marker).touch()  # hang/crash only on the first try, like animeface's hidden state
        if kind == "crash_once":
            os._exit(3)
        time.sleep(60)
    if kind == "bug":
        raise ValueError("boom")
    return kind.upper()


def test_hangs_and_crashes_are_retried_then_reported(tmp_path):
    tasks = ["ok:-", f"once:{tmp_path}/a", f"crash_once:{tmp_path}/b", "always:-", "fine:-"]
    started = time.monotonic()
    results = dict(watchdog_map(flaky, tasks, workers=2, timeout=1.5))
    assert results == {
        "ok:-": "OK",
        f"once:{tmp_path}/a": "ONCE",
        f"crash_once:{tmp_path}/b": "CRASH_ONCE",
        "always:-": FAILED,
        "fine:-": "FINE",
    }
    assert time.monotonic() - started < 30


def test_an_exception_is_a_bug_not_a_hang():
    with pytest.raises(RuntimeError, match="ValueError: boom"):
        list(watchdog_map(flaky, ["bug:-"], workers=1, timeout=5))


def parent_pid(_task: str) -> int:
    return os.getppid()


def test_workers_fork_from_one_server_that_is_stopped_afterwards():
    """Workers are forks of a fork server (numpy and OpenCV imported once, not per worker), and
    the server does not outlive the map."""
    parents = set(dict(watchdog_map(parent_pid, ["a", "b", "c"], workers=2, timeout=30)).values())
    assert len(parents) == 1 and os.getpid() not in parents
    with pytest.raises(ProcessLookupError):
        os.kill(parents.pop(), 0)


def kernels_loaded(_task: str) -> tuple[int, int]:
    """The parent of this worker, and how many compiled versions of a kernel the folded
    detector runs it holds (0 until something loads or calls it in this process)."""
    import sys

    kernels = sys.modules.get("charaid.fastkernels")
    return os.getppid(), len(kernels.ring_patches.overloads) if kernels else 0


def test_a_preloaded_module_warms_the_server_that_workers_fork_from():
    """`preload`: the learned detector's kernels load in the fork server, so every worker starts
    with them; the server still goes away afterwards."""
    found = dict(
        watchdog_map(
            kernels_loaded, ["a", "b"], workers=2, timeout=60, preload=["charaid.detector.preload"]
        )
    )
    parents = {parent for parent, _ in found.values()}
    assert all(loaded > 0 for _, loaded in found.values())
    assert len(parents) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(parents.pop(), 0)
    cold = dict(watchdog_map(kernels_loaded, ["a"], workers=1, timeout=60))
    assert cold["a"][1] == 0  # without it, nothing loaded them


def square_and_pid(task: int) -> tuple[int, int]:
    return task * task, os.getpid()


def test_warmup_runs_tasks_here_while_the_workers_start():
    """With `warmup`, this process works through tasks until the workers are up (the fork
    server takes a good tenth of a second to import numpy and OpenCV), leaving them at least one
    task each; every task is done exactly once."""
    tasks = list(range(300))
    results = list(
        watchdog_map(square_and_pid, tasks, workers=2, timeout=30, warmup=square_and_pid)
    )
    assert sorted(t for t, _ in results) == tasks
    assert all(value == t * t for t, (value, _) in results)
    by = [pid for _, (_, pid) in results]
    assert os.getpid() in by and len(set(by) - {os.getpid()}) == 2
