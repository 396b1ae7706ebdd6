"""Errors of the simulator proper (traces and architectures have their own)."""

from __future__ import annotations


class MappingError(ValueError):
    """A pass cannot be mapped onto the architecture; the message ends with a hint."""
