"""Non-dominated points of a results frame (the Pareto front), vectorized."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

PAIRS_PER_CHUNK = 1 << 22  # point pairs compared at once (bounds the temporary to a few MiB per objective)


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Which rows of ``values`` ``(n_points, n_objectives)`` (all minimized) no other row dominates.

    Row ``j`` dominates row ``i`` when it is no worse in every objective and better in one; equal
    rows do not dominate each other (both stay). Rows with NaN are never on the front and
    dominate nothing.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be (n_points, n_objectives), got shape {v.shape}")
    n = len(v)
    ok = ~np.isnan(v).any(axis=1)
    keep = ok.copy()
    cand = v[ok]  # (m, k)
    idx = np.flatnonzero(ok)
    step = max(1, PAIRS_PER_CHUNK // max(len(cand), 1))
    for start in range(0, len(cand), step):
        block = cand[start:start + step]  # (b, k)
        no_worse = (cand[None, :, :] <= block[:, None, :]).all(axis=2)  # (b, m): cand j no worse than i
        better = (cand[None, :, :] < block[:, None, :]).any(axis=2)
        keep[idx[start:start + step]] = ~(no_worse & better).any(axis=1)
    return keep if n else np.zeros(0, bool)


def pareto(frame: pd.DataFrame, minimize: Sequence[str], maximize: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of ``frame`` on the Pareto front of ``minimize`` (and ``maximize``) columns, in
    their original order and index. ``pareto(points, minimize=["latency_s", "energy_j"])``."""
    cols = [*minimize, *maximize]
    if not cols:
        raise ValueError("name at least one column to minimize or maximize")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise KeyError(f"no column {missing[0]!r}; columns are {list(frame.columns)}")
    v = frame[cols].to_numpy(dtype=np.float64, na_value=np.nan).copy()
    v[:, len(minimize):] *= -1
    return frame[pareto_mask(v)]
