"""Run a stage or command so that user errors print one line and no traceback."""

from __future__ import annotations

import errno
import os
import select
import sys
from collections.abc import Callable

from charaid.blas_core import blas_choice
from charaid.errors import CharaidError

HINTS = {
    errno.ENOSPC: "free some disk space and rerun",
    errno.EDQUOT: "free some space within your quota and rerun",
    errno.EFBIG: "the file size limit (ulimit -f) is too small for this output",
    errno.EROFS: "the folder is read-only; write the outputs elsewhere",
    errno.EACCES: "check the permissions of the folder",
}

CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`'s `yes`


def run(main: Callable[[], object]) -> None:
    """Call `main`; on a CharaidError or an OSError print `error: ...` and exit 1.

    Stdout closed by its reader (`charaid predict ... --json | head -1`) is not an error: the
    output nobody reads is dropped, nothing is printed, and the exit code is 141 (128 +
    SIGPIPE), as for any Unix tool stopped by a closed pipe; a `set -o pipefail` script can
    still tell that the output was cut short. A broken pipe that is not stdout's stays an error.
    """
    try:
        blas_choice()  # a misspelt CHARAID_BLAS stops here, before any output
        main()
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe shows here, not as a warning at interpreter exit
    except BrokenPipeError as exc:
        if not _stdout_closed():
            _report_os_error(exc)
        _silence_stdout()
        sys.exit(CLOSED_PIPE_EXIT)
    except CharaidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        _report_os_error(exc)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


def _report_os_error(exc: OSError) -> None:
    # the machine, not the code: a full disk, a read-only or vanished folder, a size limit
    where = f"{exc.filename}: " if exc.filename else ""
    hint = HINTS.get(exc.errno, "check the path and rerun")
    print(f"error: {where}{exc.strerror or exc}; {hint}", file=sys.stderr)
    sys.exit(1)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports POLLERR on its write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no real file descriptor
        return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what is still buffered
    does not fail again ('Exception ignored ... BrokenPipeError')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass
