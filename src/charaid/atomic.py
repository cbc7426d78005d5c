"""Write outputs so that a crash or kill never leaves a half-written file or folder behind."""

from __future__ import annotations

import contextlib
import errno
import glob
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

FAULT_ENV = "CHARAID_FAULT_ENOSPC"


def _fault(path: Path) -> None:
    """Test hook: CHARAID_FAULT_ENOSPC=<name> fails the commit of outputs called <name> with
    ENOSPC, as if the disk filled up while they were written (tests/e2e/test_bad_input.py)."""
    if os.environ.get(FAULT_ENV) == path.name:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@contextlib.contextmanager
def _named(tmp: Path, path: Path) -> Iterator[None]:
    """A write error inside the block names the output (`path`), not its temporary twin."""
    try:
        yield
    except OSError as exc:
        if exc.errno is not None and (exc.filename is None or str(tmp) in str(exc.filename)):
            name = str(exc.filename).replace(str(tmp), str(path)) if exc.filename else str(path)
            raise OSError(exc.errno, exc.strerror, name) from None
        raise


def _clear_stale(path: Path) -> None:
    """Remove the temporary twins of `path` that a killed run (SIGKILL, power cut) left behind."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
    try:
        with _named(tmp_path, path):
            yield tmp_path
        _fault(path)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder; it replaces `path` as a whole only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        with _named(tmp, path):
            yield tmp
        _fault(path)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def npz_bytes(arrays: dict[str, Any], compress: bool = True) -> bytes:
    """What np.savez writes, but the same arrays always give the same bytes: members sorted by
    name (Chainer lists a model's parameters from a set, in another order in every process),
    a fixed zip timestamp, and built in memory so a failed write leaves no half-closed zip."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, array in sorted(arrays.items()):  # Chainer lists parameters from a set
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
    return buf.getvalue()


def write_npz(path: str | os.PathLike, arrays: dict[str, Any], compress: bool = True) -> None:
    """Atomic, deterministic .npz (np.load reads it)."""
    write_bytes(path, npz_bytes(arrays, compress))
