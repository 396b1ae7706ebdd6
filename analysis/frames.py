"""Tidy DataFrames over simulation results (and the traces they came from), for tables and plots.

``results`` is what ``hwsim replay --out``/``hwsim demo`` write (``Report.to_frame(meta=True)``):
one row per iteration × layer × pass, with ``trace`` and ``arch`` columns. Every builder keeps
``trace`` and ``arch`` so figures can be made per trace × architecture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

import traces
from hwsim.pricing import ratios
from traces.format.manifest import TENSORS

KEYS = ["trace", "arch"]
PASS_ORDER = ["forward", "backward_data", "backward_weight", "update"]
_BYTES = re.compile(r"^(?P<component>.+?)_(?P<operand>[abc])(?P<meta>_metadata)?"
                    r"_(?P<direction>read|write|transfer)_bytes$")


def load_results(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate results files (``.parquet`` or ``.csv``)."""
    frames = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such results file (write one with `hwsim replay --out`)")
        frames.append(pd.read_parquet(p, page_checksum_verification=True) if p.suffix == ".parquet"
                      else pd.read_csv(p))
    df = pd.concat(frames, ignore_index=True)
    missing = {"trace", "arch", "iteration", "layer", "pass", "cycles", "dense_cycles"} - set(df.columns)
    if missing:
        raise ValueError(f"results lack columns {sorted(missing)}; write them with `hwsim replay --out`")
    return df


def label(df: pd.DataFrame) -> pd.Series:
    """``<trace name> on <arch>`` for each row."""
    return df["trace"].map(lambda t: Path(str(t)).name) + " on " + df["arch"].astype(str)


def per_layer(df: pd.DataFrame) -> pd.DataFrame:
    """Per trace × arch × layer × pass, summed over the replayed iterations: cycles, energy, ratios."""
    cols = ["cycles", "dense_cycles", "energy_pj", "dense_energy_pj"]
    out = df.groupby([*KEYS, "layer", "pass"], sort=False)[cols].sum().reset_index()
    out["speedup"] = ratios(out["dense_cycles"], out["cycles"])
    out["energy_saving"] = ratios(out["dense_energy_pj"], out["energy_pj"])
    return out


def per_iteration(df: pd.DataFrame) -> pd.DataFrame:
    """Per trace × arch × iteration (all layers and passes): cycles, energy and their ratios."""
    cols = ["cycles", "dense_cycles", "energy_pj", "dense_energy_pj"]
    out = df.groupby([*KEYS, "iteration"])[cols].sum().reset_index()
    out["speedup"] = ratios(out["dense_cycles"], out["cycles"])
    out["energy_saving"] = ratios(out["dense_energy_pj"], out["energy_pj"])
    return out


def run_totals(df: pd.DataFrame) -> pd.DataFrame:
    """Whole run per trace × arch: per-iteration mean × the trace's iterations, with the spread."""
    it = per_iteration(df)
    recorded = df.groupby(KEYS)["trace_iterations"].first() if "trace_iterations" in df else {}
    rows = []
    for (trace, arch), g in it.groupby(KEYS):
        n = recorded.get((trace, arch)) if len(recorded) else None
        n = int(n) if n is not None and pd.notna(n) else (_trace_iterations(trace) or len(g))
        row = {"trace": trace, "arch": arch, "iterations_replayed": len(g), "iterations_in_run": n}
        for col in ("cycles", "dense_cycles", "energy_pj", "dense_energy_pj", "speedup", "energy_saving"):
            row[f"{col}_mean"] = g[col].mean()
            row[f"{col}_std"] = g[col].std(ddof=0)
        for col in ("cycles", "dense_cycles", "energy_pj", "dense_energy_pj"):
            row[f"run_{col}"] = g[col].mean() * n
        row["run_speedup"] = float(ratios(row["run_dense_cycles"], row["run_cycles"]))
        row["run_energy_saving"] = float(ratios(row["run_dense_energy_pj"], row["run_energy_pj"]))
        rows.append(row)
    return pd.DataFrame(rows)


def energy_by_component(df: pd.DataFrame) -> pd.DataFrame:
    """Long: trace, arch, pass, component, energy_pj (summed over iterations and layers)."""
    cols = [c for c in df.columns if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"]
    long = df[[*KEYS, "pass", *cols]].melt(id_vars=[*KEYS, "pass"], var_name="component", value_name="pj")
    long["component"] = long["component"].str.removeprefix("energy_").str.removesuffix("_pj")
    out = long.groupby([*KEYS, "pass", "component"], sort=False)["pj"].sum().reset_index()
    return out.rename(columns={"pj": "energy_pj"})


def traffic_by_level(df: pd.DataFrame) -> pd.DataFrame:
    """Long: trace, arch, component, operand, kind (data|metadata), direction, bytes."""
    cols = [c for c in df.columns if _BYTES.match(c)]
    long = df[[*KEYS, *cols]].melt(id_vars=KEYS, var_name="column", value_name="bytes")
    long = long.groupby([*KEYS, "column"])["bytes"].sum().reset_index()
    parts = long["column"].str.extract(_BYTES)
    long["component"] = parts["component"]
    long["operand"] = parts["operand"]
    long["kind"] = np.where(parts["meta"].notna(), "metadata", "data")
    long["direction"] = parts["direction"]
    return long.drop(columns="column")


def densities(trace_path: str | Path, results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long: layer, tensor, iteration, density — every iteration of a trace, from its counts; when
    the trace cannot be read (moved, another machine), the replayed iterations' ``density_*``
    columns of ``results`` instead."""
    if results is not None and "density_x" in results and not _readable(trace_path):
        rows = results[results["trace"] == str(trace_path)]
        cols = [c for c in rows.columns if c.startswith("density_")]
        long = rows.groupby(["layer", "iteration"], sort=False)[cols].first().reset_index().melt(
            id_vars=["layer", "iteration"], var_name="tensor", value_name="density")
        long["tensor"] = long["tensor"].str.removeprefix("density_")
        return long.dropna(subset=["density"])[["layer", "tensor", "iteration", "density"]]
    tr = traces.load(trace_path, check=False)
    counts, batch = tr.counts()
    rows = []
    for li, spec in enumerate(tr.layers):
        for ti, t in enumerate(TENSORS):
            c = counts[:, li, ti]
            if (c < 0).all():
                continue
            numel = spec.numel(t, 1) * (batch if spec.batched(t) else 1)
            d = np.where(c >= 0, c / numel, np.nan)
            rows.append(pd.DataFrame({"layer": spec.name, "tensor": t, "iteration": tr.iterations,
                                      "density": d}))
    return pd.concat(rows, ignore_index=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """The report's table: per trace × arch, units in the column names."""
    t = run_totals(df)
    off_chip = df.groupby(KEYS)["off_chip"].first() if "off_chip" in df else None
    dram = traffic_by_level(df)
    if off_chip is not None:
        level = [off_chip.get((a, b)) for a, b in zip(dram["trace"], dram["arch"], strict=True)]
        dram = dram[dram["component"] == level]
    dram_mb = dram.groupby(KEYS)["bytes"].sum() / 1e6
    out = pd.DataFrame({
        "trace": t["trace"].map(lambda p: Path(str(p)).name), "arch": t["arch"],
        "iterations (replayed / run)": (t["iterations_replayed"].astype(str) + " / "
                                        + t["iterations_in_run"].astype(str)),
        "cycles per iteration": t["cycles_mean"].round(0).astype("int64"),
        "speedup (x)": t["run_speedup"].round(3),
        "speedup spread (std over iterations)": t["speedup_std"].round(3),
        "energy per iteration (uJ)": (t["energy_pj_mean"] / 1e6).round(3),
        "energy saving (x)": t["run_energy_saving"].round(3),
        "whole-run energy (mJ)": (t["run_energy_pj"] / 1e9).round(3),
        "DRAM traffic replayed (MB)": [round(dram_mb.get((a, b), 0.0), 4)
                                       for a, b in zip(t["trace"], t["arch"], strict=True)],
    })
    return out


def offchip_columns(df: pd.DataFrame, level: str) -> list[str]:
    """The traffic columns (``<level>_<operand>[_metadata]_<direction>_bytes``) of one memory level, in
    the frame's order."""
    return [c for c in df.columns if isinstance(c, str) and c.startswith(f"{level}_") and _BYTES.match(c)]


def offchip_bytes(df: pd.DataFrame) -> pd.Series:
    """Bytes each row moves to and from the off-chip memory (DRAM/HBM: the row's ``off_chip``),
    data and metadata, all operands."""
    out = np.zeros(len(df))
    levels = df["off_chip"] if "off_chip" in df else pd.Series("dram", index=df.index)
    for level in levels.dropna().unique():
        cols = offchip_columns(df, level)
        rows = (levels == level).to_numpy()
        if cols:
            out[rows] = df.loc[rows, cols].fillna(0).sum(axis=1).to_numpy()
    return pd.Series(out, index=df.index)


def versus_dense_training(df: pd.DataFrame, dense_method: str = "dense") -> pd.DataFrame:
    """Each method's trace against the dense-*trained* trace of the same model, data and batch on
    the same machine: what the method buys, its own overhead included.

    Per trace × arch, means per replayed iteration of: cycles, energy, off-chip bytes and non-GEMM
    (vector) ops, beside the dense-trained run's; ``*_vs_dense_training`` ratios are dense-trained
    over method (above 1: the method is cheaper). ``feature_speedup`` is the other comparison: the
    same trace with every sparse feature off (it carries the method's own work too). Rows whose
    results lack a dense-trained trace of the same model are left out; an empty frame when there is
    none (or the results have no ``method`` column).
    """
    need = {"method", "model", "dataset", "batch_size"}
    if not need <= set(df.columns):
        return pd.DataFrame()
    d = pd.concat([df, offchip_bytes(df).rename("offchip_bytes")], axis=1)
    cols = ["cycles", "dense_cycles", "energy_pj", "offchip_bytes", "vector_ops"]
    cols = [c for c in cols if c in d.columns]
    group = ["trace", "arch", "method", "model", "dataset", "batch_size"]
    per_it = d.groupby([*group, "iteration"], dropna=False)[cols].sum().reset_index()
    means = per_it.groupby(group, dropna=False)[cols].mean().reset_index()
    if "test_accuracy" in d:  # what the method gave up, where the results carry it (the demo's do)
        acc = d.groupby(group, dropna=False)["test_accuracy"].first().reset_index()
        means = means.merge(acc, on=group, how="left")
    base = means[means["method"] == dense_method]
    if base.empty:
        return pd.DataFrame()
    base = base.drop(columns=["trace", "method", "dense_cycles", "test_accuracy"], errors="ignore").rename(
        columns={c: f"dense_training_{c}" for c in cols if c != "dense_cycles"})
    # several dense-trained traces of one model on one machine (seeds): their mean is the reference
    base = base.groupby(["arch", "model", "dataset", "batch_size"], dropna=False).mean().reset_index()
    out = means.merge(base, on=["arch", "model", "dataset", "batch_size"], how="inner")
    pairs = (("cycles", "speedup"), ("energy_pj", "energy_saving"), ("offchip_bytes", "offchip_saving"))
    for c, name in pairs:
        out[f"{name}_vs_dense_training"] = ratios(out[f"dense_training_{c}"], out[c])
    if "vector_ops" in out:
        out["vector_ops_vs_dense_training"] = ratios(out["vector_ops"], out["dense_training_vector_ops"])
    out["feature_speedup"] = ratios(out["dense_cycles"], out["cycles"])
    order = {m: i for i, m in enumerate(dict.fromkeys([dense_method, *out["method"]]))}
    return out.sort_values(["arch", "method"], key=lambda s: s.map(order) if s.name == "method" else s,
                           kind="stable").reset_index(drop=True)


def reram_writes(df: pd.DataFrame) -> pd.DataFrame:
    """ReRAM training writes of the replayed updates, per trace × arch × layer × iteration (long):
    cells written, the fraction of the layer's cells written, the most writes per cell per epoch
    and the projected lifetime in epochs. Empty when the results hold no ReRAM update rows."""
    if "reram_cell_writes" not in df.columns:
        return pd.DataFrame()
    u = df[(df["pass"] == "update") & df["reram_cell_writes"].notna()]
    if "reram_writes_recorded" in u:
        u = u[u["reram_writes_recorded"].fillna(False).astype(bool)]
    if u.empty:
        return pd.DataFrame()
    cols = ["reram_cell_writes", "reram_cells_written_fraction", "reram_max_cell_writes_per_epoch",
            "reram_lifetime_epochs"]
    extra = [c for c in ("method",) if c in u]
    return u[[*KEYS, *extra, "layer", "iteration", *cols]].reset_index(drop=True)


def reram_crossbar_writes(df: pd.DataFrame) -> pd.DataFrame:
    """Long: trace, arch, layer, crossbar (index within the layer's copy), iteration, cells written —
    from the ``reram_crossbar_writes`` column of the update rows. Empty without it."""
    if "reram_crossbar_writes" not in df.columns:
        return pd.DataFrame()
    u = df[(df["pass"] == "update") & df["reram_crossbar_writes"].notna()
           & (df["reram_crossbar_writes"].astype(str) != "")]
    rows = []
    for (trace, arch, layer, iteration), text in zip(
            zip(u["trace"], u["arch"], u["layer"], u["iteration"], strict=True),
            u["reram_crossbar_writes"], strict=True):
        counts = np.array(str(text).split(), dtype=np.int64)  # (crossbars,)
        rows.append(pd.DataFrame({"trace": trace, "arch": arch, "layer": layer, "iteration": iteration,
                                  "crossbar": np.arange(len(counts)), "cells_written": counts}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def reram_writes_by_method(df: pd.DataFrame) -> pd.DataFrame:
    """Per ReRAM arch × method × layer: mean cells written per recorded step and the shortest
    projected lifetime (epochs) — the methods side by side with dense training."""
    w = reram_writes(df)
    if w.empty or "method" not in w:
        return pd.DataFrame()
    return w.groupby(["arch", "method", "layer"], sort=False).agg(
        cells_written_per_step=("reram_cell_writes", "mean"),
        written_fraction=("reram_cells_written_fraction", "mean"),
        lifetime_epochs=("reram_lifetime_epochs", "min")).reset_index()


def gpu_paths(df: pd.DataFrame) -> pd.DataFrame:
    """Per GPU-like machine, trace, layer and pass: the kernel path(s) taken over the replayed
    iterations, and, from the last replayed iteration, why a sparse path was not taken and the
    crossover density. Empty when the results hold no GPU rows."""
    if "gpu_sparse_path" not in df.columns:
        return pd.DataFrame()
    g = df[df["gpu_sparse_path"].notna() & (df["pass"] != "update")]
    if g.empty:
        return pd.DataFrame()
    g = g.assign(trace=g["trace"].map(lambda p: Path(str(p)).name)).sort_values("iteration", kind="stable")
    keys = ["arch", "trace", "layer", "pass"]
    paths = g.groupby(keys, sort=False)["gpu_sparse_path"].agg(
        lambda s: ", ".join(f"{p} ({n}/{len(s)})" if len(set(s)) > 1 else str(p)
                            for p, n in s.value_counts(sort=False).items()))
    last = g.groupby(keys, sort=False).last()
    out = pd.DataFrame({"path": paths})
    if "gpu_dense_reason" in last:
        out["why not sparse (last iteration)"] = last["gpu_dense_reason"].fillna("")
    # no sparse operand (the dense reason says why): no density to show, a dash rather than NaN
    for col, name in (("gpu_crossover_density", "crossover density"),
                      ("gpu_sparse_density", "sparse operand density")):
        if col in last:
            out[name] = last[col].map(lambda v: "—" if pd.isna(v) else round(float(v), 4))
    return out.reset_index()


def mappings(df: pd.DataFrame) -> pd.DataFrame:
    """Per PE-array machine, trace, layer and pass (last replayed iteration): the mapping
    (docs/mapping.md's notation) and the off-chip bytes per operand, read and written (data and
    metadata). Empty when no row has a mapping."""
    if "mapping" not in df.columns:
        return pd.DataFrame()
    m = df[df["mapping"].notna()]
    if m.empty:
        return pd.DataFrame()
    m = m.assign(trace=m["trace"].map(lambda p: Path(str(p)).name)).sort_values("iteration", kind="stable")
    last = m.groupby(["arch", "trace", "layer", "pass"], sort=False).last()
    out = pd.DataFrame({"mapping": last["mapping"]})
    off = m["off_chip"].iloc[0] if "off_chip" in m.columns else "dram"
    for op in ("a", "b", "c"):
        for direction in ("read", "write"):
            cols = [c for c in (f"{off}_{op}_{direction}_bytes", f"{off}_{op}_metadata_{direction}_bytes")
                    if c in last.columns]
            total = last[cols].fillna(0).sum(axis=1) if cols else 0.0
            if cols and float(np.sum(total)) > 0:
                out[f"{off} {op} {direction} (B)"] = total
    return out.reset_index()


def _readable(path: str | Path) -> bool:
    return (Path(str(path)) / "manifest.json").is_file()


def _trace_iterations(path: str | Path) -> int | None:
    try:
        return len(traces.load(path, check=False))
    except (ValueError, OSError):
        return None
