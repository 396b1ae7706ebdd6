"""Expected tile costs when a trace holds only densities (counts-only iterations).

Independent Bernoulli operands with densities ``d_a``, ``d_b`` (and ``d_need`` for needed
outputs): a MAC is effectual with probability ``d_a·d_b``; an all-zero streamed vector of length
``L`` occurs with probability ``(1 − d)^L``; a per-PE-skipping fold lasts the expected maximum
of its PEs' work, each ``Binomial(T, p)``, approximated by ``μ + σ·Φ⁻¹(n/(n+1))`` for ``n``
PEs (clipped to ``[μ, T]``). On a single PE this is ``dense × d_a × d_b``: Sparseloop's
uniform-density model. Results are expected values (floats rounded to integers), and the
report marks such rows ``mode = "expected"``.
"""

from __future__ import annotations

import numpy as np

from .mapping import Mapping
from .tiles import Features, TileCosts, _flat, grid_of


def _round(x: np.ndarray) -> np.ndarray:
    """Integers whose running total tracks ``x``'s (tile order): no per-tile rounding bias."""
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    total = np.rint(np.cumsum(flat))
    return np.diff(total, prepend=0.0).astype(np.int64).reshape(np.shape(x))


def _expected_max(trials: np.ndarray, p: float, n_pe: np.ndarray) -> np.ndarray:
    # imported here: scipy.special takes ~0.1 s to import, and exact replays never need it
    from scipy.special import ndtri

    mu = trials * p
    sigma = np.sqrt(trials * p * (1 - p))
    z = np.where(n_pe > 1, ndtri(n_pe / (n_pe + 1.0)), 0.0)
    return np.clip(mu + sigma * z, mu, trials)


def expected_tile_costs(mp: Mapping, f: Features, d_a: float, d_b: float, d_need: float = 1.0,
                        resident: dict[str, bool] | None = None) -> TileCosts:
    """Expected costs of every tile of one GEMM group with operand densities ``d_a``, ``d_b``.

    ``resident`` as in :func:`hwsim.tiles.tile_costs`: operands fetched once, psums kept on chip.
    """
    res = {"a": False, "b": False, "c": False, **(resident or {})}
    if mp.dataflow == "is":  # WS on the transposed problem, operands swapped
        swapped = Mapping("ws", mp.rows, mp.cols, mp.n, mp.k, mp.m, mp.stream_chunk)
        swap = Features(f.gate, frozenset({"a": "b", "b": "a"}[o] for o in f.skip), f.pe_skip)
        t = expected_tile_costs(swapped, swap, d_b, d_a, 1.0, {"a": res["b"], "b": res["a"], "c": res["c"]})
        for name in ("buf_read", "buf_read_nz", "dram_read", "dram_read_nz"):
            setattr(t, name, {{"a": "b", "b": "a"}.get(k, k): v for k, v in getattr(t, name).items()})
        return t
    g = grid_of(mp)
    grid = np.ones(g.shape)
    ur, uc, ln = g.used_r.astype(float), g.used_c.astype(float), g.length.astype(float)
    first, last = g.first, g.last
    n_cols, n_rows = g.shape[0], g.shape[1]
    alg = ln * ur * uc
    p = d_a * d_b
    if f.dense:
        t, actual = ln, alg
    elif f.pe_skip:
        if mp.dataflow == "ws":  # PE (k, n): b[k, n] · (non-zeros of a in the chunk's column k)
            t = _expected_max(ln, d_a, ur * uc) * (1 - (1 - d_b) ** (ur * uc))
        else:  # os: PE (m, n) owns an output
            t = _expected_max(ln, p * d_need, ur * uc) * (1 - (1 - d_need) ** (ur * uc))
        actual = alg * p * (d_need if mp.dataflow == "os" else 1.0)
    else:
        if mp.dataflow == "ws":
            live = 1 - (1 - d_a) ** ur if "a" in f.skip else np.ones(grid.shape)
            alive = 1 - (1 - d_b) ** (ur * uc) if "b" in f.skip else np.ones(grid.shape)
            t = ln * live * alive
        else:
            live_a = 1 - (1 - d_a) ** ur if "a" in f.skip else 1.0
            live_b = 1 - (1 - d_b) ** uc if "b" in f.skip else 1.0
            t = ln * live_a * live_b
        actual = alg * p if f.gate else t * ur * uc
    attempted = actual if f.pe_skip else t * ur * uc
    cycles = t + np.where(first, mp.fill_cycles, 0)
    actual_i, attempted_i = _round(actual), _round(attempted)
    out = TileCosts(_round(cycles), alg.astype(np.int64), actual_i,
                    0 * actual_i if f.pe_skip else attempted_i - actual_i, alg.astype(np.int64) - attempted_i)
    sent_a = (ln if f.pe_skip else t) * ur  # streamed rows (ws) or K steps (os) that reach the array
    b_sent = np.where(first, ur * uc, 0) if mp.dataflow == "ws" else (t if not f.pe_skip else ln) * uc
    nz = {"a": (ln * ur) * d_a, "b": (np.where(first, ur * uc, 0) if mp.dataflow == "ws" else ln * uc) * d_b}
    out.buf_read = {"a": _round(sent_a), "b": _round(b_sent), "c": 0 * alg}
    out.buf_read_nz = {"a": _round(nz["a"]), "b": _round(nz["b"]), "c": 0 * alg}
    first_col = np.arange(n_cols)[:, None, None] == 0
    first_row = np.arange(n_rows)[None, :, None] == 0
    dense_a = np.where(first_col | (not res["a"]), ln * ur, 0)
    if mp.dataflow == "ws":
        dense_b = np.where(first, ur * uc, 0)
    else:
        dense_b = np.where(first_row | (not res["b"]), ln * uc, 0)
    out.dram_read = {"a": dense_a, "b": dense_b}
    out.dram_read_nz = {"a": _round(dense_a * d_a), "b": _round(dense_b * d_b)}
    if mp.dataflow == "ws":
        kf = n_rows
        last_k = np.arange(kf)[None, :, None] == kf - 1
        spill = not res["c"] and kf > 1
        c_out = np.where(last_k | spill, ln * uc, 0)
        out.dram_write = {"c": c_out, "c_array": ln * uc}
        if spill:
            back = np.where(np.arange(kf)[None, :, None] > 0, ln * uc, 0)
            out.dram_read["c"] = out.dram_read_nz["c"] = back
    else:
        c_out = np.where(last, ur * uc, 0)
        out.dram_write = {"c": c_out, "c_array": c_out}
    for name in ("buf_read", "buf_read_nz", "dram_read", "dram_read_nz", "dram_write"):
        setattr(out, name, {k: np.asarray(v, dtype=np.int64) for k, v in getattr(out, name).items()})
    return _flat(out)
