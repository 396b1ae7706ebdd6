"""Event-driven timing with simpy (simpy decides when): one process per hardware engine.

DMA-in, compute and write-back are processes; a channel is a resource serving one transfer at a
time at full bandwidth (DMA-in and write-back share it when ``shared``); double buffering is two
slots per side, so back-pressure and bandwidth stalls emerge. One event per tile per engine.
"""

from __future__ import annotations

import numpy as np
import simpy

from .engine_analytic import Schedule


def run(compute: np.ndarray, dma: np.ndarray, wb: np.ndarray, *, slots: int = 2, shared: bool = False,
        contention: bool = True) -> Schedule:
    """Schedule tiles by simulation; the same contract as :func:`hwsim.engine_analytic.run`."""
    compute, dma, wb = (np.asarray(v, dtype=np.int64) for v in (compute, dma, wb))
    n = len(compute)
    env = simpy.Environment()
    big = max(n, 1) + 1
    in_slots = simpy.Container(env, capacity=big, init=slots if contention else big)
    out_slots = simpy.Container(env, capacity=big, init=slots if contention else big)
    read_ch = simpy.Resource(env, capacity=1)
    write_ch = read_ch if (shared and contention) else simpy.Resource(env, capacity=1)
    loaded = [env.event() for _ in range(n)]
    computed = [env.event() for _ in range(n)]
    dma_end, c_end, w_end = (np.zeros(n, np.int64) for _ in range(3))

    def dma_in():
        for i in range(n):
            yield in_slots.get(1)
            with read_ch.request() as req:
                yield req
                yield env.timeout(int(dma[i]))
            dma_end[i] = env.now
            loaded[i].succeed()

    def compute_engine():
        for i in range(n):
            yield loaded[i]
            yield out_slots.get(1)
            yield env.timeout(int(compute[i]))
            c_end[i] = env.now
            yield in_slots.put(1)
            computed[i].succeed()

    def write_back():
        for i in range(n):
            yield computed[i]
            with write_ch.request() as req:
                yield req
                yield env.timeout(int(wb[i]))
            w_end[i] = env.now
            yield out_slots.put(1)

    for proc in (dma_in, compute_engine, write_back):
        env.process(proc())
    env.run()
    return Schedule(dma_end, c_end, w_end)
