"""Timing back ends over per-tile cost arrays: ``analytic`` (closed form / max-plus) and ``event`` (simpy).

Both take per-tile compute, DMA-in and write-back cycles and return a :class:`Schedule`; they agree
exactly without contention. ``event`` imports simpy, so it is loaded only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable

from .analytic import Schedule

BACKEND_NAMES = ("analytic", "event")


def backend(name: str) -> Callable[..., Schedule]:
    """The ``run`` function of a timing back end by name."""
    if name == "analytic":
        from .analytic import run
        return run
    if name == "event":
        from .event import run
        return run
    raise ValueError(f"unknown backend {name!r}; choose one of {list(BACKEND_NAMES)}")


__all__ = ["BACKEND_NAMES", "Schedule", "backend"]
