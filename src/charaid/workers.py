"""A process pool with a watchdog: a task that hangs is retried once in a fresh process.

animeface's native code can spin forever after a particular run of earlier calls in the same
process (hidden state; each frame alone takes ~0.1 s). A plain Pool would hang the stage, so each
worker runs one task at a time under a deadline; on a hang or crash the worker is killed, a new
one starts (with fresh state) and the task is tried once more before it is reported as failed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.forkserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

FAILED = object()  # result of a task that hung or crashed twice


def _serve(conn: Connection, init: Callable | None, init_args: tuple, func: Callable) -> None:
    if init is not None:
        init(*init_args)
    while True:
        task = conn.recv()
        if task is None:
            return
        try:
            conn.send((True, func(task)))
        except Exception as exc:  # reported to the parent, which decides
            conn.send((False, f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, ctx, init, init_args, func) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, init, init_args, func), daemon=True)
        self.proc.start()
        child.close()
        self.task: Any = None
        self.tries = 0
        self.started = 0.0

    def give(self, task: Any, tries: int) -> None:
        self.task, self.tries, self.started = task, tries, time.monotonic()
        self.conn.send(task)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


@contextlib.contextmanager
def _forkserver(preload: list[str]) -> Iterator[mp.context.BaseContext]:
    """A multiprocessing context whose workers fork from a fresh server process.

    `spawn` starts every worker as a new interpreter that imports numpy, OpenCV and charaid again
    (~0.5 s of CPU each, a sixth of a short detect_faces run on 2 cores). The fork server imports
    them once, before any thread exists (forking a process with live OpenCV or BLAS threads can
    deadlock: hence not plain `fork`), and each worker, a replacement after a hang included, is a
    fork of it with fresh state. The server is stopped afterwards, so each call pays for its own
    (a benchmark that calls this in a loop is not flattered by a warm server).
    """
    if "forkserver" not in mp.get_all_start_methods():  # not on Windows or macOS builds without it
        yield mp.get_context("spawn")
        return
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    try:
        yield ctx
    finally:
        stop = getattr(multiprocessing.forkserver._forkserver, "_stop", None)
        if stop is not None:
            stop()


def watchdog_map(
    func: Callable,
    tasks: Iterable,
    workers: int,
    timeout: float,
    init: Callable | None = None,
    init_args: tuple = (),
    warmup: Callable | None = None,
    preload: Sequence[str] = (),
) -> Iterator[tuple]:
    """Yield (task, result) as tasks finish; result is FAILED after two hangs or crashes.

    A task whose function raises is re-raised here as RuntimeError (a bug, not a hang).
    `warmup`, for work that cannot hang: this process runs tasks with it while the workers start.
    `preload`: more modules for the fork server to import before it forks a worker (work every
    worker would otherwise repeat on its own core).
    """
    funcs = {f.__module__ for f in (func, init) if f is not None}
    preload = ["__main__", *sorted(funcs), *preload]
    with _forkserver(preload) as ctx:
        yield from _run(ctx, func, tasks, workers, timeout, init, init_args, warmup)


def _run(ctx, func, tasks, workers, timeout, init, init_args, warmup) -> Iterator[tuple]:
    queue: list[tuple[Any, int]] = [(t, 0) for t in tasks]
    queue.reverse()
    size = max(1, min(workers, len(queue)))
    pool: list[_Worker] = []
    # Starting blocks until the fork server has imported everything (~0.4 s on one core, the
    # other idle): a thread waits for it while this process works through `warmup` tasks.
    starter = threading.Thread(
        target=lambda: pool.extend(_Worker(ctx, init, init_args, func) for _ in range(size)),
        daemon=True,
    )
    starter.start()
    try:
        while warmup is not None and starter.is_alive() and len(queue) > size:
            task, _ = queue.pop()
            yield task, warmup(task)
        starter.join()
        if len(pool) < size:
            raise RuntimeError("worker processes could not be started")
        for w in pool:
            if queue:
                w.give(*queue.pop())
        while any(w.task is not None for w in pool):
            busy = [w for w in pool if w.task is not None]
            ready = wait([w.conn for w in busy], timeout=1.0)
            for i, w in enumerate(pool):
                if w.task is None:
                    continue
                result: Any = None
                if w.conn in ready:
                    try:
                        ok, result = w.conn.recv()
                    except (EOFError, OSError):
                        ok, result = None, None  # the worker died
                    if ok is False:
                        raise RuntimeError(f"worker failed on {w.task!r}: {result}")
                elif time.monotonic() - w.started > timeout:
                    ok = None
                else:
                    continue
                task, tries = w.task, w.tries
                if ok is None:  # hung or crashed: replace the worker, retry once
                    w.stop(kill=True)
                    pool[i] = w = _Worker(ctx, init, init_args, func)
                    if tries == 0:
                        w.give(task, 1)
                        continue
                    result = FAILED
                w.task = None
                yield task, result
                if queue:
                    w.give(*queue.pop())
    finally:
        starter.join()
        for w in pool:
            w.stop(kill=w.task is not None)
