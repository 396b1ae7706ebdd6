"""Stretches for the event engine: many steps' ends at once where one engine saturates, kept only
as far as the engine's rules confirm them (array operations, no simpy; used by ``event.py``).

Both functions take the durations (``(n_tiles,)`` int64 cycles ``c``, ``d``, ``w`` for compute,
DMA-in and write-back) and the ends decided so far (lists, ``UNKNOWN`` where not yet), assume one
engine never waits for the others over the next ``L`` tiles, compute every end from that, and
return how many leading steps the exact rules confirm with the ends of those steps. By induction
over the steps those ends are the ones the event-by-event simulation gives.
"""

from __future__ import annotations

import numpy as np

from .analytic import stage

UNKNOWN = -1  # an end not yet decided
SHARED_REGIMES = ("channel", "compute")  # the engine assumed to saturate, on a shared channel
OWN_REGIMES = ("dma", "compute", "write_back")  # … on separate channels


def shared(regime: str, i: int, L: int, now: int, c: np.ndarray, d: np.ndarray, w: np.ndarray,
           c_end: list[int], slots: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Steps ``i … i+L−1`` of a channel shared by DMA-in and write-back (``slots`` ≥ 2), from the
    channel's step boundary: the channel free at ``now``, ``d_i``, ``c_i`` and everything earlier
    decided. The channel serves ``D_{i+1}, W_i, D_{i+2}, W_{i+1}, …``.

    ``channel``: back to back (prefix sums), each compute starting with its data; confirmed
    while ``c_j ≤ d_{j+1}``. ``compute``: the computes back to back, the channel a serial stage
    over their request times (``D_{j+1}`` at ``c_{j+1−S}``, ``W_j`` at ``c_j``); confirmed while
    ``d_{j+1} ≤ c_j``. Returns (steps confirmed k, ``d_{j+1}``, ``w_j``, ``c_{j+1}`` for
    ``j = i … i+L−1``; the first k of each are the ends).
    """
    ci = c_end[i]
    dur = np.empty(2 * L, np.int64)  # the channel's order
    dur[0::2] = d[i + 1 : i + 1 + L]
    dur[1::2] = w[i : i + L]
    c_dur = c[i + 1 : i + 1 + L]
    if regime == "channel":
        ends = np.cumsum(dur)
        ends += now
        dn, wj = ends[0::2], ends[1::2]
        cn = dn + c_dur
        cj = np.concatenate(([ci], cn[:-1]))
        ok = cj <= dn  # the compute is done before the channel reaches its write-back
    else:
        cn = np.cumsum(c_dur)
        cn += ci
        cj = np.concatenate(([ci], cn[:-1]))
        c_hist = [c_end[j] if j >= 0 else 0 for j in range(i + 1 - slots, i)]  # c_{i+1−S} … c_{i−1}
        ready = np.empty(2 * L, np.int64)
        ready[0::2] = np.concatenate((np.array(c_hist, np.int64), cj))[:L]  # slot: c_{j+1−S}
        ready[1::2] = cj  # a write-back is requested when its compute ends
        ready[0] = max(ready[0], now)  # the channel is free now (d_i is past)
        ends = stage(ready, dur)
        dn, wj = ends[0::2], ends[1::2]
        ok = dn <= cj  # compute j+1's data is there when compute j ends
    return _leading(ok), dn, wj, cn


def own(regime: str, i: int, L: int, c: np.ndarray, d: np.ndarray, w: np.ndarray, c_end: list[int],
        d_end: list[int], w_end: list[int], slots: int | None) -> tuple[int, int, int, np.ndarray,
                                                                        np.ndarray, np.ndarray]:
    """Tiles ``i+1 … i+L`` on separate DMA-in and write-back channels, from the compute engine's
    step boundary: ``c_0 … c_i`` decided, the loads decided up to some ``m ≥ i`` and the
    write-backs up to some ``p`` (``slots=None``: no contention, unlimited slots).

    Assumed: ``dma`` — the loads back to back and each compute starting with its data;
    ``compute`` — the computes back to back; ``write_back`` — the write-backs back to back and
    each compute starting when its output slot frees. From the assumed computes, the loads and
    write-backs are serial stages over their request times (exact given the computes), and a step
    is confirmed while ``max(d_j, c_{j−1}, w_{j−S}) + C_j`` equals the assumed ``c_j``.
    Returns (steps confirmed k, m, p, loads ``d_{m+1…}``, write-backs ``w_{p+1…}``, computes
    ``c_{i+1…}``); the ends to commit are those up to tile ``i+k``.
    """
    n = len(c)
    m = i
    while m + 1 < n and d_end[m + 1] != UNKNOWN:
        m += 1
    p = i
    while p >= 0 and w_end[p] == UNKNOWN:
        p -= 1
    last = i + L  # the last tile looked at
    s = slots or 0
    c_dur = c[i + 1 : last + 1]
    bw = min(i + 1 - s, p + 1)  # write-backs over tiles bw … last (0 before tile 0)
    w_known = np.concatenate((np.zeros(max(0, -bw), np.int64), np.array(w_end[max(bw, 0) : p + 1], np.int64)))
    if regime == "dma":
        d_guess = np.concatenate((np.array(d_end[i + 1 : m + 1], np.int64),
                                  d_end[m] + np.cumsum(d[m + 1 : last + 1])))[:L]
        c_est = d_guess + c_dur
    elif regime == "compute":
        c_est = c_end[i] + np.cumsum(c_dur)
    else:  # write-back-bound: c_j = w_{j−S} + C_j with the write-backs back to back
        if not slots:
            return 0, m, p, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        w_guess = np.concatenate((w_known, (w_end[p] if p >= 0 else 0) + np.cumsum(w[p + 1 : last + 1])))
        c_est = w_guess[i + 1 - s - bw : last + 1 - s - bw] + c_dur
    # the exact loads and write-backs given the computes: serial stages over their request times
    b = min(m + 1 - s, p + 1, i)  # computes over tiles b … last (0 before tile 0)
    c_all = np.concatenate((np.zeros(max(0, -b), np.int64), np.array(c_end[max(b, 0) : i + 1], np.int64),
                            c_est))
    if m < last:
        ready = c_all[m + 1 - s - b : last + 1 - s - b].copy() if slots else np.zeros(last - m, np.int64)
        ready[0] = max(ready[0], d_end[m])
        d_tail = stage(ready, d[m + 1 : last + 1])  # d_{m+1 … last}
    else:
        d_tail = np.zeros(0, np.int64)
    ready = c_all[p + 1 - b : last + 1 - b].copy()
    ready[0] = max(ready[0], w_end[p] if p >= 0 else 0)
    w_tail = stage(ready, w[p + 1 : last + 1])  # w_{p+1 … last}
    d_j = np.concatenate((np.array(d_end[i + 1 : m + 1], np.int64), d_tail))[:L]  # d_{i+1 … last}
    start = np.maximum(d_j, c_all[i - b : last - b])  # and c_{j−1}
    if slots:
        w_all = np.concatenate((w_known, w_tail))  # w over tiles bw … last
        start = np.maximum(start, w_all[i + 1 - s - bw : last + 1 - s - bw])  # and w_{j−S}
    ok = start + c_dur == c_est
    return _leading(ok), m, p, d_tail, w_tail, c_est


def _leading(ok: np.ndarray) -> int:
    """How many leading entries are true."""
    bad = np.flatnonzero(~ok)
    return len(ok) if len(bad) == 0 else int(bad[0])
