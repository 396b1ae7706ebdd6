"""`hwsim sweep SPEC --out DIR`: a design-space sweep on Dask, resumable (docs/sweeps.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_sweep(sub: Any) -> None:
    p = sub.add_parser("sweep", help="a design-space sweep (YAML spec) on Dask; rerun to resume",
                       description="Run every point of a sweep spec (traces × designs × options) and append "
                                   "the results to DIR/results as a Parquet dataset. Rerunning the same "
                                   "command computes only the points not written yet (after a crash, a kill "
                                   "or a change of the spec). See docs/sweeps.md.")
    p.add_argument("spec", type=Path, help="sweep spec (YAML)")
    p.add_argument("--out", type=Path, required=True, help="sweep directory (created; reused to resume)")
    p.add_argument("--scheduler", default="local",
                   help="local (a Dask LocalCluster, the default), inprocess (no Dask), or the address of a "
                        "running Dask scheduler such as tcp://host:8786")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--batch-points", type=int, default=16, help="points per Parquet batch (default 16)")
    p.add_argument("--cache-bytes", default="2GiB", help="cache budget per worker (default 2GiB)")
    p.add_argument("--no-cache", action="store_true", help="recompute every mask reduction for every point")
    p.add_argument("--no-reprice", action="store_true",
                   help="replay every point, also those that differ from another only in energies (by "
                        "default they are timed once and re-priced; the rows are the same bit for bit)")
    p.add_argument("--no-retry-failed", action="store_true",
                   help="keep the points that failed in an earlier run as failed (by default a rerun "
                        "computes them again)")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from analysis.sweep import execute, load_spec
    from archs import units

    from .common import check_output

    check_output(args.out, "--out", directory=True)
    sched = args.scheduler
    if sched not in ("local", "inprocess") and not sched.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise ValueError(f"--scheduler: expected local, inprocess or an address such as tcp://host:8786, "
                         f"got {sched!r}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers: expected a positive number, got {args.workers}")
    if args.batch_points < 1:
        raise ValueError(f"--batch-points: expected a positive number, got {args.batch_points}")
    try:
        cache_bytes = int(units.parse(args.cache_bytes, "capacity_bytes"))
    except ValueError as exc:
        raise ValueError(f"--cache-bytes: {exc}") from None
    spec = load_spec(args.spec)
    bar = _SweepBar()
    try:
        counts = execute(spec, args.out, scheduler=sched, workers=args.workers,
                         batch_points=args.batch_points, cache_bytes=cache_bytes,
                         use_cache=not args.no_cache, progress=bar.update, reprice=not args.no_reprice,
                         retry_failed=not args.no_retry_failed)
    except OSError as exc:
        if sched not in ("local", "inprocess") and "connect" in str(exc).lower():
            raise ValueError(f"--scheduler {sched}: cannot reach the scheduler ({exc}); start one with "
                             "`dask scheduler` or use --scheduler local") from None
        raise
    finally:
        bar.close()
    for line in counts.repairs:  # damaged results or traces found on resume, and what was done
        print(f"repaired: {line}")
    retried = f" ({counts.retried} failed before, retried)" if counts.retried else ""
    print(f"{counts.total} points ({counts.rejected} rejected by constraints): {counts.already_done} already "
          f"done, computed {counts.computed}{retried}, failed {counts.failed}; results in "
          f"{args.out / 'results'}")
    return 0


class _SweepBar:
    """A tqdm bar with points done / failed / remaining and the ETA (on a terminal only)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def update(self, done: int, failed: int, remaining: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="sweep", unit="pt", disable=None, file=sys.stderr, leave=False)
        self.bar.n = done
        self.bar.set_postfix_str(f"done {done - failed}, failed {failed}, remaining {remaining}",
                                 refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
