"""hwsim: trace-driven cycle-level simulator and cost model for sparse neural-network training."""

from __future__ import annotations

from importlib import metadata

from traces import TraceFormatError

try:
    __version__ = metadata.version("hwsim")
except metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["TraceFormatError", "__version__"]
