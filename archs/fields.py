"""The field helper every component uses: unit and source travel with the default."""

from __future__ import annotations

import dataclasses
from typing import Any

# The largest number any field accepts when it has no tighter bound of its own (``le``): far above
# every real machine, and small enough that products of a few fields stay finite in float64.
MAX_NUMBER = 1e30
# Upper bounds of counts and sizes (``le`` on the fields in components.py), so that the integer
# products replay forms (tiles × folds × cycles, bytes × instances) stay within int64:
# bits per element <= 64, PE rows/cols <= 2**20, latencies <= 2**40 cycles, capacities <= 2**60 B.
MAX_MACS_PER_CYCLE = 2**30  # compute.rows × compute.cols × compute.macs_per_pe_per_cycle


def spec(default: Any = dataclasses.MISSING, *, doc: str, gt: float | None = None,
         ge: float | None = None, le: float | None = None) -> Any:
    """A dataclass field with a description (unit and source) and range limits.

    ``doc`` is written as the comment beside the field in YAML dumps and shown by
    ``hwsim archs show``; ``gt``/``ge``/``le`` are checked by the loader. A field without ``le``
    still accepts at most :data:`MAX_NUMBER`.
    """
    meta = {"doc": doc, "gt": gt, "ge": ge, "le": le}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults: components are frozen and hashable")
    return dataclasses.field(default=default, metadata=meta)
