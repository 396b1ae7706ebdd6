"""One task of a sweep: some points on one trace, run where the task lands (any process).

A task is plain data (the trace's path and content hash, the points with their architectures,
the options) and returns plain data (per point: its report rows or its error), so the same
function runs in-process, on a LocalCluster and on any Dask cluster. Points of a task that differ
only in prices are timed once and re-priced together (:mod:`.reprice`).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hwsim.pricing import NotRepriceable
from hwsim.simulate import simulate

from . import cache as worker
from .points import Point
from .reprice import price_points, record, timing_key
from .spec import Options
from .summary import point_totals


@dataclass
class PointResult:
    """What a worker sends back for one point."""

    key: str
    rows: pd.DataFrame | None  # Report.to_frame(meta=True); None when the point failed
    error: str | None
    seconds: float
    totals: dict[str, Any] | None = None  # summary.point_totals of the rows


def run_task(trace_path: str, trace_hash: str, points: list[Point], options: Options,
             cache_bytes: int = worker.DEFAULT_BUDGET_BYTES, use_cache: bool = True,
             reprice: bool = True) -> list[PointResult]:
    """Replay ``points`` on one trace; a point that raises records its error and the rest go on.

    With ``reprice``, points that share a timing key (:mod:`.reprice`) are timed once and priced
    together; the replay of a key is kept in the worker cache for the next task (with ``use_cache``).
    Results come back in the order of ``points``."""
    wc = worker.worker_cache(cache_bytes)
    trace = wc.trace(trace_path, trace_hash) if use_cache else trace_path
    out: dict[str, PointResult] = {}
    groups: dict[str, list[Point]] = {}
    for p in points:
        if p.arch is None:
            out[p.key] = PointResult(p.key, None, p.error or "invalid architecture", 0.0)
        elif reprice:
            groups.setdefault(p.timing or timing_key(p.arch), []).append(p)
        else:
            out[p.key] = _one(trace, p, options, wc, use_cache)
    for key, group in groups.items():
        memo_key = ("template", trace_hash, str(Path(trace_path).resolve()), key, options_key(options))
        for r in _group(trace, group, options, wc, use_cache, memo_key):
            out[r.key] = r
    return [out[p.key] for p in points]


def _one(trace: Any, p: Point, options: Options, wc: worker.WorkerCache, use_cache: bool) -> PointResult:
    """One point, replayed on its own."""
    t0 = time.perf_counter()
    its = None if options.iterations is None else list(options.iterations)
    wc.count("replays")
    try:
        with worker.installed(wc) if use_cache else contextlib.nullcontext():
            report = simulate(trace, p.arch, passes=options.passes, iterations=its, backend=options.backend,
                              workers=1)
        rows = report.to_frame(meta=True)
        return PointResult(p.key, rows, None, time.perf_counter() - t0, point_totals(rows, 1)[0])
    except Exception as exc:  # a MappingError (a ValueError) above all; any other is recorded too
        return PointResult(p.key, None, _message(exc), time.perf_counter() - t0)


def _group(trace: Any, group: list[Point], options: Options, wc: worker.WorkerCache, use_cache: bool,
           memo_key: tuple) -> list[PointResult]:
    """Points that share a timing key: one timed replay with symbolic prices (or the worker's kept
    one), then every point priced at once. A single point with no kept replay is replayed plainly
    (recording costs a little more); a replay that cannot be recorded falls back to per point."""
    t0 = time.perf_counter()
    template = wc.memo.get(memo_key) if use_cache else None
    if template is None:
        if len(group) == 1:
            return [_one(trace, group[0], options, wc, use_cache)]
        wc.count("replays")
        try:
            with worker.installed(wc) if use_cache else contextlib.nullcontext():
                template = record(trace, group[0].arch, options)
        except NotRepriceable:
            wc.count("reprice_fallbacks")
            return [_one(trace, p, options, wc, use_cache) for p in group]
        except Exception as exc:  # the group's shared configuration fails: every point says why
            msg = _message(exc)
            each = (time.perf_counter() - t0) / len(group)
            return [PointResult(p.key, None, msg, each) for p in group]
        if use_cache:
            wc.memo.put(memo_key, template, template.nbytes)
    try:
        stacked = price_points(template, [p.arch for p in group])
    except (KeyError, NotRepriceable):  # a point without one of the recorded prices: cannot happen
        wc.count("reprice_fallbacks")   # within a timing key, but never price it wrong
        return [_one(trace, p, options, wc, use_cache) for p in group]
    totals = point_totals(stacked, len(group))
    wc.count("repriced_points", len(group))
    n = len(template.frame)
    each = (time.perf_counter() - t0) / len(group)
    out = []
    for i, p in enumerate(group):
        rows = stacked.iloc[i * n:(i + 1) * n]
        rows.index = pd.RangeIndex(n)
        out.append(PointResult(p.key, rows, None, each, totals[i]))
    return out


def options_key(options: Options) -> str:
    return json.dumps(options.as_dict(), sort_keys=True)


def _message(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def cache_stats() -> dict[str, Any]:
    """This process's cache counters (for tests and the bench)."""
    return worker.worker_cache().stats() if worker._WORKER is not None else {}
