"""hwsim: trace-driven cycle-level simulator and cost model for sparse neural-network training."""

from __future__ import annotations

from typing import Any

__all__ = ["TraceFormatError", "__version__"]


def __getattr__(name: str) -> Any:
    """``hwsim.__version__`` and ``hwsim.TraceFormatError``, loaded on first use: ``import hwsim``
    (the command line's first step) loads nothing else, so Ctrl-C at once still ends in one line."""
    if name == "TraceFormatError":
        from traces import TraceFormatError

        return TraceFormatError
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("hwsim")
        except metadata.PackageNotFoundError:  # running from a source tree without installing
            return "0.0.0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
