"""One task of a sweep: some points on one trace, run where the task lands (any process).

A task is plain data (the trace's path and content hash, the points with their architectures,
the options) and returns plain data (per point: its report rows or its error), so the same
function runs in-process, on a LocalCluster and on any Dask cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hwsim.simulate import simulate

from . import cache as worker
from .points import Point
from .spec import Options


@dataclass
class PointResult:
    """What a worker sends back for one point."""

    key: str
    rows: pd.DataFrame | None  # Report.to_frame(meta=True); None when the point failed
    error: str | None
    seconds: float


def run_task(trace_path: str, trace_hash: str, points: list[Point], options: Options,
             cache_bytes: int = worker.DEFAULT_BUDGET_BYTES, use_cache: bool = True) -> list[PointResult]:
    """Replay ``points`` on one trace; a point that raises records its error and the rest go on."""
    out = []
    wc = worker.worker_cache(cache_bytes)
    its = None if options.iterations is None else list(options.iterations)
    for p in points:
        t0 = time.perf_counter()
        if p.arch is None:
            out.append(PointResult(p.key, None, p.error or "invalid architecture", 0.0))
            continue
        try:
            if use_cache:
                with worker.installed(wc):
                    report = simulate(wc.trace(trace_path, trace_hash), p.arch, passes=options.passes,
                                      iterations=its,
                                      backend=options.backend, workers=1)
            else:
                report = simulate(trace_path, p.arch, passes=options.passes,
                                  iterations=its,
                                  backend=options.backend, workers=1)
            rows = report.to_frame(meta=True)
            out.append(PointResult(p.key, rows, None, time.perf_counter() - t0))
        except Exception as exc:  # a MappingError (a ValueError) above all; any other is recorded too
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())
            out.append(PointResult(p.key, None, msg, time.perf_counter() - t0))
    return out


def cache_stats() -> dict[str, Any]:
    """This process's cache counters (for tests and the bench)."""
    return worker.worker_cache().stats() if worker._WORKER is not None else {}
