"""Analytic timing: closed form without contention, vectorized max-plus with it.

Tiles flow DMA-in → compute → write-back. Without contention (unlimited buffer slots, dedicated
channels) ``t_i = max(ready_i, t_{i−1}) + c_i`` is prefix sums and a running maximum
(:func:`stage`). With ``slots`` buffer slots per side and, optionally, one channel shared by
DMA-in and write-back, the event engine's rules hold (a DMA-in waits for a free input slot, a
compute for its data and a free output slot, a write-back for its compute; a shared channel serves
the earlier request first). Step ``i`` ends compute ``c_i``, write-back ``w_i`` and the next
DMA-in ``d_{i+1}``::

    d_{i+1} = max(d_i, c_{i+1−S}) + D_{i+1}        (own channel)
    c_i     = max(d_i, c_{i−1}, w_{i−S}) + C_i
    w_i     = max(c_i, w_{i−1}) + W_i              (own channel)

and on a shared channel ``w_i`` and ``d_{i+1}`` are served in the order of their requests, one
after the other. The DMA-in is requested at ``max(d_i, c_{i+1−S})`` and the write-back at ``c_i``,
which is never earlier (a compute ends after its data and after the computes before it), so the
DMA-in goes first (ties included) and the write-back follows it.

These are solved as a fixed point over whole arrays: given estimates of every ``c``, ``w`` and
``d``, one sweep recomputes each stage with :func:`stage` (the DMA or shared-channel stage from
the old computes, then the compute stage, then the write-back stage). A sweep's value at step
``i`` depends only on estimates at steps ``≤ i``, so (by induction from step 0) a prefix that a
sweep leaves unchanged is exact; it is committed and the window slides on. The first estimates
are the stages without slot limits or, on a shared channel that never idles over the stretch
(loads and write-backs outlast the computes: a sparse pass's usual regime), the channel's
requests back to back, which one sweep then confirms. Windows grow while
sweeps converge and shrink when they do not; where the critical path keeps switching between
the slot constraints (a prefix advancing by only a few steps per sweep) a plain scalar loop
takes a stretch of steps, so the worst case is never slower than a loop. Periodic stretches (a
run of one tile, a block of runs repeated; :mod:`hwsim.engines.periodic`) are solved a block at a
time until the state after a block is the previous one's shifted by a constant, and shifted from
there on (each step is a max and a sum of the state and the same durations, so a shifted state
gives a shifted step). The schedule is exact, equal to the event engine's (property-tested
against it and against a scalar reference).

:class:`Scheduler` takes the tiles in chunks and keeps only the last ``slots`` steps between
them, so a replay can time any number of tiles in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .periodic import segments

MIN_WINDOW = 1024  # steps per sweep, at least …
MAX_WINDOW = 1 << 18  # … and at most (memory per sweep: ~30 int64 arrays of this length)
SLOW_ADVANCE = 32  # a sweep that commits fewer steps than this hands a stretch to the loop
LOOP_STRETCH = 2048  # steps the scalar loop takes then
RUN_JUMP = 64  # periodic stretches of at least this many tiles are solved by their period …
BLOCK_REPEATS = 4  # … when they repeat a block of several tiles at least this many times


@dataclass(frozen=True)
class Schedule:
    """When each tile's stages end, in cycles (arrays ``(n_tiles,)``; empty when not kept)."""

    dma_end: np.ndarray
    compute_end: np.ndarray
    wb_end: np.ndarray
    end_cycles: int | None = None  # the last compute or write-back end (when the arrays are not kept)

    @property
    def total_cycles(self) -> int:
        if self.end_cycles is not None:
            return self.end_cycles
        if len(self.wb_end) == 0:
            return 0
        return int(max(self.wb_end[-1], self.compute_end[-1]))


def stage(ready: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """End times of a serial stage: ``end_i = max(ready_i, end_{i−1}) + duration_i``."""
    done = np.cumsum(duration)  # work queued up to and including tile i
    out = ready - done
    out += duration  # ready_i minus the work queued ahead of tile i
    np.maximum.accumulate(out, out=out)
    out += done
    return out


def run(compute: np.ndarray, dma: np.ndarray, wb: np.ndarray, *, slots: int = 2, shared: bool = False,
        contention: bool = True) -> Schedule:
    """Schedule tiles; all inputs are ``(n_tiles,)`` integer cycle counts."""
    compute, dma, wb = (np.asarray(v, dtype=np.int64) for v in (compute, dma, wb))
    if not contention:
        dma_end = np.cumsum(dma)
        compute_end = stage(dma_end, compute)
        return Schedule(dma_end, compute_end, stage(compute_end, wb))
    s = Scheduler(slots=slots, shared=shared, keep=True)
    s.feed(compute, dma, wb)
    return s.finish()


class Scheduler:
    """The contention schedule of a stream of tiles fed in chunks (``feed``), exact across chunks.

    Between chunks it keeps the last tile (its step needs the next tile's DMA time) and the
    state of the last ``slots`` steps; with ``keep`` it also keeps every end time (for tests and
    small runs), otherwise only the total.
    """

    def __init__(self, *, slots: int = 2, shared: bool = False, keep: bool = False) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots, self.shared, self.keep = slots, shared, keep
        self._pending: tuple[int, int, int] | None = None  # (C, D, W) of the last tile fed
        self._d = 0  # end of the pending tile's DMA-in
        self._c_hist = np.zeros(slots, np.int64)  # c of the last `slots` finished steps, oldest first
        self._w_hist = np.zeros(slots, np.int64)
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._end = 0
        self._capture: list | None = None  # commits of the block being solved (periodic stretches)
        self.tiles = 0

    def feed(self, compute: np.ndarray, dma: np.ndarray, wb: np.ndarray) -> None:
        """Add tiles (``(n,)`` integer cycles each); all but the last are scheduled now."""
        c, d, w = (np.asarray(v, dtype=np.int64).reshape(-1) for v in (compute, dma, wb))
        if not len(c):
            return
        if self._pending is None:  # the very first tile: its DMA starts at 0
            self._d = int(d[0])
        else:
            pc, pd, pw = self._pending
            c, d, w = np.concatenate(([pc], c)), np.concatenate(([pd], d)), np.concatenate(([pw], w))
        self.tiles += len(c) - (self._pending is not None)
        self._pending = (int(c[-1]), int(d[-1]), int(w[-1]))
        if len(c) > 1:
            self._steps(c[:-1], w[:-1], d[1:])

    def finish(self) -> Schedule:
        """Schedule the last tile and return the schedule (arrays only with ``keep``)."""
        if self._pending is not None:
            pc, _, pw = self._pending
            # a zero-length DMA after the last tile changes nothing: on a shared channel it is
            # served after the write-back or, when requested earlier, at a time the write-back
            # could not have started before either
            self._steps(np.array([pc]), np.array([pw]), np.zeros(1, np.int64))
            self._pending = None
        if not self.keep:
            return Schedule(*(np.zeros(0, np.int64) for _ in range(3)), end_cycles=self._end)
        if not self._parts:
            return Schedule(*(np.zeros(0, np.int64) for _ in range(3)))
        dn, c, w = (np.concatenate(p) for p in zip(*self._parts, strict=True))
        d = np.concatenate(([self._first_d], dn[:-1]))
        return Schedule(d, c, w)

    # -- internals ---------------------------------------------------------------------------

    def _steps(self, c_dur: np.ndarray, w_dur: np.ndarray, dn_dur: np.ndarray) -> None:
        """Solve steps whose durations are given: compute ``C_i``, write-back ``W_i`` and the next
        tile's DMA ``D_{i+1}``; commit them and advance the state."""
        if self.keep and not self._parts:
            self._first_d = self._d
        for a, b, period in segments(c_dur, w_dur, dn_dur, min_tiles=RUN_JUMP, min_repeats=BLOCK_REPEATS):
            if period:
                self._periodic(c_dur[a:b], w_dur[a:b], dn_dur[a:b], period)
            else:
                self._solve(c_dur[a:b], w_dur[a:b], dn_dur[a:b])

    def _periodic(self, c_dur: np.ndarray, w_dur: np.ndarray, dn_dur: np.ndarray, period: int) -> None:
        """Steps that repeat a block of ``period`` steps: blocks one by one until the state after a
        block (the last ``slots`` compute and write-back ends and the next DMA end) is the state
        after the previous block shifted by a constant ``Δ``; then every later block is the last
        one shifted by ``Δ`` again (each step is max and + of the state and its durations, so
        shifting the state shifts the step), and the rest is arithmetic."""
        s, n = self.slots, len(c_dur)
        blocks = n // period
        tries = max(8, -(-(4 * s + 4) // period) + 2)  # a transient of a few steps, or blocks
        prev = None
        for k in range(blocks):
            seg = slice(k * period, (k + 1) * period)
            self._capture = []
            self._solve(c_dur[seg], w_dur[seg], dn_dur[seg])
            got = [np.concatenate(p) for p in zip(*self._capture, strict=True)]
            self._capture = None
            state = np.concatenate((self._c_hist, self._w_hist, [self._d]))
            if prev is not None:
                delta = state - prev
                if (delta == delta[-1]).all() and k + 1 < blocks:
                    shift = delta[-1] * np.arange(1, blocks - k, dtype=np.int64)[:, None]  # (later blocks, 1)
                    self._commit(*((v[None, :] + shift).reshape(-1) for v in got))
                    break
            if k + 1 >= tries:  # not periodic yet: the rest as plain steps
                if (k + 1) * period < n:
                    rest = slice((k + 1) * period, n)
                    self._solve(c_dur[rest], w_dur[rest], dn_dur[rest])
                return
            prev = state

    def _solve(self, c_dur: np.ndarray, w_dur: np.ndarray, dn_dur: np.ndarray) -> None:
        """Steps without long runs: the transfer-free closed form or fixed-point sweeps (a few
        steps, as between runs, by the scalar loop: sweeps cost more per call than it per step)."""
        n = len(c_dur)
        if n < RUN_JUMP:
            self._commit(*_loop(c_dur, w_dur, dn_dur, self._d, self._c_hist, self._w_hist, self.slots,
                                self.shared))
            return
        if (not dn_dur.any() and not w_dur.any() and self._d <= self._c_hist[-1]
                and self._w_hist.max() <= self._c_hist[-1]):
            self._commit(*_transfer_free(c_dur, self._d, self._c_hist, self.shared))
            return
        est = _saturated(c_dur, w_dur, dn_dur, self._d, self._c_hist, self._w_hist) if self.shared else None
        if est is None:
            est = _relaxed(c_dur, w_dur, dn_dur, self._d, self._c_hist, self._w_hist)
        est_c, est_w, est_dn = est
        f, window = 0, MAX_WINDOW
        while f < n:
            g, sweeps = min(n, f + window), 0
            while f < g:
                c0, w0, dn0 = est_c[f:g], est_w[f:g], est_dn[f:g]
                c, w, dn = _sweep(c_dur[f:g], w_dur[f:g], dn_dur[f:g], c0, w0, dn0, self._d, self._c_hist,
                                  self._w_hist, self.slots, self.shared)
                changed = np.flatnonzero((c != c0) | (w != w0) | (dn != dn0))
                k = len(c) if len(changed) == 0 else int(changed[0])
                if k:
                    self._commit(c[:k], w[:k], dn[:k])
                est_c[f:g], est_w[f:g], est_dn[f:g] = c, w, dn
                f, sweeps = f + k, sweeps + 1
                if f < g and sweeps >= 3:  # fresh estimates need two sweeps and a third to confirm
                    if k < SLOW_ADVANCE:
                        break
                    if g - f > 16 * k:  # a sweep's work per committed step is too high: shorten it
                        g = min(g, f + max(MIN_WINDOW, 4 * k))
            if f < g:  # slow region: a stretch of steps by the scalar loop
                g = min(n, f + LOOP_STRETCH)
                self._commit(*_loop(c_dur[f:g], w_dur[f:g], dn_dur[f:g], self._d, self._c_hist,
                                    self._w_hist, self.slots, self.shared))
                f, window = g, MIN_WINDOW
            else:
                window = min(window * 2, MAX_WINDOW) if sweeps <= 3 else max(window // 2, MIN_WINDOW)

    def _commit(self, c: np.ndarray, w: np.ndarray, dn: np.ndarray) -> None:
        s = self.slots
        self._c_hist = np.concatenate((self._c_hist, c))[-s:]
        self._w_hist = np.concatenate((self._w_hist, w))[-s:]
        self._d = int(dn[-1])
        self._end = max(self._end, int(c[-1]), int(w[-1]))
        if self._capture is not None:
            self._capture.append((c, w, dn))
        if self.keep:
            self._parts.append((dn.copy(), c.copy(), w.copy()))


def _transfer_free(c_dur, d0: int, c_hist, shared: bool):
    """Steps without transfer time, from a state whose transfers have caught up with the computes
    (``d_0`` and every recent write-back end by the last compute end): the computes run back to
    back, each write-back ends with its compute, and each DMA-in is requested (and ends) when both
    its slot and the previous DMA-in are free — on a shared channel also after the previous
    write-back, which is always served after it."""
    c = int(c_hist[-1]) + np.cumsum(c_dur)
    cc = np.concatenate((c_hist, c))
    ready = cc[1 : len(c) + 1]  # c_{i+1−S}
    if shared:
        ready = np.maximum(ready, cc[len(c_hist) - 1 : -1])  # c_{i−1}
    return c, c.copy(), np.maximum.accumulate(np.maximum(ready, d0))


def _relaxed(c_dur, w_dur, dn_dur, d0: int, c_hist, w_hist):
    """First estimates: the stages without slot limits, each DMA-in right after the previous one."""
    dn = d0 + np.cumsum(dn_dur)
    d = np.concatenate(([d0], dn[:-1]))
    d[0] = max(d0, int(c_hist[-1]))
    c = stage(d, c_dur)
    ready_w = c.copy()
    ready_w[0] = max(ready_w[0], int(w_hist[-1]))
    return c, stage(ready_w, w_dur), dn


def _saturated(c_dur, w_dur, dn_dur, d0: int, c_hist, w_hist):
    """First estimates on a shared channel that never idles (the channel-bound regime of a sparse
    pass: loads and write-backs outlast the computes): from when it is free, it serves
    ``D_1, W_0, D_2, W_1, …`` back to back, each compute starting with its data. None unless
    every compute then ends before the channel has loaded the next tile (``c_i ≤ d_{i+1}``: the
    regime holds throughout), where the relaxed estimates serve better. Only a first guess: the
    sweeps keep what they confirm."""
    m = len(c_dur)
    seq = np.empty((m, 2), np.int64)
    seq[:, 0] = dn_dur
    seq[:, 1] = w_dur
    ends = np.cumsum(seq.reshape(-1)).reshape(m, 2)
    ends += max(d0, int(w_hist[-1]))
    dn, w = ends[:, 0], ends[:, 1]
    d = np.concatenate(([d0], dn[:-1]))
    d[0] = max(d0, int(c_hist[-1]))
    c = stage(d, c_dur)
    if (c > dn).any():
        return None
    return c, w.copy(), dn.copy()


def _sweep(c_dur, w_dur, dn_dur, c_old, w_old, dn_old, d0: int, c_hist, w_hist, slots: int, shared: bool):
    """One fixed-point sweep over steps ``0..m-1`` from the exact state before step 0."""
    m = len(c_dur)
    cc = np.concatenate((c_hist, c_old))  # c_{i−S} … : index i of step i−S
    ww = np.concatenate((w_hist, w_old))
    c_next_slot = cc[1 : m + 1]  # c_{i+1−S}: the compute that frees the next tile's input slot
    d_old = np.concatenate(([d0], dn_old[:-1]))
    if not shared:
        ready = c_next_slot.copy()
        ready[0] = max(ready[0], d0)
        dn = stage(ready, dn_dur)
        d = np.concatenate(([d0], dn[:-1]))
    else:
        d_req = np.maximum(d_old, c_next_slot)
        wb_first = c_old < d_req
        # the channel's requests in order, two per step: (write-back, DMA-in) or (DMA-in, write-back)
        ready_seq = np.empty((m, 2), np.int64)
        dur_seq = np.empty((m, 2), np.int64)
        ready_seq[:, 0] = np.where(wb_first, c_old, c_next_slot)
        ready_seq[:, 1] = np.where(wb_first, c_next_slot, c_old)
        dur_seq[:, 0] = np.where(wb_first, w_dur, dn_dur)
        dur_seq[:, 1] = np.where(wb_first, dn_dur, w_dur)
        ready_seq[0, 0] = max(ready_seq[0, 0], d0, int(w_hist[-1]))  # the channel is free after both
        end = stage(ready_seq.reshape(-1), dur_seq.reshape(-1)).reshape(m, 2)
        dn = np.where(wb_first, end[:, 1], end[:, 0])
        w_chan = np.where(wb_first, end[:, 0], end[:, 1])
        d = np.concatenate(([d0], dn[:-1]))
    ready_c = np.maximum(d, ww[:m])
    ready_c[0] = max(ready_c[0], int(c_hist[-1]))
    c = stage(ready_c, c_dur)
    if not shared:
        ready_w = c.copy()
        ready_w[0] = max(ready_w[0], int(w_hist[-1]))
        w = stage(ready_w, w_dur)
    else:
        w = w_chan
    return c, w, dn


def _loop(c_dur, w_dur, dn_dur, d0: int, c_hist, w_hist, slots: int, shared: bool):
    """The same steps one at a time (plain integers): for stretches where sweeps converge slowly."""
    if slots == 2:
        return _loop2(c_dur, w_dur, dn_dur, d0, c_hist, w_hist, shared)
    m = len(c_dur)
    cl, wl, dl = c_dur.tolist(), w_dur.tolist(), dn_dur.tolist()
    ch, wh = [int(v) for v in c_hist], [int(v) for v in w_hist]  # grow as steps finish
    c_out, w_out, dn_out = [0] * m, [0] * m, [0] * m
    d = d0
    free = max(d0, wh[-1])  # shared channel: free after the last write-back and this DMA
    for i in range(m):
        ce = max(d, ch[-1], wh[-slots]) + cl[i]
        d_req = max(d, ch[-slots + 1] if slots > 1 else ce)
        if not shared:
            dn = d_req + dl[i]
            we = max(ce, wh[-1]) + wl[i]
        elif ce < d_req:  # the write-back was requested first
            we = max(ce, free) + wl[i]
            dn = max(d_req, we) + dl[i]
            free = dn
        else:
            dn = max(d_req, free) + dl[i]
            we = max(ce, dn) + wl[i]
            free = we
        ch.append(ce)
        wh.append(we)
        c_out[i], w_out[i], dn_out[i], d = ce, we, dn, dn
    return (np.array(c_out, np.int64), np.array(w_out, np.int64), np.array(dn_out, np.int64))


def _loop2(c_dur, w_dur, dn_dur, d0: int, c_hist, w_hist, shared: bool):
    """:func:`_loop` with two slots (the default), its state in local variables: the last compute
    end ``c1`` and the last two write-back ends ``w1``, ``w2``, maxima without calls (0.59 -> 0.19
    µs per step on a balanced sparse stream)."""
    c1, w2, w1 = int(c_hist[-1]), int(w_hist[-2]), int(w_hist[-1])
    c_out, w_out, dn_out = [], [], []
    d = d0
    free = max(d0, w1)  # shared channel: free after the last write-back and this DMA
    for cd, wd, dd in zip(c_dur.tolist(), w_dur.tolist(), dn_dur.tolist(), strict=True):
        # maxima as conditional expressions: builtins.max costs a call per use
        d_req = d if d > c1 else c1
        ce = (d_req if d_req > w2 else w2) + cd
        if not shared:
            dn = d_req + dd
            we = (ce if ce > w1 else w1) + wd
        elif ce < d_req:  # the write-back was requested first
            we = (ce if ce > free else free) + wd
            dn = (d_req if d_req > we else we) + dd
            free = dn
        else:
            dn = (d_req if d_req > free else free) + dd
            we = (ce if ce > dn else dn) + wd
            free = we
        c1, w2, w1, d = ce, w1, we, dn
        c_out.append(ce)
        w_out.append(we)
        dn_out.append(dn)
    return (np.array(c_out, np.int64), np.array(w_out, np.int64), np.array(dn_out, np.int64))
