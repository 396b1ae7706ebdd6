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
# Rates and durations, so that a duration in cycles (bytes / bandwidth × clock, ns × clock) stays far
# inside int64 for any trace a replay reads: clocks and sample rates 1 kHz .. 1 THz (10 THz for ADCs),
# bandwidths 0 (unlimited) or >= 1 kB/s (1e-3 bytes/cycle), durations 1 fs .. 1 s, efficiencies and
# speedups >= 1e-3 (a GEMM at most 1000 times slower than the peak).
MIN_HZ, MAX_HZ = 1e3, 1e12
MIN_BANDWIDTH_BYTES_PER_S = 1e3
MIN_BYTES_PER_CYCLE = 1e-3
MIN_NS, MAX_NS = 1e-6, 1e9
MIN_EFFICIENCY = 1e-3


def spec(default: Any = dataclasses.MISSING, *, doc: str, gt: float | None = None,
         ge: float | None = None, le: float | None = None, nonzero_ge: float | None = None) -> Any:
    """A dataclass field with a description (unit and source) and range limits.

    ``doc`` is written as the comment beside the field in YAML dumps and shown by
    ``hwsim archs show``; ``gt``/``ge``/``le`` are checked by the loader. A field without ``le``
    still accepts at most :data:`MAX_NUMBER`. ``nonzero_ge``: a field where 0 means "unlimited"
    takes 0 or at least this (a bandwidth of 1e-300 bytes/s would make a transfer last longer
    than any cycle count can hold).
    """
    meta = {"doc": doc, "gt": gt, "ge": ge, "le": le, "nonzero_ge": nonzero_ge}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults: components are frozen and hashable")
    return dataclasses.field(default=default, metadata=meta)
