"""Analytic timing: closed form without contention, a tight integer loop with it.

Tiles flow DMA-in → compute → write-back. Without contention (unlimited buffer slots, dedicated
channels) ``t_i = max(ready_i, t_{i−1}) + c_i`` is prefix sums and a running maximum
(:func:`stage`). With two buffer slots per side and, optionally, one channel shared by DMA-in and
write-back, a loop over plain integers applies the event engine's rules one tile at a time
(a DMA-in waits for a free input slot, a compute for its data and a free output slot, a
write-back for its compute; a shared channel serves the earlier request first): about 0.5 µs
per tile. (A vectorized fixed point of the stage equations was tried: exact, but slower.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Schedule:
    """When each tile's stages end, in cycles."""

    dma_end: np.ndarray
    compute_end: np.ndarray
    wb_end: np.ndarray

    @property
    def total_cycles(self) -> int:
        if len(self.wb_end) == 0:
            return 0
        return int(max(self.wb_end[-1], self.compute_end[-1]))


def stage(ready: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """End times of a serial stage: ``end_i = max(ready_i, end_{i−1}) + duration_i``."""
    before = np.cumsum(duration) - duration  # work queued ahead of tile i
    return np.maximum.accumulate(ready - before) + before + duration


def run(compute: np.ndarray, dma: np.ndarray, wb: np.ndarray, *, slots: int = 2, shared: bool = False,
        contention: bool = True) -> Schedule:
    """Schedule tiles; all inputs are ``(n_tiles,)`` integer cycle counts."""
    compute, dma, wb = (np.asarray(v, dtype=np.int64) for v in (compute, dma, wb))
    if not contention:
        dma_end = np.cumsum(dma)
        compute_end = stage(dma_end, compute)
        return Schedule(dma_end, compute_end, stage(compute_end, wb))
    return _loop(compute, dma, wb, slots, shared)


def _loop(compute: np.ndarray, dma: np.ndarray, wb: np.ndarray, slots: int, shared: bool) -> Schedule:
    """One tile at a time, the event engine's rules; a shared channel serves the earlier request."""
    n = len(compute)
    c_l, d_l, w_l = compute.tolist(), dma.tolist(), wb.tolist()
    d_end, c_end, w_end = [0] * n, [0] * n, [0] * n
    read_free = write_free = 0
    prev_c = prev_w = 0
    # DMA-in of tile 0
    if n:
        d_end[0] = d_l[0]
        read_free = d_end[0]
        if shared:
            write_free = read_free
    for i in range(n):
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
    return Schedule(np.array(d_end, np.int64), np.array(c_end, np.int64), np.array(w_end, np.int64))
