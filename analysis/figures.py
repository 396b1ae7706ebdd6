"""Plotly figures over the tidy frames (``analysis.frames``). Functions return figures; nothing is
shown. Every figure's ``layout.meta`` says what it is (``figure``) and for which ``trace`` and
``arch`` (``"all"`` for overviews), so reports and tests can find it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .frames import PASS_ORDER, label

PASS_COLORS = {"forward": "#4C78A8", "backward_data": "#F58518", "backward_weight": "#54A24B",
               "update": "#B279A2"}
OPERAND_NAMES = {"a": "A (streamed)", "b": "B", "c": "C (result)"}


def _meta(fig: go.Figure, name: str, trace: str, arch: str) -> go.Figure:
    fig.update_layout(meta={"figure": name, "trace": trace, "arch": arch}, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 60})
    return fig


def versus_dense_training(table: pd.DataFrame) -> go.Figure:
    """What each method buys on each machine against dense training there (``frames.versus_dense_training``):
    cycles, energy and off-chip bytes ratios, the method's own work included; 1 = no gain. With
    several models in the table (the demo's conv net and transformer), a bar is "model method"."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("speedup vs dense training (x)",
                                                        "energy saving vs dense training (x)",
                                                        "off-chip traffic saving (x)"))
    colors = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2"]
    several = "model" in table and table["model"].nunique() > 1
    for i, (arch, g) in enumerate(table.groupby("arch", sort=False)):
        x = g["model"].astype(str) + " " + g["method"].astype(str) if several else g["method"]
        for col, y in enumerate(("speedup_vs_dense_training", "energy_saving_vs_dense_training",
                                 "offchip_saving_vs_dense_training"), start=1):
            fig.add_bar(x=x, y=g[y], name=str(arch), legendgroup=str(arch), showlegend=col == 1,
                        marker_color=colors[i % len(colors)], row=1, col=col)
    for col in (1, 2, 3):
        fig.add_hline(y=1.0, line_dash="dot", line_color="#888", row=1, col=col)
    fig.update_layout(barmode="group", title="Each method against dense training on the same machine "
                                             "(per iteration; the method's own work included)")
    return _meta(fig, "versus_dense_training", "all", "all")


def run_overview(totals: pd.DataFrame) -> go.Figure:
    """Whole-run speedup and energy saving per trace × architecture, with their spread."""
    names = label(totals)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("speedup over dense (x)", "energy saving (x)"))
    fig.add_bar(x=names, y=totals["run_speedup"], error_y={"type": "data", "array": totals["speedup_std"]},
                name="speedup", marker_color="#4C78A8", row=1, col=1)
    fig.add_bar(x=names, y=totals["run_energy_saving"],
                error_y={"type": "data", "array": totals["energy_saving_std"]}, name="energy saving",
                marker_color="#54A24B", row=1, col=2)
    fig.update_layout(title="Whole run, extrapolated from the replayed iterations "
                            "(error bars: std over iterations)", showlegend=False)
    return _meta(fig, "run_overview", "all", "all")


def layer_speedup(layers: pd.DataFrame, trace: str, arch: str) -> go.Figure:
    """Speedup and energy saving per layer and pass."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("speedup over dense (x)", "energy saving (x)"))
    for p in PASS_ORDER:
        g = layers[layers["pass"] == p]
        if g.empty:
            continue
        fig.add_bar(x=g["layer"], y=g["speedup"], name=p, legendgroup=p, marker_color=PASS_COLORS[p],
                    row=1, col=1)
        fig.add_bar(x=g["layer"], y=g["energy_saving"], name=p, legendgroup=p, showlegend=False,
                    marker_color=PASS_COLORS[p], row=2, col=1)
    fig.update_layout(barmode="group", title="Per layer and pass (summed over the replayed iterations)",
                      height=520)
    return _meta(fig, "layer_speedup", trace, arch)


def energy_breakdown(energy: pd.DataFrame, trace: str, arch: str) -> go.Figure:
    """Energy per component, stacked per pass (µJ)."""
    fig = go.Figure()
    for comp, g in energy.groupby("component", sort=False):
        g = g.set_index("pass").reindex([p for p in PASS_ORDER if p in set(energy["pass"])]).reset_index()
        fig.add_bar(x=g["pass"], y=g["energy_pj"] / 1e6, name=str(comp))
    fig.update_layout(barmode="stack", title="Energy by component (µJ, replayed iterations)",
                      yaxis_title="µJ")
    return _meta(fig, "energy_breakdown", trace, arch)


def traffic(traffic_long: pd.DataFrame, trace: str, arch: str) -> go.Figure:
    """Bytes moved per memory level (and link) and operand, data and metadata (MB)."""
    t = traffic_long.copy()
    t["where"] = t["component"] + " " + t["direction"]
    fig = go.Figure()
    for (op, kind), g in t.groupby(["operand", "kind"]):
        fig.add_bar(x=g["where"], y=g["bytes"] / 1e6, name=f"{OPERAND_NAMES.get(op, op)} {kind}")
    fig.update_layout(barmode="stack", title="Memory traffic per level and operand (MB, replayed iterations)",
                      yaxis_title="MB")
    return _meta(fig, "traffic", trace, arch)


def over_iterations(per_it: pd.DataFrame, trace: str, arch: str) -> go.Figure:
    """Speedup and energy saving across training iterations, as the sparsity evolves."""
    fig = go.Figure()
    fig.add_scatter(x=per_it["iteration"], y=per_it["speedup"], mode="lines+markers", name="speedup")
    fig.add_scatter(x=per_it["iteration"], y=per_it["energy_saving"], mode="lines+markers",
                    name="energy saving")
    fig.update_layout(title="Across training iterations (all layers and passes)", xaxis_title="iteration",
                      yaxis_title="x over dense")
    return _meta(fig, "over_iterations", trace, arch)


def density_heatmaps(dens: pd.DataFrame, trace: str) -> go.Figure:
    """Density per layer over iterations, one heatmap per tensor."""
    tensors = [t for t in ("x", "w", "y", "y_sel", "y_out", "dy", "dx", "dw") if t in set(dens["tensor"])]
    fig = make_subplots(rows=len(tensors), cols=1, subplot_titles=[f"density of {t}" for t in tensors],
                        vertical_spacing=0.3 / max(len(tensors), 1))
    layers = list(dict.fromkeys(dens["layer"]))
    for i, t in enumerate(tensors, start=1):
        grid = dens[dens["tensor"] == t].pivot(index="layer", columns="iteration", values="density")
        grid = grid.reindex(layers)
        fig.add_heatmap(z=grid.to_numpy(), x=list(grid.columns), y=list(grid.index), zmin=0, zmax=1,
                        colorscale="Viridis", showscale=(i == 1), name=t, row=i, col=1)
    fig.update_layout(title=f"Density per layer over iterations: {Path(trace).name}",
                      height=max(300, 170 * len(tensors)))
    return _meta(fig, "density", trace, "all")


def reram_writes_by_method(table: pd.DataFrame, arch: str) -> go.Figure:
    """Cells written per training step and projected lifetime per layer, one bar per method."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cells written per step",
                                                        "projected lifetime (epochs, log)"))
    colors = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2"]
    for i, (method, g) in enumerate(table.groupby("method", sort=False)):
        c = colors[i % len(colors)]
        fig.add_bar(x=g["layer"], y=g["cells_written_per_step"], name=str(method), legendgroup=str(method),
                    marker_color=c, row=1, col=1)
        fig.add_bar(x=g["layer"], y=g["lifetime_epochs"], name=str(method), legendgroup=str(method),
                    showlegend=False, marker_color=c, row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(barmode="group", title=f"ReRAM training writes by method on {arch} "
                                             "(recorded updates; lifetime against the cells' endurance)")
    return _meta(fig, "reram_writes_by_method", "all", arch)


def reram_write_heatmap(writes: pd.DataFrame, trace: str, arch: str) -> go.Figure:
    """Fraction of each layer's cells written by each recorded update (layer × iteration)."""
    grid = writes.pivot_table(index="layer", columns="iteration", values="reram_cells_written_fraction",
                              sort=False)
    fig = go.Figure()
    fig.add_heatmap(z=grid.to_numpy(), x=list(grid.columns), y=list(grid.index), zmin=0, zmax=1,
                    colorscale="Inferno", name="written fraction")
    fig.update_layout(title="Fraction of cells written per training step", xaxis_title="iteration")
    return _meta(fig, "reram_write_heatmap", trace, arch)


def reram_crossbar_heatmap(xbars: pd.DataFrame, trace: str, arch: str) -> go.Figure:
    """Cells written per crossbar (rows: ``layer #index``) at each recorded update (columns)."""
    x = xbars.assign(where=xbars["layer"].astype(str) + " #" + xbars["crossbar"].astype(str))
    grid = x.pivot_table(index="where", columns="iteration", values="cells_written", sort=False)
    fig = go.Figure()
    fig.add_heatmap(z=grid.to_numpy(), x=list(grid.columns), y=list(grid.index), colorscale="Inferno",
                    name="cells written")
    fig.update_layout(title="Cells written per crossbar per training step (one copy of each layer)",
                      xaxis_title="iteration", height=max(320, 14 * len(grid) + 120))
    return _meta(fig, "reram_crossbar_heatmap", trace, arch)
