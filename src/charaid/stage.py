"""Run a stage or command so that user errors print one line and no traceback."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

from charaid.errors import CharaidError

HINTS = {
    errno.ENOSPC: "free some disk space and rerun",
    errno.EDQUOT: "free some space within your quota and rerun",
    errno.EFBIG: "the file size limit (ulimit -f) is too small for this output",
    errno.EROFS: "the folder is read-only; write the outputs elsewhere",
    errno.EACCES: "check the permissions of the folder",
}


def run(main: Callable[[], object]) -> None:
    """Call `main`; on a CharaidError or an OSError print `error: ...` and exit 1."""
    try:
        main()
    except CharaidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        # the machine, not the code: a full disk, a read-only or vanished folder, a size limit
        where = f"{exc.filename}: " if exc.filename else ""
        hint = HINTS.get(exc.errno, "check the path and rerun")
        print(f"error: {where}{exc.strerror or exc}; {hint}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
