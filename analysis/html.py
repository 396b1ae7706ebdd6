"""A self-contained HTML report: plotly.js inlined once, so the file opens offline."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from traces.writer import atomic_write

from . import figures, frames

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9rem; } td, th { padding: 4px 10px; border: 1px solid #ddd; }
th { background: #f4f4f4; } .note { color: #555; font-size: 0.9rem; }
"""


def report_figures(results: pd.DataFrame) -> list[go.Figure]:
    """Every figure of the report, in order: the overview, then per trace and per trace × arch."""
    out = [figures.run_overview(frames.run_totals(results))]
    layers, energy = frames.per_layer(results), frames.energy_by_component(results)
    traffic, per_it = frames.traffic_by_level(results), frames.per_iteration(results)
    for trace in dict.fromkeys(results["trace"]):
        out.append(figures.density_heatmaps(frames.densities(trace), trace))
        for arch in dict.fromkeys(results.loc[results["trace"] == trace, "arch"]):
            def sel(df: pd.DataFrame, t: str = trace, a: str = arch) -> pd.DataFrame:
                return df[(df["trace"] == t) & (df["arch"] == a)]

            out += [figures.layer_speedup(sel(layers), trace, arch),
                    figures.energy_breakdown(sel(energy), trace, arch),
                    figures.traffic(sel(traffic), trace, arch),
                    figures.over_iterations(sel(per_it), trace, arch)]
    return out


def write_report(results: pd.DataFrame | Iterable[str | Path], path: str | Path,
                 title: str = "hwsim report") -> Path:
    """Write the report for ``results`` (a frame, or results files) to ``path``, atomically."""
    df = results if isinstance(results, pd.DataFrame) else frames.load_results(results)
    figs = report_figures(df)
    table = frames.summary(df)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             "<p class='note'>Speedup and energy saving are against the dense baseline: the same trace on "
             "the same machine with every sparse acceleration feature off. Whole-run figures extrapolate "
             "the replayed iterations to the trace's length; spreads are over the replayed iterations.</p>",
             "<h2>Summary</h2>", table.to_html(index=False, classes="summary", border=0)]
    first = True
    current = None
    for fig in figs:
        meta = fig.layout.meta
        key = (meta["trace"], meta["arch"])
        if key != current and meta["figure"] != "run_overview":
            heading = (f"Trace {Path(meta['trace']).name}" if meta["arch"] == "all"
                       else f"{Path(meta['trace']).name} on {meta['arch']}")
            parts.append(f"<h2>{html.escape(heading)}</h2>")
            current = key
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False}))
        first = False
    parts.append("</body></html>")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(parts).encode("utf-8")
    atomic_write(target, lambda f: f.write(text))
    return target
