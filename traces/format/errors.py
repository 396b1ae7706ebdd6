"""Errors raised for bad traces and for models the recorder cannot capture faithfully."""

from __future__ import annotations

from pathlib import Path


class TraceFormatError(ValueError):
    """A trace on disk is missing, malformed or inconsistent.

    The message is one line naming the file, the field, what was found and what was expected.
    """

    def __init__(self, file: str | Path, field: str, found: object, expected: object) -> None:
        self.file = str(file)
        self.field = field
        self.found = found
        self.expected = expected
        text = f"{self.file}: {field}: found {found}; expected {expected}"
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))  # one line


class RecorderError(RuntimeError):
    """The recorder was asked to capture something it cannot capture without recording wrong data."""


class RecorderWarning(UserWarning):
    """Something in a recorded training step the recorder cannot see, and cannot tell is work: a
    tensor converted to numpy (a GEMM numpy runs on it would be missing from the trace)."""
