"""Running a sweep: in-process, on a Dask LocalCluster, or on an existing Dask scheduler.

Points are grouped into tasks by trace (a worker reads each trace once and keeps it, see
:mod:`.cache`), results come back as they finish and are appended to the sweep directory in
batches (:mod:`.store`); a rerun computes only the points whose keys are not written yet.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from archs import ConfigError

from . import summary
from .cache import DEFAULT_BUDGET_BYTES
from .evaluate import PointResult, run_task
from .points import Point, expand
from .spec import SweepSpec
from .store import Store
from .traces import content_hash, materialize

BATCH_POINTS = 16  # points per Parquet batch (also written every BATCH_SECONDS)
BATCH_SECONDS = 10.0
GROUP_PIECE = 256  # points of one timing key per task at most (one re-priced replay each)


@dataclass
class RunCounts:
    """What a run did: points in the spec, already written before, computed now, failed now,
    rejected by constraints."""

    total: int
    already_done: int
    computed: int
    failed: int
    rejected: int
    retried: int = 0  # of the computed: points that had failed in an earlier run
    repairs: list[str] = field(default_factory=list)  # damaged parts and traces found, and what was done

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "repairs"}


def plan(spec: SweepSpec, directory: Path, repairs: list[str] | None = None
         ) -> tuple[list[Point], list[str], list[str], int]:
    """(points, absolute trace paths, trace hashes, rejected): every point of the spec, keyed.
    Drawn traces found damaged are drawn again (``repairs`` says which)."""
    paths = [str(materialize(t, directory, repairs)) for t in spec.traces]
    check_iterations(spec, paths)
    hashes = [content_hash(Path(p)) for p in paths]
    points, rejected = expand(spec.designs, hashes, spec.options)
    return points, paths, hashes, rejected


def check_iterations(spec: SweepSpec, paths: list[str]) -> None:
    """Refuse, before anything runs, options.iterations that a trace does not have (every point on it
    would fail the same way), and traces with no iteration to replay."""
    import traces

    problems = []
    for source, path in zip(spec.traces, paths, strict=True):
        tr = traces.load(path)
        if spec.options.iterations is None:
            if not tr.mask_iterations:
                problems.append(f"traces.{source.label}: no iteration with exact masks; list the iterations "
                                "to replay in options.iterations (counts-only ones replay in expected-value "
                                "mode)")
            continue
        missing = [i for i in spec.options.iterations if i not in tr.iterations]
        if missing:
            span = f"{tr.iterations[0]}..{tr.iterations[-1]}" if tr.iterations else "none"
            problems.append(f"options.iterations: iteration {missing[0]} is not in trace {source.label!r} "
                            f"(its iterations: {span}; with masks: {tr.mask_iterations[:8]})")
    if problems:
        raise ConfigError(problems, "sweep")


def tasks(points: list[Point], n_workers: int, per_task: int | None = None) -> list[list[Point]]:
    """Points grouped by trace, then by timing key (points that differ only in prices travel
    together and are re-priced from one replay, :mod:`.reprice`; a group of more than
    GROUP_PIECE points is cut into pieces of that size). Each task is ``per_task`` such units:
    by default about four tasks per worker, at most 32 units each."""
    by_trace: dict[int, dict[str, list[Point]]] = {}
    for p in points:
        by_trace.setdefault(p.trace, {}).setdefault(p.timing or p.key, []).append(p)
    units = {t: [g[i:i + GROUP_PIECE] for g in groups.values() for i in range(0, len(g), GROUP_PIECE)]
             for t, groups in by_trace.items()}
    n_units = sum(len(u) for u in units.values())
    size = per_task or max(1, min(32, -(-n_units // max(1, 4 * n_workers))))
    return [[p for unit in us[i:i + size] for p in unit]
            for us in units.values() for i in range(0, len(us), size)]


def execute(spec: SweepSpec, directory: str | Path, *, scheduler: str | None = "local",
            workers: int | None = None, batch_points: int = BATCH_POINTS,
            cache_bytes: int = DEFAULT_BUDGET_BYTES,
            use_cache: bool = True, progress: Callable[[int, int, int, int], None] | None = None,
            versions: dict[str, str] | None = None, reprice: bool = True,
            retry_failed: bool = True) -> RunCounts:
    """Run every point of ``spec`` not yet in ``directory``; returns what was done.

    Before anything runs, the stored results and drawn traces are verified (:meth:`Store.open`,
    :func:`.traces.materialize`): damaged ones are removed and computed or drawn again, and
    ``RunCounts.repairs`` says what was done.

    Args:
        scheduler: ``"inprocess"`` (no Dask), ``"local"`` (a ``distributed.LocalCluster`` of
            ``workers`` single-threaded processes, default one per core) or a scheduler address
            such as ``tcp://host:8786`` (its workers must see the same paths).
        batch_points: points per Parquet batch.
        cache_bytes: per-worker cache budget (:mod:`.cache`).
        reprice: time points that differ only in prices once and price them together
            (:mod:`.reprice`; the rows are the same bit for bit either way).
        progress: called with (done, failed, remaining, total) as points finish.
        retry_failed: compute again the points that failed in an earlier run (their new result
            replaces the failure); False keeps every failure written.
    """
    d = Path(directory).resolve()
    store = Store(d)
    with store.lock():
        return _execute(spec, d, store, scheduler=scheduler, workers=workers, batch_points=batch_points,
                        cache_bytes=cache_bytes, use_cache=use_cache, progress=progress, versions=versions,
                        reprice=reprice, retry_failed=retry_failed)


def _execute(spec: SweepSpec, d: Path, store: Store, *, scheduler: str | None, workers: int | None,
             batch_points: int, cache_bytes: int, use_cache: bool,
             progress: Callable[[int, int, int, int], None] | None,
             versions: dict[str, str] | None, reprice: bool = True, retry_failed: bool = True) -> RunCounts:
    repairs = store.open()
    points, paths, hashes, rejected = plan(spec, d, repairs)
    done = store.done_keys(retry_failed=retry_failed)
    todo = [p for p in points if p.key not in done]
    written = store.done_keys() if retry_failed else done
    retried = sum(p.key in written for p in todo)
    versions = versions or software_versions()
    started = {"total": len(points), "todo": len(todo), "status": "started"}
    store.record_run(spec.text or "", versions, started)
    n_workers = workers or os.cpu_count() or 1
    counts = RunCounts(len(points), len(points) - len(todo), 0, 0, rejected, retried, repairs)
    if progress is not None:
        progress(0, 0, len(todo), len(todo))
    pending: list[tuple[Point, PointResult]] = []
    last_write = time.monotonic()
    by_key = {p.key: p for p in todo}

    def flush() -> None:
        nonlocal pending, last_write
        if pending:
            pts, rows = summary.batch_frames(spec, pending, paths)
            store.append(pts, rows)
            pending = []
        last_write = time.monotonic()

    for results in _results(tasks(todo, n_workers), paths, hashes, spec, scheduler, n_workers, cache_bytes,
                            use_cache, reprice):
        for r in results:
            pending.append((by_key[r.key], r))
            counts.computed += 1
            counts.failed += r.error is not None
        if len(pending) >= batch_points or time.monotonic() - last_write > BATCH_SECONDS:
            flush()
        if progress is not None:
            progress(counts.computed, counts.failed, len(todo) - counts.computed, len(todo))
    flush()
    store.record_run(spec.text or "", versions, {**counts.as_dict(), "status": "finished"})
    return counts


def _results(groups: list[list[Point]], paths: list[str], hashes: list[str], spec: SweepSpec,
             scheduler: str | None, n_workers: int, cache_bytes: int,
             use_cache: bool, reprice: bool = True) -> Iterator[list[PointResult]]:
    """Each task's results as it finishes."""
    if not groups:
        return
    if scheduler in (None, "inprocess"):
        for g in groups:
            ti = g[0].trace
            yield run_task(paths[ti], hashes[ti], g, spec.options, cache_bytes, use_cache, reprice)
        return
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout=60)
    try:
        futures = [client.submit(run_task, paths[g[0].trace], hashes[g[0].trace], g, spec.options,
                                 cache_bytes, use_cache, reprice, pure=False) for g in groups]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def software_versions() -> dict[str, str]:
    """Versions stored beside the results."""
    from importlib import metadata

    import hwsim

    out = {"hwsim": hwsim.__version__}
    for pkg in ("numpy", "pandas", "pyarrow", "dask", "distributed"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def load(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(points, rows)`` of a sweep directory (see :mod:`.store`)."""
    s = Store(directory)
    if not (s.dir / "results" / "points").is_dir():
        raise ValueError(f"{s.dir}: not a sweep directory (no results/points); "
                         "run `hwsim sweep SPEC --out DIR`")
    return s.points(), s.rows()
