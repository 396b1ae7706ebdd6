"""``hwsim report SWEEP_DIR``: a self-contained HTML page of a sweep (plotly inlined once)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from ..html import STYLE, write_page
from ..pareto_front import pareto
from . import figures
from .run import load


def axis_columns(points: pd.DataFrame) -> list[str]:
    """The swept fields (dotted paths) of a points table, in first-use order."""
    out: dict[str, None] = {}
    for text in points.get("values", pd.Series(dtype=str)):
        for k in json.loads(text):
            out[k] = None
    return [c for c in out if c in points]


def sweep_figures(points: pd.DataFrame) -> list:
    """The report's figures: Pareto front, parallel coordinates, a heat map per design with two
    or more numeric axes, per-method comparison."""
    figs = [figures.pareto_front(points)]
    axes = axis_columns(points)
    if axes:
        figs.append(figures.parallel_coordinates(points, axes))
    for _, g in figures.ok_points(points).groupby("design", sort=False):
        own = [a for a in axes if g[a].notna().all() and g[a].nunique() > 1]
        if len(own) >= 2:
            figs.append(figures.heatmap(g, own[0], own[1]))
    figs.append(figures.method_comparison(points))
    return figs


def spec_name(directory: str | Path) -> str | None:
    """The ``name`` of the spec last run in ``directory`` (``DIR/spec.yaml``), or None."""
    import yaml

    try:
        data = yaml.safe_load((Path(directory) / "spec.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


def write_sweep_report(directory: str | Path, path: str | Path, title: str | None = None) -> Path:
    """Write the HTML report of the sweep in ``directory`` to ``path``, atomically."""
    points, _ = load(directory)
    if points.empty:
        raise ValueError(f"{directory}: the sweep has no points yet; "
                         f"run `hwsim sweep SPEC --out {directory}`")
    title = title or f"Sweep {spec_name(directory) or Path(directory).name}"
    ok = figures.ok_points(points)
    failed = points[points["status"] != "ok"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='note'>{len(points)} points: {len(ok)} ran, {len(failed)} failed. "
             "Latency and energy are per replayed training iteration; speedup and energy saving are "
             "against the same machine with its sparse features off.</p>"]
    front = pareto(ok, minimize=["latency_s", "energy_j"]) if not ok.empty else ok
    cols = ["design", "trace_label", "method", "values", "latency_s", "energy_j", "speedup", "energy_saving",
            "chip_area_mm2"]
    parts += ["<h2>Pareto front (latency, energy)</h2>",
              front[[c for c in cols if c in front]].sort_values("latency_s")
              .to_html(index=False, classes="summary", border=0)]
    if "method" in ok and not ok.empty:
        parts += ["<h2>Lowest-energy design per method</h2>",
                  figures.best_per_method(ok).to_html(index=False, classes="summary", border=0)]
    for i, fig in enumerate(sweep_figures(points)):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False},
                                 div_id=f"figure-{i}-{fig.layout.meta['figure']}"))
    if not failed.empty:
        parts += ["<h2>Failed points</h2>",
                  failed[["design", "trace_label", "values", "error"]].to_html(index=False, classes="summary",
                                                                               border=0)]
    return write_page(path, parts)
