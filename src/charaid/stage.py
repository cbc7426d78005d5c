"""Run a stage or command so that user errors print one line and no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from charaid.errors import CharaidError


def run(main: Callable[[], object]) -> None:
    """Call `main`; on a CharaidError print `error: ...` and exit 1."""
    try:
        main()
    except CharaidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
