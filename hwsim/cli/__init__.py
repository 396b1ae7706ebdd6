"""The ``hwsim`` command line: ``main.py`` plus one module per verb.

``main`` and ``parser`` load on first use, so that the console script (:func:`run`) is running
before numpy, pandas and the verbs' modules load (most of a second): Ctrl-C then prints one line
too, never a traceback from inside an import.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import types
from typing import Any

__all__ = ["main", "parser", "run"]


def run() -> None:
    """The ``hwsim`` console script and ``python -m hwsim.cli``: :func:`main`'s status as the
    process's exit status, also when Ctrl-C comes while the command's modules load (130)."""
    try:
        from .main import main
    except KeyboardInterrupt:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # further presses while the process ends
        print("hwsim: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())


def __getattr__(name: str) -> Any:
    if name in ("main", "parser"):
        return getattr(importlib.import_module(f"{__name__}.main"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """This package's type: its ``main`` stays the entry function when the import system binds the
    submodule of the same name (``hwsim.cli.main``) to the package on loading it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "main" and isinstance(value, types.ModuleType):
            value = value.main
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
