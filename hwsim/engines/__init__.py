"""Timing back ends over per-tile cost arrays: ``analytic`` (closed form / max-plus) and ``event`` (simpy).

Both take per-tile compute, DMA-in and write-back cycles and return a :class:`Schedule`; they agree
exactly (property-tested). ``run`` schedules whole arrays; :func:`scheduler` gives an object that
takes the tiles in chunks (``feed``) and returns the schedule at ``finish()``: the analytic one
keeps only the last few steps between chunks (bounded memory for any number of tiles), the event
one collects the cycle arrays (24 bytes per tile) and simulates them at the end. ``event`` imports
simpy, so it is loaded only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from .analytic import Schedule

BACKEND_NAMES = ("analytic", "event")


class TileScheduler(Protocol):
    tiles: int

    def feed(self, compute: np.ndarray, dma: np.ndarray, wb: np.ndarray) -> None: ...

    def finish(self) -> Schedule: ...


def backend(name: str) -> Callable[..., Schedule]:
    """The ``run`` function of a timing back end by name."""
    if name == "analytic":
        from .analytic import run
        return run
    if name == "event":
        from .event import run
        return run
    raise ValueError(f"unknown backend {name!r}; choose one of {list(BACKEND_NAMES)}")


def scheduler(name: str, *, slots: int = 2, shared: bool = False) -> TileScheduler:
    """A chunk-fed scheduler of the named back end (totals only: ``finish().total_cycles``)."""
    if name == "analytic":
        from .analytic import Scheduler
        return Scheduler(slots=slots, shared=shared)
    if name == "event":
        from .event import Scheduler as EventScheduler
        return EventScheduler(slots=slots, shared=shared)
    raise ValueError(f"unknown backend {name!r}; choose one of {list(BACKEND_NAMES)}")


__all__ = ["BACKEND_NAMES", "Schedule", "TileScheduler", "backend", "scheduler"]
