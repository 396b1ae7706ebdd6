"""A self-contained HTML report: plotly.js inlined once, so the file opens offline."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from traces.format.writer import atomic_write

from . import figures, frames

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9rem; } td, th { padding: 4px 10px; border: 1px solid #ddd; }
th { background: #f4f4f4; } .note { color: #555; font-size: 0.9rem; }
"""


def report_figures(results: pd.DataFrame) -> list[go.Figure]:
    """Every figure of the report, in order: each method against dense training (when the results
    hold a dense-trained trace), the feature-only overview, then per trace and per trace × arch."""
    out = []
    versus = frames.versus_dense_training(results)
    if not versus.empty:
        out.append(figures.versus_dense_training(versus))
    out.append(figures.run_overview(frames.run_totals(results)))
    by_method = frames.reram_writes_by_method(results)
    for arch, g in by_method.groupby("arch", sort=False) if not by_method.empty else ():
        out.append(figures.reram_writes_by_method(g, str(arch)))
    writes = frames.reram_writes(results)
    xbars = frames.reram_crossbar_writes(results)
    layers, energy = frames.per_layer(results), frames.energy_by_component(results)
    traffic, per_it = frames.traffic_by_level(results), frames.per_iteration(results)
    for trace in dict.fromkeys(results["trace"]):
        out.append(figures.density_heatmaps(frames.densities(trace, results), trace))
        for arch in dict.fromkeys(results.loc[results["trace"] == trace, "arch"]):
            def sel(df: pd.DataFrame, t: str = trace, a: str = arch) -> pd.DataFrame:
                return df[(df["trace"] == t) & (df["arch"] == a)]

            out += [figures.layer_speedup(sel(layers), trace, arch),
                    figures.energy_breakdown(sel(energy), trace, arch),
                    figures.traffic(sel(traffic), trace, arch),
                    figures.over_iterations(sel(per_it), trace, arch)]
            if not writes.empty and not sel(writes).empty:
                out.append(figures.reram_write_heatmap(sel(writes), trace, arch))
            if not xbars.empty and not sel(xbars).empty:
                out.append(figures.reram_crossbar_heatmap(sel(xbars), trace, arch))
    return out


def write_report(results: pd.DataFrame | Iterable[str | Path], path: str | Path,
                 title: str = "hwsim report") -> Path:
    """Write the report for ``results`` (a frame, or results files) to ``path``, atomically."""
    df = results if isinstance(results, pd.DataFrame) else frames.load_results(results)
    figs = report_figures(df)
    table = frames.summary(df)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    versus = frames.versus_dense_training(df)
    if not versus.empty:
        parts += ["<h2>What each method buys, against dense training on the same machine</h2>",
                  "<p class='note'>Each trace against the dense-trained trace of the same model, data and "
                  "batch, replayed on the same machine: per training iteration, the method's own work "
                  "(selection, threshold compares, mask compression) included. Above 1: cheaper than "
                  "dense training.</p>",
                  _versus_table(versus).to_html(index=False, classes="summary", border=0)]
    feature_section = [
        "<h2>Sparse features on or off, same trace</h2>",
        "<p class='note'>Speedup and energy saving here are against the dense baseline: the same trace "
        "on the same machine with every sparse acceleration feature off (it still carries the "
        "method's own work). Whole-run figures extrapolate the replayed iterations to the trace's "
        "length; spreads are over the replayed iterations.</p>",
        table.to_html(index=False, classes="summary", border=0)]
    first = True
    current = None
    for i, fig in enumerate(figs):  # tables sit beside their figures: headline, then feature-only
        meta = fig.layout.meta
        if meta["figure"] == "run_overview":
            parts += feature_section
        key = (meta["trace"], meta["arch"])
        if key != current and meta["figure"] not in ("run_overview", "versus_dense_training",
                                                     "reram_writes_by_method"):
            heading = (f"Trace {Path(meta['trace']).name}" if meta["arch"] == "all"
                       else f"{Path(meta['trace']).name} on {meta['arch']}")
            parts.append(f"<h2>{html.escape(heading)}</h2>")
            current = key
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False},
                                 div_id=f"figure-{i}-{meta['figure']}"))  # stable ids: identical reports
        first = False
    maps = frames.mappings(df)
    if not maps.empty:
        parts += ["<h2>Mappings per layer and pass (PE arrays)</h2>",
                  "<p class='note'>How each pass's data moved above the array (docs/mapping.md): the fixed "
                  "order (<code>ws M2040 | C1 R2 M3</code>: dataflow, streamed chunk, folds) or a searched "
                  "or given loop nest (<code>B1 K64 C64 OY28 OX28 | OY2 OX2</code>: buffer tile, then the "
                  "DRAM loops outermost first), with the off-chip bytes per operand of the last replayed "
                  "iteration (data and metadata).</p>",
                  maps.to_html(index=False, classes="summary", border=0)]
    paths = frames.gpu_paths(df)
    if not paths.empty:
        parts += ["<h2>GPU kernel paths per layer and pass</h2>",
                  "<p class='note'>Which kernel each GEMM ran on the GPU-like machines (dense tensor cores, "
                  "2:4 sparse tensor cores, an unstructured sparse kernel, or a gathered dense GEMM), why a "
                  "sparse path was not taken, and the weight density below which the sparse kernel would "
                  "beat the dense one for that shape.</p>",
                  paths.to_html(index=False, classes="summary", border=0)]
    return write_page(path, parts)


def write_page(path: str | Path, parts: list[str]) -> Path:
    """Close the page's HTML ``parts`` and write them to ``path`` atomically (directories made)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([*parts, "</body></html>"]).encode("utf-8")
    atomic_write(target, lambda f: f.write(text))
    return target


def _versus_table(v: pd.DataFrame) -> pd.DataFrame:
    """The headline table, one row per trace × machine, units and directions in the headers."""
    out = pd.DataFrame({
        "method": v["method"], "arch": v["arch"], "trace": v["trace"].map(lambda p: Path(str(p)).name),
        **({"test accuracy": v["test_accuracy"].round(3)} if "test_accuracy" in v else {}),
        "cycles per iteration": v["cycles"].round(0).astype("int64"),
        "dense training cycles per iteration": v["dense_training_cycles"].round(0).astype("int64"),
        "speedup vs dense training (x)": v["speedup_vs_dense_training"].round(3),
        "energy saving vs dense training (x)": v["energy_saving_vs_dense_training"].round(3),
        "off-chip traffic saving (x)": v["offchip_saving_vs_dense_training"].round(3),
    })
    if "vector_ops_vs_dense_training" in v:
        out["non-GEMM work vs dense training (x)"] = v["vector_ops_vs_dense_training"].round(3)
    out["feature-only speedup (x)"] = v["feature_speedup"].round(3)
    return out
