"""The simulation report: one row per iteration × layer × pass, with the dense baseline beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from traces.format.writer import atomic_write

from .pricing import ratios

PASS_ORDER = ("forward", "backward_data", "backward_weight", "update")
# Columns that ``to_frame(meta=True)`` adds from the report's metadata: the machine, the trace and
# what trained it, so a results file says what it is without its trace.
META_COLUMNS = ("arch", "family", "trace", "backend", "dataflow", "off_chip", "clock_hz", "method", "model",
                "dataset", "batch_size", "trace_iterations")

# GEMM-side count columns (a pass that runs no GEMM, the update, did none of this work), and the
# suffixes of the families' own ones (gpu_pad_cycles, reram_adc_conversions, ...)
GEMM_COUNTS = frozenset({"tiles", "algorithmic_macs", "actual_macs", "gated_macs", "skipped_macs",
                         "effectual_macs", "effectual_macs_gemm_view", "dense_gemm_cycles",
                         "dense_compute_cycles", "dense_stall_cycles", "utilization"})
GEMM_COUNT_SUFFIXES = ("_cycles", "_conversions", "_drives", "crossbar_reads")


@dataclass
class Report:
    """Simulation results. ``to_frame()`` is tidy: one row per iteration × layer × pass; units are
    in column names (``cycles``, ``*_bytes``, ``*_pj``, ``*_macs``); ``dense_*`` columns hold the
    same trace on the same machine with every sparse feature off."""

    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_frame(self, meta: bool = False) -> pd.DataFrame:
        """The tidy frame; with ``meta``, also the ``META_COLUMNS`` (``arch``, ``family``, ``trace``,
        ``backend``, ``dataflow``, ``off_chip`` — the DRAM/HBM level's name —, ``clock_hz``, and the
        trace's ``method``, ``model``, ``dataset``, ``batch_size``), and ``pass`` as plain text."""
        df = pd.DataFrame(self.rows)
        if df.empty:
            return df
        df["pass"] = pd.Categorical(df["pass"], categories=list(PASS_ORDER), ordered=True)
        df = df.fillna({c: 0 for c in df.columns if c.endswith(("_bytes", "_pj"))})
        # the update pass runs no GEMM: its GEMM-side counts are 0, not missing
        gemm_side = [c for c in df.columns if c in GEMM_COUNTS or (c.startswith(("gpu_", "reram_"))
                     and c.endswith(GEMM_COUNT_SUFFIXES))]
        update = df["pass"] == "update"
        if update.any() and gemm_side:
            df.loc[update, gemm_side] = df.loc[update, gemm_side].fillna(0)
        # a reprogrammed ReRAM chip: a pass off the crossbars (the digital weight gradient, the
        # update) is preceded by no programming (0), and the programmings per iteration are the run's
        df = df.fillna({c: 0 for c in df.columns if c.startswith("reram_reprogram_")})
        if "reram_programmings_per_iteration" in df:
            per = df["reram_programmings_per_iteration"]
            df["reram_programmings_per_iteration"] = per.fillna(per.max())
        if meta:
            df["pass"] = df["pass"].astype(str)
            for key in META_COLUMNS:
                df[key] = self.meta.get(key)
        return df

    def summary(self) -> pd.DataFrame:
        """Per pass and in total (summed over recorded iterations): cycles, speedup, energy, DRAM."""
        df = self.to_frame()
        dram = [c for c in df.columns if c.startswith(f"{self.meta.get('off_chip', 'dram')}_")
                and c.endswith("_bytes")]
        df = df.assign(dram_bytes=df[dram].sum(axis=1) if dram else 0.0)
        cols = ["cycles", "dense_cycles", "energy_pj", "dense_energy_pj", "dram_bytes"]
        by = df.groupby("pass", observed=True)[cols].sum()
        by.loc["total"] = by.sum()
        by["speedup"] = _ratio(by["dense_cycles"], by["cycles"])
        by["energy_saving"] = _ratio(by["dense_energy_pj"], by["energy_pj"])
        return by

    def totals(self) -> pd.DataFrame:
        """Whole-run estimate: per-iteration totals over the recorded iterations, extrapolated to
        the trace's iteration count, with their spread (std, min, max per iteration)."""
        df = self.to_frame()
        per_it = df.groupby("iteration")[["cycles", "dense_cycles", "energy_pj", "dense_energy_pj"]].sum()
        n = int(self.meta.get("trace_iterations") or len(per_it))
        out = pd.DataFrame({"per_iteration_mean": per_it.mean(), "per_iteration_std": per_it.std(ddof=0),
                            "per_iteration_min": per_it.min(), "per_iteration_max": per_it.max()})
        out["run_estimate"] = out["per_iteration_mean"] * n
        out.attrs["iterations_recorded"] = len(per_it)
        out.attrs["iterations_in_run"] = n
        return out

    def to_parquet(self, path: str | Path) -> Path:
        return write_frame(self.to_frame(meta=True), path)

    def to_csv(self, path: str | Path) -> Path:
        return write_frame(self.to_frame(meta=True), path)

    def save(self, path: str | Path) -> Path:
        """Write by suffix: ``.parquet`` or ``.csv``."""
        return write_frame(self.to_frame(meta=True), path)


def write_frame(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a results frame as ``.parquet`` or ``.csv``, through a temporary name."""
    p = Path(path)
    if p.suffix not in (".parquet", ".csv"):
        raise ValueError(f"{p}: unknown results format {p.suffix!r}; use .parquet or .csv")
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".parquet":
        atomic_write(p, lambda f: df.to_parquet(f, index=False, write_page_checksum=True))  # CRC-32 per page
    else:
        atomic_write(p, lambda f: f.write(df.to_csv(index=False).encode()))
    return p


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """``num / den`` as :func:`hwsim.pricing.ratios` defines it (0/0 = 1, x/0 = x over one unit)."""
    return ratios(num, den)
