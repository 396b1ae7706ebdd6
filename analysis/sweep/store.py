"""The sweep directory: spec and versions beside a Parquet dataset appended in atomic batches.

::

    DIR/spec.yaml                  the spec of the latest run (earlier ones: specs/<hash>.yaml)
    DIR/sweep.json                 software versions, spec hashes, one entry per run
    DIR/traces/                    synthetic traces drawn for the sweep
    DIR/results/points/part-N.parquet   one row per point: key, design, axes, summary, status, error
    DIR/results/rows/part-N.parquet     one row per point × iteration × layer × pass (the report)

A batch is written rows first, then points, each through a temporary file and a rename; a point
is done when its key is in ``results/points`` (with status ``ok``; a failed point is computed again
by the next run unless it is told not to retry). Rows of a batch whose points file never arrived
(killed in between) are removed when the sweep is opened again, so a rerun recomputes exactly the
points that are missing. Opening also verifies every stored part (each points part is read whole,
each rows part's Parquet footer): a damaged part is removed with its partner of the same batch, so
its points are computed again, and :meth:`Store.open` says which.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from traces.format.writer import atomic_write

PART = re.compile(r"^part-(\d{6})\.parquet$")


class DamagedPartError(ValueError):
    """A stored Parquet part cannot be read (truncated, overwritten): one line naming it and the fix."""


def _unreadable() -> tuple[type[BaseException], ...]:
    """What reading a damaged Parquet file raises (pyarrow's errors are ValueError or OSError, plus its
    own ArrowException)."""
    import pyarrow

    return (OSError, ValueError, EOFError, pyarrow.ArrowException)


def _read(f: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """One part, or DamagedPartError naming it and how to recompute it."""
    try:
        return pd.read_parquet(f, columns=columns, page_checksum_verification=True)
    except _unreadable() as exc:
        why = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DamagedPartError(f"{f}: damaged Parquet part ({why}); rerun the same `hwsim sweep SPEC "
                               f"--out {f.parents[2]}`: it removes the part and computes its points "
                               "again") from None


class Store:
    """Reads and appends the results of one sweep directory."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.points_dir = self.dir / "results" / "points"
        self.rows_dir = self.dir / "results" / "rows"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``DIR/.lock`` (this process's id) while a run writes; a second run on the same
        directory is refused while the first is alive; a lock left by a killed run is taken over."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / ".lock"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    holder = int(path.read_text().strip() or 0)
                except (OSError, ValueError):
                    holder = 0
                if holder and holder != os.getpid() and _alive(holder):
                    raise ValueError(f"{self.dir}: another sweep (process {holder}) is writing here; wait "
                                     "for it to finish or stop it, then rerun") from None
                path.unlink(missing_ok=True)  # left by a run that no longer exists
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            break
        else:
            raise ValueError(f"{self.dir}: cannot take {path}; remove it if no sweep is running")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    def open(self) -> list[str]:
        """Create the layout, remove what a killed run left half-written, and verify every stored part:
        a batch with a damaged points or rows part is removed whole (its points are computed again).
        Returns one line per batch removed for damage."""
        self.points_dir.mkdir(parents=True, exist_ok=True)
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        for d in (self.points_dir, self.rows_dir):
            for f in d.glob(".part-*.tmp-*"):  # a temporary file of a killed writer
                f.unlink(missing_ok=True)
        repairs = []
        for f in self._parts(self.points_dir):
            problem = self._damage(f, whole=True) or self._damage(self.rows_dir / f.name, whole=False)
            if problem is not None:
                (self.rows_dir / f.name).unlink(missing_ok=True)
                f.unlink()
                repairs.append(f"{problem}: removed batch {f.name} (points and rows); its points are "
                               "computed again")
        log = self._damaged_log()
        if log is not None:
            repairs.append(log)
        committed = {f.name for f in self.points_dir.iterdir() if PART.match(f.name)}
        for f in self.rows_dir.iterdir():
            if PART.match(f.name) and f.name not in committed:
                f.unlink()  # rows of a batch whose points file was never written (or was damaged)
        return repairs

    @staticmethod
    def _damage(f: Path, whole: bool) -> str | None:
        """Why part ``f`` cannot be read (None: it can, or it does not exist: a batch of failed points
        has no rows): a points part is read whole, a rows part's footer (its schema and row groups);
        both, and every page's CRC-32 (parts are written with page checksums: a flipped bit in a data
        page is refused, not read as another number)."""
        if not f.exists():
            return None
        try:
            if whole:
                pd.read_parquet(f, page_checksum_verification=True)
            else:
                import pyarrow.parquet as pq

                pq.ParquetFile(f, page_checksum_verification=True).read()  # footer, then every page
        except _unreadable() as exc:
            why = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            return f"{f.relative_to(f.parents[2])} is damaged ({why[:120]})"
        return None

    def done_keys(self, retry_failed: bool = False) -> set[str]:
        """Keys of every point written so far; with ``retry_failed``, only those that succeeded
        (a failed point is then computed again)."""
        keys: set[str] = set()
        for f in self._parts(self.points_dir):
            df = _read(f, None if retry_failed else ["point_key"])
            if retry_failed and "status" in df.columns:
                df = df[df["status"] == "ok"]
            keys.update(df["point_key"])
        return keys

    def append(self, points: pd.DataFrame, rows: pd.DataFrame) -> Path:
        """Write one batch atomically: rows, then points (the commit)."""
        n = max((int(PART.match(f.name).group(1)) for f in self._parts(self.points_dir)), default=-1) + 1
        name = f"part-{n:06d}.parquet"
        if not rows.empty:
            atomic_write(self.rows_dir / name,
                         lambda f: rows.to_parquet(f, index=False, write_page_checksum=True))
        out = self.points_dir / name
        atomic_write(out, lambda f: points.to_parquet(f, index=False, write_page_checksum=True))
        return out

    def points(self) -> pd.DataFrame:
        """Every point written, in key order (a point computed again after failing: its latest row)."""
        parts = [_read(f) for f in self._parts(self.points_dir)]
        if not parts:
            return pd.DataFrame()
        df = pd.concat(parts, ignore_index=True)
        df = df.drop_duplicates("point_key", keep="last").sort_values("point_key", kind="stable")
        return _canonical(df, ["point_key"])

    def rows(self) -> pd.DataFrame:
        """Every report row of every computed point, ordered by point key and row within the point."""
        committed = {f.name for f in self._parts(self.points_dir)}
        parts = [_read(f) for f in self._parts(self.rows_dir) if f.name in committed]
        if not parts:
            return pd.DataFrame()
        df = pd.concat(parts, ignore_index=True)
        df = df.drop_duplicates(["point_key", "row"], keep="first")
        return _canonical(df.sort_values(["point_key", "row"], kind="stable"), ["point_key", "row"])

    def record_run(self, spec_text: str, versions: dict[str, str], counts: dict[str, int]) -> None:
        """Store the spec and append this run to ``sweep.json`` (software versions, counts)."""
        digest = hashlib.sha256(spec_text.encode()).hexdigest()[:16]
        (self.dir / "specs").mkdir(parents=True, exist_ok=True)
        for p in (self.dir / "spec.yaml", self.dir / "specs" / f"{digest}.yaml"):
            atomic_write(p, lambda f: f.write(spec_text.encode()))
        meta_path = self.dir / "sweep.json"
        meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {"runs": []}
        meta["runs"].append({"spec": digest, "versions": versions, "finished_unix": round(time.time(), 3),
                             **counts})
        meta["versions"] = versions
        atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=1).encode()))

    def _damaged_log(self) -> str | None:
        """A ``sweep.json`` run log that is not a JSON object with a list of runs (truncated,
        overwritten) is kept aside as ``sweep.json.damaged`` and a new log is started: it records
        provenance only, and the results do not depend on it."""
        meta_path = self.dir / "sweep.json"
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if isinstance(meta, dict) and isinstance(meta.get("runs"), list):
                return None
            why = "not an object with a list of runs"
        except (ValueError, UnicodeDecodeError) as exc:
            why = str(exc).splitlines()[0][:80]
        meta_path.replace(meta_path.with_name("sweep.json.damaged"))
        return (f"sweep.json is damaged ({why}): kept as sweep.json.damaged, a new run log is started "
                "(the results do not depend on it)")

    def runs(self) -> list[dict[str, Any]]:
        meta_path = self.dir / "sweep.json"
        return json.loads(meta_path.read_text())["runs"] if meta_path.exists() else []

    @staticmethod
    def _parts(d: Path) -> list[Path]:
        return sorted(f for f in d.iterdir() if PART.match(f.name)) if d.exists() else []


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _canonical(df: pd.DataFrame, leading: list[str]) -> pd.DataFrame:
    """Columns in a fixed order (``leading``, then by name), whatever the batches held: points of
    different families have different columns, and which batch came first depends on the scheduler."""
    rest = sorted(c for c in df.columns if c not in leading)
    return df[[*leading, *rest]].reset_index(drop=True)
