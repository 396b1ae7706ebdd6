"""Scalar reference of the contention schedule: the analytic back end's per-tile loop as it was
before the vectorized solver (commit 761d4b4), kept verbatim as the property tests' oracle."""

from __future__ import annotations

import numpy as np

from hwsim.engines.analytic import Schedule


def reference_schedule(compute, dma, wb, slots: int = 2, shared: bool = False) -> Schedule:
    return _loop(*(np.asarray(v, dtype=np.int64) for v in (compute, dma, wb)), slots, shared)


def _loop(compute: np.ndarray, dma: np.ndarray, wb: np.ndarray, slots: int, shared: bool) -> Schedule:
    """One tile at a time, the event engine's rules; a shared channel serves the earlier request.

    Runs of identical tiles are skipped exactly: the update from one tile to the next commutes
    with shifting every time by the same amount, so once the whole state (this tile's ends, the
    next load, the slot history, the channels) has advanced by one period ``P`` for ``slots + 1``
    steps in a row, every further identical tile advances it by ``P`` again.
    """
    n = len(compute)
    c_l, d_l, w_l = compute.tolist(), dma.tolist(), wb.tolist()
    d_end, c_end, w_end = [0] * n, [0] * n, [0] * n
    rf_hist, wf_hist = [0] * n, [0] * n  # channel free times after each tile
    run_end = _run_ends(c_l, d_l, w_l)
    read_free = write_free = 0
    prev_c = prev_w = 0
    if n:
        d_end[0] = d_l[0]
        read_free = d_end[0]
        if shared:
            write_free = read_free
    i = 0
    while i < n:
        out_slot = w_end[i - slots] if i >= slots else 0
        ce = d_end[i] if d_end[i] > prev_c else prev_c
        if out_slot > ce:
            ce = out_slot
        ce += c_l[i]
        c_end[i] = prev_c = ce
        wb_first = False
        if i + 1 < n:
            slot = c_end[i + 1 - slots] if i + 1 >= slots else 0
            d_req = d_end[i] if d_end[i] > slot else slot
            wb_first = shared and ce < d_req
        if not wb_first and i + 1 < n:
            start = d_req if d_req > read_free else read_free
            d_end[i + 1] = read_free = start + d_l[i + 1]
            if shared:
                write_free = read_free
        start = ce if ce > write_free else write_free
        if prev_w > start:
            start = prev_w
        w_end[i] = prev_w = start + w_l[i]
        write_free = prev_w
        if shared:
            read_free = write_free
        if wb_first:
            start = d_req if d_req > read_free else read_free
            d_end[i + 1] = read_free = start + d_l[i + 1]
            if shared:
                write_free = read_free
        rf_hist[i], wf_hist[i] = read_free, write_free
        last = run_end[i] - 2  # the last tile whose step uses only this run's inputs
        if last - i > 2 and _steady(i, slots, c_end, w_end, d_end, rf_hist, wf_hist, run_end):
            p, count = c_end[i] - c_end[i - 1], last - i
            for seq, base in ((c_end, i), (w_end, i), (rf_hist, i), (wf_hist, i), (d_end, i + 1)):
                seq[base + 1 : base + 1 + count] = _arith(seq[base], p, count)
            i = last
            prev_c, prev_w = c_end[i], w_end[i]
            read_free, write_free = rf_hist[i], wf_hist[i]
        i += 1
    return Schedule(np.array(d_end, np.int64), np.array(c_end, np.int64), np.array(w_end, np.int64))


def _arith(start: int, step: int, count: int) -> list[int] | range:
    """``start + step, start + 2·step, …`` (``count`` values)."""
    return [start] * count if step == 0 else range(start + step, start + step * (count + 1), step)


def _run_ends(c: list[int], d: list[int], w: list[int]) -> list[int]:
    """For each tile, the end (exclusive) of the run of identical tiles it belongs to."""
    n = len(c)
    if n == 0:
        return []
    t = np.array([c, d, w])
    ends = np.append(np.flatnonzero((t[:, 1:] != t[:, :-1]).any(axis=0)) + 1, n)
    return ends[np.searchsorted(ends, np.arange(n), side="right")].tolist()


def _steady(i: int, slots: int, c_end: list[int], w_end: list[int], d_end: list[int],
            rf: list[int], wf: list[int], run_end: list[int]) -> bool:
    """Whether the state after tile ``i`` is the state after ``i − 1`` shifted by one period."""
    back = slots + 2
    if i < back or run_end[i - back] != run_end[i]:
        return False  # the last steps must all belong to this run
    p = c_end[i] - c_end[i - 1]
    for k in range(slots + 1):
        j = i - k
        if (c_end[j] - c_end[j - 1] != p or w_end[j] - w_end[j - 1] != p or d_end[j + 1] - d_end[j] != p
                or rf[j] - rf[j - 1] != p or wf[j] - wf[j - 1] != p):
            return False
    return True
