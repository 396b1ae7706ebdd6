"""Event-driven timing with simpy (simpy decides when): one process per hardware engine.

Tiles flow DMA-in → compute → write-back with ``slots`` (S) buffer slots per side: a DMA-in
waits until the compute S tiles back has freed its input slot, a compute for its data, the
previous compute and the write-back S tiles back (its output slot), a write-back for its
compute. Each channel serves one transfer at a time at full bandwidth.

Processes. Own channels: three processes (DMA-in, compute, write-back), each serving its tiles in
order. One channel shared by DMA-in and write-back: two processes, the channel and the compute
array; per step ``i`` the channel serves the next load ``D_{i+1}`` and then the write-back
``W_i`` (the analytic back end's order). The load is requested at ``max(d_i, c_{i+1−S})``, the
write-back at ``c_i``, and a compute ends after its data and after every earlier compute, so the
write-back is never requested before that load (on a tie the load goes first); with S ≤ 2 the
order is first come, first served (``D_{i+2}`` is requested no earlier than ``c_i``), with S ≥ 3
a load may be requested before an earlier tile's write-back yet is served after it. Without
contention (``contention=False``) the slots are unlimited and the channels separate.

A process that starts an operation knows its end (start + duration) and publishes it at once; a
process that needs an end waits on an event while it is not yet published and otherwise sleeps
until the published time. So an operation costs one timeout, plus one wake-up where its input
was not yet decided.

Stretches. Where one engine never waits for the others, many steps are decided at once and
served in one timeout; the ends are computed in array operations (``stretches.py``) and kept
only for the leading steps the exact rules confirm, so by induction over the steps they are the
ends the event-by-event simulation gives. On a shared channel (S ≥ 2) the channel process
decides them at its step boundary ``i`` (the channel free now, ``d_i``, ``c_i`` and everything
earlier decided), assuming

- the channel saturated: ``D_{i+1}, W_i, D_{i+2}, W_{i+1}, …`` back to back (prefix sums) and
  each compute starting with its data; confirmed while ``c_j ≤ d_{j+1}`` (the compute is done
  when the channel reaches its write-back and does not hold the next compute; the load
  ``D_{j+1}`` was requested by the channel's free time, as ``d_j`` and ``c_{j−1}`` ended before
  ``W_{j−1}`` was served, and the output slot of ``j+1`` was freed by ``W_{j+1−S}``, served
  before ``D_{j+1}``); or
- the array compute-bound: the computes back to back and the channel a serial stage over their
  request times (``D_{j+1}`` at ``c_{j+1−S}``, ``W_j`` at ``c_j``); confirmed while
  ``d_{j+1} ≤ c_j`` (the output slot too: ``W_{j+1−S}`` precedes ``D_{j+1}``).

On separate channels the compute process decides them after it took tile ``i``, assuming the
loads, the computes or the write-backs back to back; from the assumed computes the loads and
write-backs are serial stages over their request times (exact given the computes), and a step is
confirmed while ``max(d_j, c_{j−1}, w_{j−S}) + C_j`` equals the assumed ``c_j``. The other
processes skip the tiles a stretch decided and resume after them.

Where an attempt fails the first regime, the others are tried; the step after a stretch is
simulated event by event; after attempts that fail or commit fewer than ``MIN_USEFUL`` steps a
few steps (doubling, up to ``MAX_BACKOFF``) are simulated before the next attempt. Not covered by
stretches, so simulated tile by tile: regimes that alternate every few tiles, a shared channel
with one slot. On the ResNet-18 bench (edge NPU, batch 8, shared DRAM channel) stretches hold
93–98 % of the tiles.
"""

from __future__ import annotations

import numpy as np
import simpy

from . import stretches
from .analytic import Schedule
from .stretches import UNKNOWN

MIN_STRETCH = 64  # steps a stretch attempt looks at first …
MAX_STRETCH = 1 << 15  # … and at most (doubling while whole attempts pass)
MIN_USEFUL = 8  # a stretch shorter than this counts as a failed attempt (back off)
MAX_BACKOFF = 64  # steps simulated one by one after repeated failed attempts, at most


def run(compute: np.ndarray, dma: np.ndarray, wb: np.ndarray, *, slots: int = 2, shared: bool = False,
        contention: bool = True) -> Schedule:
    """Schedule tiles by simulation; the same contract as :func:`hwsim.engines.analytic.run`
    (inputs ``(n_tiles,)`` integer cycles, outputs the end cycle of each tile's stages)."""
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    c, d, w = (np.asarray(v, dtype=np.int64).reshape(-1) for v in (compute, dma, wb))
    if not len(c):
        return Schedule(*(np.zeros(0, np.int64) for _ in range(3)))
    return _Replay(c, d, w, slots, shared and contention, contention).run()


class _Attempts:
    """When to try a stretch, how long and which regime first: spans double while whole
    attempts pass and halve otherwise; after a failed or short attempt a few steps (doubling up
    to ``MAX_BACKOFF``) are simulated one by one; the regime that worked last is tried first."""

    def __init__(self, regimes: tuple[str, ...]) -> None:
        self.regimes, self.first = regimes, 0
        self.span, self.cooldown, self.failures = MIN_STRETCH, 0, 0

    def due(self) -> bool:
        if self.cooldown:
            self.cooldown -= 1
            return False
        return True

    def order(self) -> list[int]:
        r = len(self.regimes)
        return [(self.first + k) % r for k in range(r)]

    def record(self, regime: int, k: int, L: int) -> None:
        self.span = min(2 * self.span, MAX_STRETCH) if k == L else max(MIN_STRETCH, self.span // 2)
        if k:
            self.first = regime
        if k >= MIN_USEFUL:
            self.failures = 0
            # the step after a stretch fails its regime: simulate it, then try the regime again
            self.cooldown = 0 if k == L else 1
        else:
            self.failures += 1
            self.cooldown = min(1 << self.failures, MAX_BACKOFF)


class _Replay:
    """One simulation: the tiles' durations, the ends published so far and the waiting processes."""

    def __init__(self, c: np.ndarray, d: np.ndarray, w: np.ndarray, slots: int, shared: bool,
                 contention: bool) -> None:
        self.env = simpy.Environment()
        self.c_np, self.d_np, self.w_np = c, d, w
        self.C, self.D, self.W = c.tolist(), d.tolist(), w.tolist()
        self.n, self.slots, self.shared, self.contention = len(c), slots, shared, contention
        n = self.n
        self.d_end, self.c_end, self.w_end = [UNKNOWN] * n, [UNKNOWN] * n, [UNKNOWN] * n
        self.waiters: list[tuple[list[int], int, simpy.Event]] = []  # (ends, index, event)
        regimes = stretches.SHARED_REGIMES if shared else stretches.OWN_REGIMES
        self.stretched = dict.fromkeys(regimes, 0)  # steps served in stretches, per regime
        self.attempts = _Attempts(regimes)

    def run(self) -> Schedule:
        env = self.env
        env.process(self._compute())
        if self.shared:
            env.process(self._channel())
        else:
            env.process(self._dma_in())
            env.process(self._write_back())
        env.run()
        # every list is filled in tile order, so a last end still undecided means a process stalled
        if UNKNOWN in (self.d_end[-1], self.c_end[-1], self.w_end[-1]):
            raise RuntimeError("event engine: the processes stopped before the last tile (a bug)")
        return Schedule(*(np.array(v, np.int64) for v in (self.d_end, self.c_end, self.w_end)))

    # -- publishing and waiting ----------------------------------------------------------------

    def _publish(self, ends: list[int], i: int, t: int) -> None:
        ends[i] = t
        if self.waiters:
            self._wake()

    def _wake(self) -> None:
        keep = []
        for ends, i, ev in self.waiters:
            if ends[i] == UNKNOWN:
                keep.append((ends, i, ev))
            else:
                ev.succeed()
        self.waiters = keep

    def _decided(self, ends: list[int], i: int) -> simpy.Event:
        """An event that fires when ``ends[i]`` is published (it is not yet)."""
        ev = self.env.event()
        self.waiters.append((ends, i, ev))
        return ev

    # -- processes -----------------------------------------------------------------------------

    def _compute(self):
        env, C, c_end, d_end, w_end = self.env, self.C, self.c_end, self.d_end, self.w_end
        s, contention, own = self.slots, self.contention, not self.shared
        i = 0
        while i < self.n:
            if c_end[i] != UNKNOWN:  # decided by a stretch
                i += 1
                continue
            while d_end[i] == UNKNOWN:
                yield self._decided(d_end, i)
            ready = d_end[i]
            if i and c_end[i - 1] > ready:
                ready = c_end[i - 1]
            if contention and i >= s:
                while w_end[i - s] == UNKNOWN:
                    yield self._decided(w_end, i - s)
                if w_end[i - s] > ready:
                    ready = w_end[i - s]
            if c_end[i] != UNKNOWN:  # a stretch decided it while this process waited
                continue
            end = ready + C[i]
            self._publish(c_end, i, end)
            if own and i < self.n - 1 and self.attempts.due():
                i = self._own_stretch(i)
                end = c_end[i]
            if end > env.now:
                yield env.timeout(end - env.now)
            i += 1

    def _dma_in(self):
        """Own channel: load ``i`` once the load before it is done and its input slot is free."""
        env, D, c_end, d_end = self.env, self.D, self.c_end, self.d_end
        s, contention = self.slots, self.contention
        i = 0
        while i < self.n:
            if d_end[i] != UNKNOWN:  # decided by a stretch
                i += 1
                continue
            start = d_end[i - 1] if i else 0
            if contention and i >= s:
                while c_end[i - s] == UNKNOWN:
                    yield self._decided(c_end, i - s)
                if d_end[i] != UNKNOWN:
                    continue
                start = max(start, c_end[i - s])
            end = start + D[i]
            self._publish(d_end, i, end)
            if end > env.now:
                yield env.timeout(end - env.now)
            i += 1

    def _write_back(self):
        """Own channel: write-back ``i`` once its compute is done and the one before it."""
        env, W, c_end, w_end = self.env, self.W, self.c_end, self.w_end
        i = 0
        while i < self.n:
            if w_end[i] != UNKNOWN:  # decided by a stretch
                i += 1
                continue
            while c_end[i] == UNKNOWN:
                yield self._decided(c_end, i)
            if w_end[i] != UNKNOWN:
                continue
            end = max(c_end[i], w_end[i - 1] if i else 0) + W[i]
            self._publish(w_end, i, end)
            if end > env.now:
                yield env.timeout(end - env.now)
            i += 1

    def _channel(self):
        """Shared channel: the first load, then per step ``i`` the load ``D_{i+1}`` and the
        write-back ``W_i`` (stretches of steps in one timeout where one engine saturates)."""
        env, D = self.env, self.D
        c_end, d_end, w_end = self.c_end, self.d_end, self.w_end
        n, s = self.n, self.slots
        self._publish(d_end, 0, D[0])
        if D[0]:
            yield env.timeout(D[0])
        i = 0
        while i < n:
            if s >= 2 and i < n - 1 and c_end[i] != UNKNOWN and self.attempts.due():
                k = self._shared_stretch(i)
                if k:
                    end = w_end[i + k - 1]
                    if end > env.now:
                        yield env.timeout(end - env.now)
                    i += k
                    continue
            if i < n - 1:  # the load is requested when the one before is done and its slot free
                d_req = d_end[i]
                if i + 1 >= s:
                    j = i + 1 - s
                    while c_end[j] == UNKNOWN:
                        yield self._decided(c_end, j)
                    d_req = max(d_req, c_end[j])
                end = max(env.now, d_req) + D[i + 1]
                self._publish(d_end, i + 1, end)
                if end > env.now:
                    yield env.timeout(end - env.now)
            while c_end[i] == UNKNOWN:  # the write-back is requested when its compute ends
                yield self._decided(c_end, i)
            end = max(env.now, c_end[i]) + self.W[i]
            self._publish(w_end, i, end)
            if end > env.now:
                yield env.timeout(end - env.now)
            i += 1

    # -- stretches (hwsim/engines/stretches.py) --------------------------------------------------

    def _shared_stretch(self, i: int) -> int:
        """At the shared channel's step boundary ``i``: commit a stretch; returns its steps."""
        att = self.attempts
        L = min(att.span, self.n - 1 - i)
        for r in att.order():
            regime = att.regimes[r]
            k, dn, wj, cn = stretches.shared(regime, i, L, self.env.now, self.c_np, self.d_np, self.w_np,
                                             self.c_end, self.slots)
            if k:
                break
        att.record(r, k, L)
        if k:
            self.d_end[i + 1 : i + 1 + k] = dn[:k].tolist()
            self.w_end[i : i + k] = wj[:k].tolist()
            self.c_end[i + 1 : i + k] = cn[: k - 1].tolist()
            self.stretched[regime] += k
            if self.waiters:
                self._wake()
        return k

    def _own_stretch(self, i: int) -> int:
        """After the compute process decided ``c_i`` (own channels): commit a stretch of tiles
        ``i+1 …``; returns the last tile whose compute is now decided."""
        att = self.attempts
        L = min(att.span, self.n - 1 - i)
        slots = self.slots if self.contention else None
        for r in att.order():
            regime = att.regimes[r]
            k, m, p, d_tail, w_tail, c_est = stretches.own(regime, i, L, self.c_np, self.d_np, self.w_np,
                                                           self.c_end, self.d_end, self.w_end, slots)
            if k:
                break
        att.record(r, k, L)
        if not k:
            return i
        last = i + k
        self.c_end[i + 1 : last + 1] = c_est[:k].tolist()
        if m < last:
            self.d_end[m + 1 : last + 1] = d_tail[: last - m].tolist()
        self.w_end[p + 1 : last + 1] = w_tail[: last - p].tolist()
        self.stretched[regime] += k
        if self.waiters:
            self._wake()
        return last


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
