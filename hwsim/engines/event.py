"""Event-driven timing with simpy (simpy decides when): one process per hardware engine.

DMA-in, compute and write-back are processes; double buffering is two slots per side: a DMA-in
waits until the compute of the tile two back has freed its input slot, a compute until the
write-back two back has freed its output slot. A channel shared by DMA-in and write-back is a
resource serving one transfer at a time at full bandwidth. Back-pressure and bandwidth stalls
emerge; there is one event per tile per engine (plus one per shared-channel request).
"""

from __future__ import annotations

import numpy as np
import simpy

from .analytic import Schedule


def run(compute: np.ndarray, dma: np.ndarray, wb: np.ndarray, *, slots: int = 2, shared: bool = False,
        contention: bool = True) -> Schedule:
    """Schedule tiles by simulation; the same contract as :func:`hwsim.engines.analytic.run`."""
    c_l, d_l, w_l = (np.asarray(v, dtype=np.int64).tolist() for v in (compute, dma, wb))
    n = len(c_l)
    env = simpy.Environment()
    channel = simpy.Resource(env, capacity=1) if (shared and contention) else None
    loaded = [env.event() for _ in range(n)]
    computed = [env.event() for _ in range(n)]
    written = [env.event() for _ in range(n)]
    d_end, c_end, w_end = [0] * n, [0] * n, [0] * n

    def transfer(duration: int):
        if channel is None:
            if duration:
                yield env.timeout(duration)
            return
        with channel.request() as req:
            yield req
            if duration:
                yield env.timeout(duration)

    def dma_in():
        for i in range(n):
            if contention and i >= slots:
                yield computed[i - slots]  # its input slot is free again
            yield from transfer(d_l[i])
            d_end[i] = env.now
            loaded[i].succeed()

    def compute_engine():
        for i in range(n):
            yield loaded[i]
            if contention and i >= slots:
                yield written[i - slots]  # its output slot is free again
            if c_l[i]:
                yield env.timeout(c_l[i])
            c_end[i] = env.now
            computed[i].succeed()

    def write_back():
        for i in range(n):
            yield computed[i]
            yield from transfer(w_l[i])
            w_end[i] = env.now
            written[i].succeed()

    for proc in (dma_in, compute_engine, write_back):
        env.process(proc())
    env.run()
    return Schedule(np.array(d_end, np.int64), np.array(c_end, np.int64), np.array(w_end, np.int64))


class Scheduler:
    """Chunk-fed front of :func:`run`: collects the tiles' cycles and simulates them at ``finish``."""

    def __init__(self, *, slots: int = 2, shared: bool = False) -> None:
        self.slots, self.shared = slots, shared
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.tiles = 0

    def feed(self, compute: np.ndarray, dma: np.ndarray, wb: np.ndarray) -> None:
        part = tuple(np.asarray(v, dtype=np.int64).reshape(-1) for v in (compute, dma, wb))
        self._parts.append(part)
        self.tiles += len(part[0])

    def finish(self) -> Schedule:
        if not self._parts:
            return run(*(np.zeros(0, np.int64) for _ in range(3)), slots=self.slots, shared=self.shared)
        c, d, w = (np.concatenate(p) for p in zip(*self._parts, strict=True))
        self._parts = []
        return run(c, d, w, slots=self.slots, shared=self.shared)
