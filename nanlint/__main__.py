"""``python -m nanlint`` and the ``nanlint`` command. The command line is imported inside :func:`run`, so
that Ctrl-C while nanlint is still loading exits 130 with one line, as it does later, not with a traceback."""
from __future__ import annotations

import sys


def run() -> None:
    try:
        from nanlint.cli import main
    except KeyboardInterrupt:
        print("nanlint: interrupted", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
