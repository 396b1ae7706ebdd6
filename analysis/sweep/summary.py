"""Per-point summary rows and the report rows of a batch, as written to the sweep dataset."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

import archs

from ..frames import offchip_bytes
from .evaluate import PointResult
from .fields import field_values
from .points import Point
from .spec import SweepSpec

# Per-point metrics, per recorded iteration (means over the replayed iterations).
METRICS = ("cycles", "dense_cycles", "speedup", "energy_pj", "dense_energy_pj", "energy_saving",
           "offchip_bytes", "latency_s", "energy_j", "chip_area_mm2", "peak_macs_per_s")


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
    df = r.rows
    n_it = max(int(df["iteration"].nunique()), 1)
    for col in ("cycles", "dense_cycles", "energy_pj", "dense_energy_pj"):
        row[col] = float(df[col].sum()) / n_it
    row["offchip_bytes"] = float(offchip_bytes(df).sum()) / n_it
    row["speedup"] = row["dense_cycles"] / row["cycles"] if row["cycles"] > 0 else np.nan
    row["energy_saving"] = row["dense_energy_pj"] / row["energy_pj"] if row["energy_pj"] > 0 else np.nan
    row["latency_s"] = row["cycles"] / float(arch.clock_hz)
    row["energy_j"] = row["energy_pj"] * 1e-12
    row["method"] = str(df["method"].iloc[0]) if "method" in df else ""
    row["model"] = str(df["model"].iloc[0]) if "model" in df else ""
    row["arch"] = arch.name
    return row


def batch_frames(spec: SweepSpec, results: list[tuple[Point, PointResult]],
                 paths: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, rows) frames of one batch."""
    pts = pd.DataFrame([point_row(spec, p, r, paths[p.trace]) for p, r in results])
    parts = []
    for p, r in results:
        if r.rows is not None and not r.rows.empty:
            df = r.rows.copy()
            df.insert(0, "row", np.arange(len(df), dtype=np.int64))
            df.insert(0, "point_key", p.key)
            parts.append(df)
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
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
