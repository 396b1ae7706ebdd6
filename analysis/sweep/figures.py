"""Plotly figures over a sweep's points table (``analysis.sweep.load(DIR)[0]``).

Each function returns a figure whose ``layout.meta`` names it (``figure``), like
``analysis.figures``; nothing is shown.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from archs.units import format_quantity

from ..pareto_front import pareto

HOVER = ("design", "trace_label", "method", "values", "speedup", "energy_saving")
LABELS = {"latency_s": "latency per iteration (s)", "energy_j": "energy per iteration (J)",
          "chip_area_mm2": "chip area (mm²)", "speedup": "speedup over dense (x)",
          "energy_saving": "energy saving over dense (x)", "offchip_bytes": "off-chip bytes per iteration",
          "cycles": "cycles per iteration"}


def _meta(fig: go.Figure, name: str) -> go.Figure:
    fig.update_layout(meta={"figure": name, "trace": "all", "arch": "all"}, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 60})
    return fig


def ok_points(points: pd.DataFrame) -> pd.DataFrame:
    """The points that ran (status ok)."""
    return points[points["status"] == "ok"] if "status" in points else points


def pareto_front(points: pd.DataFrame, x: str = "latency_s", y: str = "energy_j",
                 color: str = "chip_area_mm2") -> go.Figure:
    """Every point (``x`` against ``y``, log axes, coloured by ``color``) with the non-dominated ones
    joined by a line, per trace."""
    pts = ok_points(points)
    fig = go.Figure()
    hover = [c for c in HOVER if c in pts]
    custom = pts[hover].astype(str).to_numpy() if hover else None
    tmpl = "<br>".join(f"{c}: %{{customdata[{i}]}}" for i, c in enumerate(hover))
    fig.add_scatter(x=pts[x], y=pts[y], mode="markers", name="design points", customdata=custom,
                    hovertemplate=f"{x}: %{{x:.4g}}<br>{y}: %{{y:.4g}}<br>{tmpl}<extra></extra>",
                    marker={"color": pts[color], "colorscale": "Viridis", "showscale": True, "size": 8,
                            "colorbar": {"title": LABELS.get(color, color)}, "line": {"width": 0.5}})
    for trace, g in pts.groupby("trace_label", sort=False):
        front = pareto(g, minimize=[x, y]).sort_values(x)
        fig.add_scatter(x=front[x], y=front[y], mode="lines+markers", name=f"Pareto front: {trace}",
                        marker={"symbol": "diamond-open", "size": 11}, line={"width": 1.5})
    fig.update_xaxes(title=LABELS.get(x, x), type="log")
    fig.update_yaxes(title=LABELS.get(y, y), type="log")
    name = LABELS.get(color, color)
    fig.update_layout(title=f"{LABELS.get(y, y)} against {LABELS.get(x, x)}, coloured by {name}")
    return _meta(fig, "sweep_pareto")


def parallel_coordinates(points: pd.DataFrame, axes: Sequence[str], color: str = "speedup") -> go.Figure:
    """One line per point through its axis values and ``color``; text axes become numbered levels."""
    pts = ok_points(points)
    dims = []
    for a in [*axes, "latency_s", "energy_j", color]:
        if a not in pts or pts[a].isna().all() or any(d["label"] == LABELS.get(a, a) for d in dims):
            continue
        col = pts[a]
        if not pd.api.types.is_numeric_dtype(col):
            levels = sorted(col.dropna().astype(str).unique())
            codes = col.astype(str).map({v: i for i, v in enumerate(levels)})
            dims.append({"label": a, "values": codes, "tickvals": list(range(len(levels))),
                         "ticktext": levels})
        else:
            dims.append({"label": LABELS.get(a, a), "values": col.astype(float)})
    fig = go.Figure(go.Parcoords(line={"color": pts[color], "colorscale": "Viridis", "showscale": True},
                                 dimensions=dims))
    fig.update_layout(title=f"Axes and outcomes of every point, coloured by {LABELS.get(color, color)}")
    return _meta(fig, "sweep_parallel_coordinates")


def heatmap(points: pd.DataFrame, x: str, y: str, value: str = "speedup") -> go.Figure:
    """Mean ``value`` over the points at each (``x``, ``y``) pair of axis values (labelled in units
    that fit them: ``64.0 KiB``, ``2 TB/s``)."""
    pts = ok_points(points).dropna(subset=[x, y])
    table = pts.pivot_table(index=y, columns=x, values=value, aggfunc="mean").sort_index().sort_index(axis=1)
    fig = go.Figure(go.Heatmap(z=table.to_numpy(), x=[format_quantity(x, c) for c in table.columns],
                               y=[format_quantity(y, r) for r in table.index], colorscale="Viridis",
                               colorbar={"title": LABELS.get(value, value)},
                               text=np.round(table.to_numpy(), 3), texttemplate="%{text}"))
    fig.update_xaxes(title=x, type="category")
    fig.update_yaxes(title=y, type="category")
    fig.update_layout(title=f"{LABELS.get(value, value)} over {x} × {y} (mean over the other axes)")
    return _meta(fig, "sweep_heatmap")


def method_comparison(points: pd.DataFrame, value: str = "speedup") -> go.Figure:
    """``value`` of every point, per training method (the trace's) and design, as box plots."""
    pts = ok_points(points)
    by = "method" if "method" in pts and pts["method"].notna().any() else "trace_label"
    fig = go.Figure()
    for design, g in pts.groupby("design", sort=False):
        fig.add_box(x=g[by], y=g[value], name=str(design), boxpoints="all", jitter=0.3, pointpos=0)
    fig.update_layout(boxmode="group", title=f"{LABELS.get(value, value)} per method and design family",
                      yaxis_title=LABELS.get(value, value), xaxis_title=by)
    return _meta(fig, "sweep_methods")


def best_per_method(points: pd.DataFrame, objective: str = "energy_j",
                    by: str = "method") -> pd.DataFrame:
    """The point with the lowest ``objective`` for each ``by`` value (method or trace), with its
    design, axis values and outcomes."""
    pts = ok_points(points)
    if by not in pts or pts[by].isna().all():
        by = "trace_label"
    best = pts.loc[pts.groupby(by)[objective].idxmin()]
    cols = [by, "design", "values", "latency_s", "energy_j", "speedup", "energy_saving", "chip_area_mm2"]
    return best[[c for c in cols if c in best]].reset_index(drop=True)
