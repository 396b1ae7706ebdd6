"""Slow scalar reference of the tile cost model: loops over tiles, PEs and elements.

Written from the model's definition (hwsim/tiles.py docstring, DESIGN.md), not from the code.
"""

from __future__ import annotations

import numpy as np


def _slices(length: int, size: int) -> list[range]:
    return [range(s, min(s + size, length)) for s in range(0, length, size)]


def reference(a, b, need, df, rows, cols, chunk, gate, skip, pe_skip, fill):
    """Per tile: (cycles, algorithmic, actual, gated, skipped, a_sent, b_sent, a_nz, b_nz)."""
    m_dim, k_dim = a.shape
    n_dim = b.shape[1]
    tiles = []
    if df == "ws":
        plan = [(c_, r_, s_) for c_ in _slices(n_dim, cols) for r_ in _slices(k_dim, rows)
                for s_ in _slices(m_dim, chunk)]
    elif df == "os":
        plan = [(c_, r_, s_) for c_ in _slices(n_dim, cols) for r_ in _slices(m_dim, rows)
                for s_ in _slices(k_dim, chunk)]
    else:  # is: rows ← K, cols ← M, stream N
        plan = [(c_, r_, s_) for c_ in _slices(m_dim, cols) for r_ in _slices(k_dim, rows)
                for s_ in _slices(n_dim, chunk)]
    for colr, rowr, strm in plan:
        first = strm.start in (0,)
        if df == "ws":
            ks, ns, ms = rowr, colr, strm
        elif df == "os":
            ms, ns, ks = rowr, colr, strm
        else:
            ks, ms, ns = rowr, colr, strm
        alg = len(ms) * len(ks) * len(ns)
        pairs = sum(int(a[m, k] and b[k, n]) for m in ms for k in ks for n in ns)
        if pe_skip:
            if df == "ws":  # PE (k, n) holds b[k, n] and sees every streamed a[m, k]
                work = [int(b[k, n]) * sum(int(a[m, k]) for m in ms) for k in ks for n in ns]
            elif df == "is":  # PE (k, m) holds a[m, k] and sees every streamed b[k, n]
                work = [int(a[m, k]) * sum(int(b[k, n]) for n in ns) for k in ks for m in ms]
            else:  # PE (m, n) owns the output; unneeded outputs cost nothing
                work = [0 if need is not None and not need[m, n] else
                        sum(int(a[m, k] and b[k, n]) for k in ks) for m in ms for n in ns]
            t = max(work) if work else 0
            actual = sum(work)
            cycles = t + (fill if first else 0)
            a_sent = len(ms) * len(ks) if df in ("ws", "os") else (len(ms) * len(ks) if first else 0)
            b_sent = (len(ks) * len(ns) if first else 0) if df == "ws" else len(ks) * len(ns)
            tiles.append((cycles, alg, actual, 0, alg - actual, a_sent, b_sent,
                          _nz_a(a, ms, ks, first, df), _nz_b(b, ks, ns, first, df)))
            continue
        alive = True
        if df == "ws" and "b" in skip and not any(b[k, n] for k in ks for n in ns):
            alive = False
        if df == "is" and "a" in skip and not any(a[m, k] for m in ms for k in ks):
            alive = False
        if df == "ws":
            live = [m for m in ms if "a" not in skip or any(a[m, k] for k in ks)]
            t = len(live)
            a_sent, b_sent = t * len(ks), (len(ks) * len(ns) if first else 0)
        elif df == "is":
            live = [n for n in ns if "b" not in skip or any(b[k, n] for k in ks)]
            t = len(live)
            a_sent, b_sent = (len(ks) * len(ms) if first else 0), t * len(ks)
        else:
            live = [k for k in ks if ("a" not in skip or any(a[m, k] for m in ms))
                    and ("b" not in skip or any(b[k, n] for n in ns))]
            t = len(live)
            a_sent, b_sent = t * len(ms), t * len(ns)
        if not alive:
            tiles.append((0, alg, 0, 0, alg, 0, 0, 0, 0))
            continue
        attempted = t * len(ks) * len(ns) if df != "os" else t * len(ms) * len(ns)
        if df == "is":
            attempted = t * len(ks) * len(ms)
        actual = pairs if gate else attempted
        tiles.append((t + (fill if first else 0), alg, actual, attempted - actual, alg - attempted,
                      a_sent, b_sent, _nz_a(a, ms, ks, first, df), _nz_b(b, ks, ns, first, df)))
    return np.array(tiles, dtype=np.int64).reshape(-1, 9)


def _nz_a(a, ms, ks, first, df):  # the stationary A of is is sent on a fold's first chunk only
    total = sum(int(a[m, k]) for m in ms for k in ks)
    return total if (df != "is" or first) else 0


def _nz_b(b, ks, ns, first, df):
    total = sum(int(b[k, n]) for k in ks for n in ns)
    return total if (df != "ws" or first) else 0
