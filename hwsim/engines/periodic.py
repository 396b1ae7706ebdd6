"""Periodic stretches of a tile stream: runs of one tile and repeated blocks of tiles.

A dense pass's tiles repeat: the same fold's tiles in every column fold, the same tile along a
stream (``A×71, B, A×71, B, …``). A schedule over a stretch that repeats a block of tiles
becomes periodic once its state does, so the scheduler solves a few blocks and shifts the rest
(:meth:`hwsim.engines.analytic.Scheduler`). This module only finds the stretches, from the run
lengths of the (compute, write-back, next DMA) triples, with array operations and a loop over the
stretches found (not over tiles).
"""

from __future__ import annotations

import numpy as np

MAX_BLOCK_RUNS = 4  # a block is at most this many runs of identical tiles


def segments(c: np.ndarray, w: np.ndarray, dn: np.ndarray, *, min_tiles: int,
             min_repeats: int) -> list[tuple[int, int, int]]:
    """Cut tiles ``0..n`` into consecutive segments ``(start, end, period)``: ``period`` tiles
    repeated over the segment (``1``: a run of one tile), or ``0`` for tiles without such
    structure. A periodic segment covers at least ``min_tiles`` tiles and, unless it is a single
    run, ``min_repeats`` whole blocks. All inputs are ``(n,)`` integer arrays."""
    n = len(c)
    if n < min_tiles:
        return [(0, n, 0)] if n else []
    change = np.concatenate(([True], (c[1:] != c[:-1]) | (w[1:] != w[:-1]) | (dn[1:] != dn[:-1])))
    starts = np.flatnonzero(change)
    lens = np.diff(np.concatenate((starts, [n])))
    runs = len(starts)
    if runs * 2 > n and not (lens >= min_tiles).any() and not _lag_repeats(c, w, dn, min_tiles):
        return [(0, n, 0)]  # mostly distinct tiles: nothing repeats
    # a run's symbol: its tile and its length; a block of q runs repeats where symbols do at lag q
    sym = _symbols((c[starts], w[starts], dn[starts], lens))
    tile_at = np.concatenate((starts, [n]))  # first tile of each run (and the end)
    best_end = np.where(lens >= min_tiles, np.arange(runs) + 1, -1)  # in runs: a long run alone
    best_q = np.where(lens >= min_tiles, 1, 0)
    for q in range(2, MAX_BLOCK_RUNS + 1):
        if runs <= q:
            break
        eq = sym[:-q] == sym[q:]
        # same[j]: how many symbols from j on equal the one q later (consecutively)
        idx = np.arange(len(eq))
        last_false = np.minimum.accumulate(np.where(eq, len(eq), idx)[::-1])[::-1]
        same = last_false - idx
        reps = (np.concatenate((same, np.zeros(q, np.int64))) + q) // q  # whole blocks of q runs from j
        end = np.arange(runs) + reps * q  # in runs
        tiles = tile_at[np.minimum(end, runs)] - tile_at[:runs]
        ok = (reps >= min_repeats) & (tiles >= min_tiles) & (end > best_end)
        best_end = np.where(ok, end, best_end)
        best_q = np.where(ok, q, best_q)
    out: list[tuple[int, int, int]] = []
    cand = np.flatnonzero(best_q > 0)
    j, plain = 0, 0  # next run to place; first tile not yet in a segment
    while True:
        k = np.searchsorted(cand, j)
        if k == len(cand):
            break
        j = int(cand[k])
        q, e = int(best_q[j]), int(best_end[j])
        a, b = int(tile_at[j]), int(tile_at[e])
        if plain < a:
            out.append((plain, a, 0))
        out.append((a, b, 1 if q == 1 else int(tile_at[j + q] - tile_at[j])))
        plain, j = b, e
    if plain < n:
        out.append((plain, n, 0))
    return out


def _symbols(columns: tuple[np.ndarray, ...]) -> np.ndarray:
    """One int64 code per row of the columns (equal codes iff equal rows), column by column: the
    codes so far times the next column's distinct values plus its code, re-numbered (below the
    row count, so the product stays in int64). Several 1-D sorts, 5-10× faster than
    ``np.unique(..., axis=0)`` on the stacked rows."""
    code = np.zeros(len(columns[0]), np.int64)
    for col in columns:
        _, inv = np.unique(col, return_inverse=True)
        inv = inv.reshape(-1).astype(np.int64)
        _, code = np.unique(code * (int(inv.max(initial=0)) + 1) + inv, return_inverse=True)
        code = code.reshape(-1).astype(np.int64)
    return code


def _lag_repeats(c: np.ndarray, w: np.ndarray, dn: np.ndarray, min_tiles: int) -> bool:
    """Whether ``min_tiles`` consecutive tiles each equal the tile 2..MAX_BLOCK_RUNS places
    later: the cheap sign of a repeated block of short runs (a dense pass's folds of two stream
    chunks: ``A, B, A, B, …``) in a stream of mostly distinct runs, worth the full analysis."""
    for lag in range(2, MAX_BLOCK_RUNS + 1):
        same = dn[lag:] == dn[:-lag]  # the DMA-in first: it differs most often in a sparse stream
        if np.count_nonzero(same) < min_tiles or _longest(same) < min_tiles:
            continue
        same &= (c[lag:] == c[:-lag]) & (w[lag:] == w[:-lag])
        if _longest(same) >= min_tiles:
            return True
    return False


def _longest(x: np.ndarray) -> int:
    """The longest run of True in the bool array ``x``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], x, [False]))))  # starts and ends of the runs
    return int((edges[1::2] - edges[::2]).max(initial=0))
