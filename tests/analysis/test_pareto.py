"""analysis.pareto against a brute-force reference on random point sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import pareto, pareto_mask


def brute_force(points: list[tuple[float, ...]]) -> list[bool]:
    """A point is kept unless some other point is <= in every objective and < in one (NaN: out)."""
    out = []
    for p in points:
        if any(np.isnan(x) for x in p):
            out.append(False)
            continue
        dominated = any(all(b <= a for a, b in zip(p, q, strict=True)) and
                        any(b < a for a, b in zip(p, q, strict=True))
                        for q in points if not any(np.isnan(x) for x in q))
        out.append(not dominated)
    return out


values = st.one_of(st.integers(0, 5).map(float), st.floats(-1e6, 1e6), st.just(float("nan")))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4).flatmap(lambda k: st.lists(st.tuples(*[values] * k), min_size=0, max_size=40)))
def test_pareto_mask_matches_brute_force(points):
    k = len(points[0]) if points else 2
    arr = np.array(points, dtype=np.float64).reshape(len(points), k)
    assert pareto_mask(arr).tolist() == brute_force(points)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=30))
def test_maximize_is_minimizing_the_negation(pairs):
    df = pd.DataFrame(pairs, columns=["latency_s", "speedup"], index=[f"p{i}" for i in range(len(pairs))])
    front = pareto(df, minimize=["latency_s"], maximize=["speedup"])
    expect = brute_force([(a, -b) for a, b in pairs])
    assert list(front.index) == [i for i, keep in zip(df.index, expect, strict=True) if keep]


def test_chunks_give_the_same_front(monkeypatch):
    rng = np.random.default_rng(0)
    v = rng.random((300, 3))
    whole = pareto_mask(v)
    import analysis.pareto_front as mod

    monkeypatch.setattr(mod, "PAIRS_PER_CHUNK", 7)
    assert (pareto_mask(v) == whole).all() and whole.sum() > 1
