"""Analytic timing: closed form without contention, a tight integer loop with it.

Tiles flow DMA-in → compute → write-back. Without contention (unlimited buffer slots, dedicated
channels) ``t_i = max(ready_i, t_{i−1}) + c_i`` is prefix sums and a running maximum. With two
buffer slots per side and, optionally, one channel shared by DMA-in and write-back, a loop over
tiles applies the same rules as the event engine, serving the shared channel in request order.
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
    n = len(compute)
    dma_end = np.zeros(n, np.int64)
    c_end = np.zeros(n, np.int64)
    w_end = np.zeros(n, np.int64)
    read_free = write_free = 0  # when each channel is next free (the same one when shared)
    prev_c = 0

    def do_dma(i: int) -> None:
        nonlocal read_free, write_free
        req = max(dma_end[i - 1] if i else 0, c_end[i - slots] if i >= slots else 0)
        start = max(req, read_free)
        dma_end[i] = start + dma[i]
        read_free = dma_end[i]
        if shared:
            write_free = read_free

    def do_wb(i: int) -> None:
        nonlocal read_free, write_free
        start = max(c_end[i], write_free, w_end[i - 1] if i else 0)
        w_end[i] = start + wb[i]
        write_free = w_end[i]
        if shared:
            read_free = write_free

    if n:
        do_dma(0)
    for i in range(n):
        out_slot = w_end[i - slots] if i >= slots else 0
        c_end[i] = max(dma_end[i], prev_c, out_slot) + compute[i]
        prev_c = c_end[i]
        if i + 1 < n:
            dma_req = max(dma_end[i], c_end[i + 1 - slots] if i + 1 >= slots else 0)
            if shared and c_end[i] < dma_req:  # the write-back asked first
                do_wb(i)
                do_dma(i + 1)
                continue
            do_dma(i + 1)
        do_wb(i)
    return Schedule(dma_end, c_end, w_end)
