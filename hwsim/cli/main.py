"""The ``hwsim`` command line.

User errors (bad traces, bad configs, bad options) print one line and exit 2, never a
traceback; set ``HWSIM_DEBUG=1`` to see the traceback anyway. Long work shows a progress bar
(on a terminal). torch is imported only by the commands that train.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from archs import ConfigError
from traces import RecorderError, TraceFormatError

from .archs import add_archs
from .demo import add_demo
from .replay import add_replay
from .report import add_report
from .trace import add_trace, add_train

USER_ERRORS = (ConfigError, TraceFormatError, RecorderError, FileExistsError, FileNotFoundError,
               ValueError)  # MappingError is a ValueError


# -- entry point ------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [add_demo, add_train, add_trace, add_replay, add_report, add_archs]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hwsim",
        description="Trace-driven simulator and cost model for sparse neural-network training.")
    from hwsim import __version__

    p.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def _terminate_cleanly() -> Any:
    """SIGTERM unwinds like Ctrl-C (temporary files are removed on the way out), exit status 143.
    Returns the previous handler (None off the main thread, where signals cannot be handled)."""
    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, on_term)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error)."""
    args = parser().parse_args(argv)
    previous = _terminate_cleanly()
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        if os.environ.get("HWSIM_DEBUG"):
            raise
        print(f"hwsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
