"""Per-point summary rows and the report rows of a batch, as written to the sweep dataset."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import archs
from hwsim.pricing import ratio

from ..frames import offchip_columns
from .fields import field_values
from .points import Point
from .spec import SweepSpec

if TYPE_CHECKING:
    from .evaluate import PointResult

# Per-point metrics, per recorded iteration (means over the replayed iterations).
METRICS = ("cycles", "dense_cycles", "speedup", "energy_pj", "dense_energy_pj", "energy_saving",
           "offchip_bytes", "latency_s", "energy_j", "chip_area_mm2", "peak_macs_per_s")


def point_totals(frame: pd.DataFrame, n_points: int) -> list[dict[str, Any]]:
    """Per-point sums of the report rows ``frame``: ``n_points`` points' rows one after the other, the
    same number each, with the same columns (one point's frame, or a re-priced group's). Each point's
    numbers depend on its own rows only, computed the same way whatever the stack (bit for bit):
    per-point means over the replayed iterations of cycles, energies and off-chip bytes."""
    if frame.empty or n_points == 0:
        return [{} for _ in range(n_points)]
    n = len(frame) // n_points
    n_it = max(int(frame["iteration"].iloc[:n].nunique()), 1)

    def per_point(values: np.ndarray) -> np.ndarray:  # (points,): each point's rows summed in order
        return np.add.reduce(values.reshape(n_points, n), axis=1)

    sums = {col: per_point(frame[col].to_numpy(np.float64)) for col in SUMMED}
    level = frame["off_chip"].iloc[0] if "off_chip" in frame else "dram"
    moved = np.zeros(len(frame))
    for col in offchip_columns(frame, level):  # one column at a time, in order: the same for every stack
        moved = moved + np.nan_to_num(frame[col].to_numpy(np.float64), nan=0.0)
    sums["offchip_bytes"] = per_point(moved)
    method = str(frame["method"].iloc[0]) if "method" in frame else ""
    model = str(frame["model"].iloc[0]) if "model" in frame else ""
    return [{**{k: float(v[i]) / n_it for k, v in sums.items()}, "method": method, "model": model}
            for i in range(n_points)]


SUMMED = ("cycles", "dense_cycles", "energy_pj", "dense_energy_pj")


def point_row(spec: SweepSpec, p: Point, r: PointResult, trace_path: str) -> dict[str, Any]:
    """One row of ``results/points``."""
    design = spec.designs[p.design]
    arch = p.arch
    row: dict[str, Any] = {
        "point_key": p.key, "design": design.label, "design_index": p.design, "point_index": p.index,
        "base": design.base, "family": design.arch.family, "trace_label": spec.traces[p.trace].label,
        "trace_index": p.trace, "trace": trace_path,
        "values": json.dumps({k: v for k, v in p.values}, sort_keys=True, default=repr),
        "status": "failed" if r.error else "ok", "error": r.error or "", "seconds": r.seconds,
    }
    known = field_values(arch) if arch is not None else {}
    for k, _ in p.values:
        row[k] = known.get(k)
    for m in METRICS:
        row[m] = np.nan
    if arch is not None:
        row["chip_area_mm2"] = archs.chip_area_mm2(arch)
        row["peak_macs_per_s"] = archs.peak_macs_per_s(arch)
    if r.rows is None or r.rows.empty:
        return row
    t = r.totals if r.totals is not None else point_totals(r.rows, 1)[0]
    for col in (*SUMMED, "offchip_bytes"):
        row[col] = t[col]
    row["speedup"] = ratio(row["dense_cycles"], row["cycles"])
    row["energy_saving"] = ratio(row["dense_energy_pj"], row["energy_pj"])
    row["latency_s"] = row["cycles"] / float(arch.clock_hz)
    row["energy_j"] = row["energy_pj"] * 1e-12
    row["method"] = t["method"]
    row["model"] = t["model"]
    row["arch"] = arch.name
    return row


def batch_frames(spec: SweepSpec, results: list[tuple[Point, PointResult]],
                 paths: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, rows) frames of one batch."""
    pts = pd.DataFrame([point_row(spec, p, r, paths[p.trace]) for p, r in results])
    parts = [(p.key, r.rows) for p, r in results if r.rows is not None and not r.rows.empty]
    if not parts:
        return _objects_as_text(pts), pd.DataFrame()
    rows = pd.concat([df for _, df in parts], ignore_index=True)
    lengths = [len(df) for _, df in parts]
    rows.insert(0, "row", np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]))
    rows.insert(0, "point_key", np.repeat(np.array([k for k, _ in parts], dtype=object), lengths))
    return _objects_as_text(pts), rows


def _objects_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns that mix kinds (an axis holding text and numbers) become text, so Parquet
    can store them."""
    for c in df.columns:
        if df[c].dtype == object:
            kinds = {type(v) for v in df[c] if v is not None and not (isinstance(v, float) and np.isnan(v))}
            if len(kinds) > 1:
                df[c] = df[c].map(lambda v: None if v is None else str(v))
    return df
