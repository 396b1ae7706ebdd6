"""Memory of a replay: what a layer takes while it is replayed, and the process's resident set.

A replay holds, per layer being replayed, the layer's input (its masks unpacked to bool, and for
ReRAM the float16 weights and update: ``input_bytes``) and its family's working set (im2col
operands, per-tile arrays, crossbar and write arrays: each family's ``working_bytes``; an edge-NPU
pass sizes its chunks to its share of the budget). ``simulate`` admits a layer to the workers
only while the layers in flight fit the budget, and refuses up front a layer that does not fit
alone. The ``hwsim`` command adds what the process already holds (interpreter, numpy, pandas,
pyarrow: ``rss_bytes`` just before the replay, about 130 MB) to make ``--memory-budget`` a bound
on the whole process's peak.
"""

from __future__ import annotations

import ctypes
import importlib
import math
import os
import resource
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from archs.units import format_size
from traces.format.layer import LayerSpec

from .errors import MappingError
from .layer_input import MASK_TENSORS

MIB = 2**20


def input_bytes(spec: LayerSpec, mask_batch: int, weights: bool) -> int:
    """Bytes of one layer's ``LayerInput``: its masks as bool arrays for ``mask_batch`` samples,
    the packed bits they are unpacked from, and with ``weights`` the float16 weight and update."""
    masks = sum(spec.numel(t, mask_batch) for t in MASK_TENSORS)
    return math.ceil(masks * 9 / 8) + (4 * spec.numel("w", 1) if weights else 0)


def operand_bytes(spec: LayerSpec, batch: int, passes: Sequence[str]) -> int:
    """The largest GEMM pass's operands A and C as bool arrays (``M·K + M·N`` per group), twice:
    what any family's replay of the layer holds at least."""
    gemms = [spec.gemm(p, batch) for p in passes if p in spec.gemm_passes]
    return max((2 * g.groups * g.m * (g.k + g.n) for g in gemms), default=0)


def generic_working_bytes(spec: LayerSpec, batch: int, passes: Sequence[str]) -> int:
    """A family without its own estimate: every GEMM pass's three operands as bool arrays, eight
    times over (the most any family took per element in the measurements of issue 22), plus 4 MiB."""
    total = 0
    for p in passes:
        if p not in spec.gemm_passes:
            continue
        g = spec.gemm(p, batch)
        total = max(total, 8 * g.groups * (g.m * g.k + g.k * g.n + g.m * g.n))
    return total + 4 * MIB


def rss_bytes() -> int:
    """The resident set of this process now (Linux ``/proc/self/statm``; elsewhere its peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The largest resident set this process has had (``getrusage``: kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class MemoryBudgetError(MappingError):
    """A layer that does not fit the replay's memory budget even alone (raised before reading it)."""

    def __init__(self, layer: str, need_bytes: float, budget_bytes: float, detail: str) -> None:
        self.layer, self.need_bytes, self.budget_bytes = layer, need_bytes, budget_bytes
        super().__init__(f"layer {layer} needs about {format_size(need_bytes)} to replay ({detail}), over "
                         f"the memory budget of {format_size(budget_bytes)}; replay fewer samples (record "
                         "with --mask-samples) or give a larger budget (--memory-budget)")


def family_working_bytes(family: ModuleType) -> Callable[[Any, LayerSpec, int, Sequence[str], bool], int]:
    """The family's ``memory.working_bytes(ctx, spec, batch, passes, weights)`` (``hwsim.<family>.memory``;
    ``weights``: the trace stores weights and updates), or ``generic_working_bytes``."""
    try:
        module = importlib.import_module(f"{family.__name__}.memory")
    except ModuleNotFoundError:
        return lambda ctx, spec, batch, passes, weights: generic_working_bytes(spec, batch, passes)

    def working(ctx: Any, spec: LayerSpec, batch: int, passes: Sequence[str], weights: bool) -> int:
        if not spec.gemm_passes:  # an embedding: vector work on counts, no operand arrays
            return 4 * MIB
        return module.working_bytes(ctx, spec, batch, passes, weights)

    return working


def keep_freed_memory_small() -> None:
    """glibc: serve arrays of 1 MiB and more from their own mappings, returned to the system when
    freed (its default threshold grows to 32 MiB, so freed arrays below it stay resident and the
    peak RSS drifts above what is live). Nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 2**20)  # M_MMAP_THRESHOLD: fixed, so it no longer grows
        libc.mallopt(-1, 2**20)  # M_TRIM_THRESHOLD: give back freed heap tops above 1 MiB
    except (OSError, AttributeError):  # not glibc
        pass
