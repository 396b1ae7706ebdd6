"""The ``hwsim`` command line.

User errors (bad traces, bad configs, bad options, file-system failures such as a read-only or
full disk) print one line naming the file and exit 2, never a traceback; set ``HWSIM_DEBUG=1`` to
see the traceback anyway. Output piped into a reader that stops early (``| head``) ends quietly
with status 141 (128 + SIGPIPE, as if killed by it). Ctrl-C prints one line and exits 130 at
once (replay's layer workers are not waited for), however often it is pressed. Long work shows a
progress bar (on a terminal). torch is imported only by the commands that train.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from archs import ConfigError
from archs.errors import printable
from traces import RecorderError, TraceFormatError

from .archs import add_archs
from .demo import add_demo
from .replay import add_replay
from .report import add_report
from .sweep import add_sweep
from .trace import add_trace, add_train

USER_ERRORS = (ConfigError, TraceFormatError, RecorderError, FileExistsError, FileNotFoundError,
               ValueError)  # MappingError is a ValueError


# -- entry point ------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [add_demo, add_train, add_trace, add_replay, add_sweep, add_report,
                                         add_archs]


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


def _ignore_further_interrupts() -> None:
    """After Ctrl-C the command is over: more presses while the process ends (cancelled layer
    workers, the interpreter's exit) are ignored instead of raising in the middle of the exit. The
    handler is not restored, also for a caller that runs ``main`` in its own process."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# What to do about a file-system error, by errno.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free some space or write to another disk",
    errno.EDQUOT: "the disk quota is exhausted; free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; write to a writable location",
    errno.EACCES: "permission denied; write to a location you own or fix its permissions",
    errno.EPERM: "operation not permitted; write to a location you own",
    errno.ENOENT: "no such file or directory; check the path",
    errno.ENOTDIR: "a part of the path is a file, not a directory; check the path",
    errno.EISDIR: "it is a directory; give a file name",
    errno.EEXIST: "it already exists; remove it or choose another name",
}


def describe_os_error(exc: OSError) -> str:
    """One line for a file-system error: the path(s), what happened and what to do."""
    paths = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    what = exc.strerror or exc.__class__.__name__
    hint = _OS_HINTS.get(exc.errno) if exc.errno is not None else None
    if hint is None:
        hint = f"{what}; check the path and the disk"
    elif what.lower() not in hint.lower():
        hint = f"{what}: {hint}"
    return f"{paths}: {hint}" if paths else f"{exc}; {hint}"


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured in tests)
        pass


def _user_error(text: str) -> int:
    try:
        print(f"hwsim: error: {text}", file=sys.stderr)
    except OSError:  # stderr itself is gone
        pass
    return 2


def _interrupted() -> int:
    _ignore_further_interrupts()
    try:
        print("hwsim: interrupted", file=sys.stderr)
    except OSError:
        pass
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 Ctrl-C, 141 reader closed the
    pipe)."""
    try:
        args = parser().parse_args(argv)  # loads the verbs' modules
    except KeyboardInterrupt:
        return _interrupted()
    previous = _terminate_cleanly()
    debug = bool(os.environ.get("HWSIM_DEBUG"))
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:  # `hwsim ... | head`: the reader has what it wanted
        if debug:
            raise
        _quiet_stdout()
        return 128 + signal.SIGPIPE
    except USER_ERRORS as exc:
        if debug:
            raise
        # one line: a ConfigError's problems are indented lines of their own and already escaped
        return _user_error(str(exc) if isinstance(exc, ConfigError) else printable(str(exc)))
    except OSError as exc:  # the file system refused (read-only, full, missing directory, ...)
        if debug:
            raise
        return _user_error(printable(describe_os_error(exc)))
    except KeyboardInterrupt:
        return _interrupted()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
