"""Tables that describe a trace: layers, densities per tensor, effectual MACs per pass.

Returns pandas DataFrames (pandas is imported here, never by the reader).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..format.manifest import TENSORS
from ..format.reader import Trace
from .accounting import pass_counts

SHORT = {"forward": "fwd", "backward_data": "bwd-data", "backward_weight": "bwd-weight"}


def layer_table(trace: Trace) -> pd.DataFrame:
    """One row per layer: geometry and per-pass GEMM dims (for the manifest's batch size)."""
    batch = trace.manifest.get("batch_size") or 1
    rows = []
    for i, s in enumerate(trace.layers):
        row = {"#": i, "layer": s.name, "kind": s.kind, "x": _shape(s.x_shape), "w": _shape(s.w_shape),
               "y": _shape(s.y_shape)}
        if s.kind in ("conv2d", "conv3d", "conv_transpose"):
            row["stride/pad/dil/groups"] = (f"{_shape(s.stride)}/{_shape(s.padding)}/"
                                            f"{_shape(s.dilation)}/{s.groups}")
        for p in s.gemm_passes:  # an embedding has none
            g = s.gemm(p, batch)
            row[f"{SHORT[p]} M×K×N"] = f"{g.m}×{g.k}×{g.n}" + (f" ×{g.groups}" if g.groups > 1 else "")
        rows.append(row)
    return pd.DataFrame(rows).set_index("#").fillna("")


def density_stats(trace: Trace) -> pd.DataFrame:
    """Per layer and tensor: mean, min and max density over all iterations (NaN where absent)."""
    counts, batch = trace.counts()  # (I, L, T), (I,)
    numel = np.empty(counts.shape, dtype=np.float64)
    for li, s in enumerate(trace.layers):
        for ti, t in enumerate(TENSORS):
            numel[:, li, ti] = s.numel(t, 1) * (batch if s.batched(t) else 1)
    dens = np.where(counts >= 0, counts / numel, np.nan)
    rows = []
    for li, s in enumerate(trace.layers):
        for ti, t in enumerate(TENSORS):
            col = dens[:, li, ti]
            if np.isnan(col).all():
                continue
            rows.append({"layer": s.name, "tensor": t, "mean": np.nanmean(col),
                         "min": np.nanmin(col), "max": np.nanmax(col),
                         "first": col[0], "last": col[-1]})
    return pd.DataFrame(rows)


def density_table(trace: Trace) -> pd.DataFrame:
    """Layers × tensors of ``mean (min–max)`` density strings, for printing."""
    stats = density_stats(trace)
    text = stats.apply(lambda r: f"{r['mean']:.3f}" if r["min"] == r["max"]
                       else f"{r['mean']:.3f} ({r['min']:.2f}–{r['max']:.2f})", axis=1)
    table = stats.assign(text=text).pivot(index="layer", columns="tensor", values="text")
    order = [s.name for s in trace.layers]
    return table.reindex(index=order, columns=[t for t in TENSORS if t in table.columns]).fillna("—")


def mac_table(trace: Trace, iteration: int | None = None) -> pd.DataFrame:
    """Exact algorithmic and effectual MACs per layer and pass on one mask iteration.

    Defaults to the last mask iteration. Backward-data also gives the count without products
    that land on padding.
    """
    if not trace.mask_iterations:
        return pd.DataFrame()
    index = trace.mask_iterations[-1] if iteration is None else iteration
    rows = []
    with trace.iteration(index) as it:
        for li, s in enumerate(trace.layers):
            masks = {t: it.mask(li, t) for t in ("x", "w", "y_sel", "dy", "dw_needed")}
            for c in pass_counts(s, it.mask_batch, **masks):
                rows.append({"iteration": index, "layer": s.name, "pass": c.pass_, "batch": c.batch,
                             "algorithmic_macs": c.algorithmic, "effectual_macs": c.effectual,
                             "effectual_macs_no_padding": c.effectual_no_padding,
                             "effectual_fraction": c.density})
    return pd.DataFrame(rows)


def _shape(t: tuple[int, ...]) -> str:
    return "×".join(str(v) for v in t)
