"""The simpy event engine and the analytic back end agree on randomized tile arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.engines import analytic as engine_analytic
from hwsim.engines import event as engine_event


def tiles(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    return tuple(rng.integers(0, rng.integers(1, 100), n) for _ in range(3))


@pytest.mark.parametrize("seed", range(40))
def test_engines_agree_exactly_without_contention(seed):
    c, d, w = tiles(seed)
    a = engine_analytic.run(c, d, w, contention=False)
    e = engine_event.run(c, d, w, contention=False)
    np.testing.assert_array_equal(a.dma_end, e.dma_end)
    np.testing.assert_array_equal(a.compute_end, e.compute_end)
    np.testing.assert_array_equal(a.wb_end, e.wb_end)
    assert a.total_cycles == e.total_cycles


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seed", range(40))
def test_engines_agree_with_contention(seed, shared):
    """Stated bound: equal. Measured: equal on 600 random arrays with 2 slots (shared or not)."""
    c, d, w = tiles(seed)
    a = engine_analytic.run(c, d, w, shared=shared)
    e = engine_event.run(c, d, w, shared=shared)
    assert a.total_cycles == e.total_cycles
    np.testing.assert_array_equal(a.compute_end, e.compute_end)


def test_closed_form_by_hand():
    # DMA 5, 5; compute 3, 10; write-back 2, 2 → loads end 5, 10; compute 8, 20; wb 10, 22
    s = engine_analytic.run(np.array([3, 10]), np.array([5, 5]), np.array([2, 2]), contention=False)
    assert s.dma_end.tolist() == [5, 10] and s.compute_end.tolist() == [8, 20]
    assert s.wb_end.tolist() == [10, 22]


def test_back_pressure_and_shared_channel_stall():
    n = 6
    c, d, w = np.full(n, 10), np.full(n, 4), np.full(n, 4)
    free = engine_event.run(c, d, w, contention=False).total_cycles
    shared = engine_event.run(c, d, w, shared=True).total_cycles
    assert free == 4 + 6 * 10 + 4  # DMA hidden behind compute
    assert shared == free  # 8 of every 10 cycles of channel: still hidden
    slow = engine_event.run(c, np.full(n, 8), np.full(n, 8), shared=True).total_cycles
    assert slow > engine_event.run(c, np.full(n, 8), np.full(n, 8), contention=False).total_cycles


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seed", range(30))
def test_runs_of_identical_tiles_are_skipped_exactly(seed, shared):
    rng = np.random.default_rng(1000 + seed)
    parts = []
    for _ in range(int(rng.integers(1, 6))):
        parts.append(np.tile(rng.integers(0, 60, (1, 3)), (int(rng.integers(1, 60)), 1)))  # a run
        parts.append(rng.integers(0, 60, (int(rng.integers(0, 3)), 3)))  # irregular tiles between runs
    t = np.concatenate(parts)
    a = engine_analytic.run(t[:, 0], t[:, 1], t[:, 2], shared=shared)
    e = engine_event.run(t[:, 0], t[:, 1], t[:, 2], shared=shared)
    for got, want in ((a.dma_end, e.dma_end), (a.compute_end, e.compute_end), (a.wb_end, e.wb_end)):
        np.testing.assert_array_equal(got, want)


# --- the vectorized analytic schedule against the scalar loop it replaced (tests/hwsim/reference_schedule.py)

def _regime_tiles(rng, n: int) -> np.ndarray:
    """(n, 3) compute/DMA/write-back cycles mixing regimes: compute-bound, DMA-bound, balanced,
    transfer-free stretches and runs of identical tiles."""
    parts, left = [], n
    while left > 0:
        size = min(left, int(rng.integers(1, 400)))
        kind = rng.integers(0, 5)
        if kind in (0, 1):  # compute-bound, DMA-bound
            slow, fast = rng.integers(50, 100, size), rng.integers(0, 40, size)
            part = np.stack([slow, fast, rng.integers(0, 20, size)] if kind == 0
                            else [fast, slow, rng.integers(0, 50, size)], 1)
        elif kind == 2:
            part = rng.integers(0, 100, (size, 3))
        elif kind == 3:
            part = np.stack([rng.integers(0, 30, size), np.zeros(size, int), np.zeros(size, int)], 1)
        else:
            part = np.tile(rng.integers(0, 60, (1, 3)), (size, 1))
        parts.append(part)
        left -= size
    return np.concatenate(parts)


def _assert_same(got, want):
    for g, w in ((got.dma_end, want.dma_end), (got.compute_end, want.compute_end), (got.wb_end, want.wb_end)):
        np.testing.assert_array_equal(g, w)
    assert got.total_cycles == want.total_cycles


@pytest.mark.parametrize("slots", [1, 2, 3])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_vectorized_schedule_equals_the_scalar_loop(seed, shared, slots, monkeypatch):
    """Exact on mixed-regime arrays, fed whole or in random chunks, with windows small enough
    that every path runs (window growth and shrinking, the scalar stretches, transfer-free runs)."""
    from tests.hwsim.reference_schedule import reference_schedule

    monkeypatch.setattr(engine_analytic, "MIN_WINDOW", 16)
    monkeypatch.setattr(engine_analytic, "MAX_WINDOW", 512)
    monkeypatch.setattr(engine_analytic, "LOOP_STRETCH", 64)
    calls = {"sweep": 0, "loop": 0, "free": 0}

    def counted(orig, key):
        def wrapper(*a, **k):
            calls[key] += 1
            return orig(*a, **k)
        return wrapper

    for name, key in (("_sweep", "sweep"), ("_loop", "loop"), ("_transfer_free", "free")):
        monkeypatch.setattr(engine_analytic, name, counted(getattr(engine_analytic, name), key))
    rng = np.random.default_rng(seed)
    t = _regime_tiles(rng, int(rng.integers(1, 4000)))
    want = reference_schedule(t[:, 0], t[:, 1], t[:, 2], slots, shared)
    _assert_same(engine_analytic.run(t[:, 0], t[:, 1], t[:, 2], slots=slots, shared=shared), want)
    s = engine_analytic.Scheduler(slots=slots, shared=shared, keep=True)
    for part in np.split(t, np.sort(rng.integers(0, len(t), int(rng.integers(0, 8))))):
        s.feed(part[:, 0], part[:, 1], part[:, 2])
    _assert_same(s.finish(), want)
    totals = engine_analytic.Scheduler(slots=slots, shared=shared)  # totals only, in chunks of 100
    for i in range(0, len(t), 100):
        totals.feed(t[i : i + 100, 0], t[i : i + 100, 1], t[i : i + 100, 2])
    assert totals.finish().total_cycles == want.total_cycles and totals.tiles == len(t)
    if len(t) > 1000:
        assert calls["sweep"] and calls["free"]


def test_every_solver_path_runs_on_long_arrays():
    """The balanced regime hands stretches to the loop; the others are solved by sweeps (the loop
    takes only the last tile, scheduled alone at ``finish``)."""
    steps = {"loop": 0}
    orig = engine_analytic._loop

    def counting(*a, **k):
        steps["loop"] += len(a[0])
        return orig(*a, **k)

    rng = np.random.default_rng(7)
    n = 20_000
    engine_analytic._loop = counting
    try:
        engine_analytic.run(rng.integers(50, 100, n), rng.integers(0, 40, n), rng.integers(0, 10, n))
        assert steps["loop"] == 1  # compute-bound: sweeps converge
        engine_analytic.run(rng.integers(0, 100, n), rng.integers(0, 100, n), rng.integers(0, 100, n))
        assert steps["loop"] > 1000  # balanced: the critical path keeps switching slot constraints
    finally:
        engine_analytic._loop = orig


@given(st.data())
@settings(max_examples=150, deadline=None, derandomize=True)
def test_vectorized_schedule_property(data):
    """Hypothesis: any small integer tiles, any slot count, shared or not, any chunking."""
    from tests.hwsim.reference_schedule import reference_schedule

    n = data.draw(st.integers(0, 60))
    cyc = st.lists(st.integers(0, 50), min_size=n, max_size=n)
    c, d, w = (np.array(data.draw(cyc), dtype=np.int64) for _ in range(3))
    slots, shared = data.draw(st.integers(1, 3)), data.draw(st.booleans())
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=4)))
    want = reference_schedule(c, d, w, slots, shared)
    s = engine_analytic.Scheduler(slots=slots, shared=shared, keep=True)
    for idx in np.split(np.arange(n), cuts):
        s.feed(c[idx], d[idx], w[idx])
    _assert_same(s.finish(), want)


def test_event_back_end_simulates_the_replay_and_not_its_dense_baseline(tmp_path, monkeypatch):
    """With ``backend="event"`` simpy schedules the replay's tiles once; the dense baseline (which
    the two back ends give identically) goes through the analytic scheduler. Same report."""
    import archs
    from hwsim.simulate import simulate
    from traces.synth import conv, write_synthetic

    path = write_synthetic([conv("c", 16, 10, 10, 24, 3, padding=1)], tmp_path / "t", batch=2,
                           density={"x": 0.5, "w": 0.6, "dy": 0.4})
    arch = archs.replace(archs.PRESETS["edge-npu"], {"memories.dram.bandwidth_bytes_per_s": 5e8})
    scheduled = []
    orig = engine_event.run

    def counting(c, d, w, **kw):
        scheduled.append(len(c))
        return orig(c, d, w, **kw)

    monkeypatch.setattr(engine_event, "run", counting)
    passes = ["forward", "backward_data", "backward_weight"]
    ev = simulate(path, arch, passes=passes, backend="event", workers=1).to_frame()
    an = simulate(path, arch, passes=passes, backend="analytic", workers=1).to_frame()
    assert sum(scheduled) == ev["tiles"].sum() and len(scheduled) == len(ev)  # one schedule per pass
    assert (ev["stall_cycles"] > 0).any()  # contention: the back ends had something to agree on
    pd.testing.assert_frame_equal(ev.drop(columns="backend", errors="ignore"),
                                  an.drop(columns="backend", errors="ignore"))


# --- the event engine (one process per engine, stretches where one engine saturates) against the scalar loop

def _event_counted(c, d, w, **kw):
    """The event engine's schedule and how many steps it served in stretches, per regime."""
    contention = kw.pop("contention", True)
    slots, shared = kw.pop("slots", 2), kw.pop("shared", False)
    replay = engine_event._Replay(*(np.asarray(v, dtype=np.int64) for v in (c, d, w)), slots,
                                  shared and contention, contention)
    return replay.run(), replay.stretched


def _compute_bound_tiles(rng, n: int) -> np.ndarray:
    """(n, 3) tiles like a replay with ample DRAM bandwidth: noisy computes above the loads and
    write-backs, and now and then a channel-bound stretch."""
    c = rng.integers(1000, 2100, n)
    d = rng.integers(100, 700, n)
    w = np.where(rng.random(n) < 0.3, rng.integers(200, 900, n), 0)
    for start in rng.integers(0, n, 3):  # channel-bound stretches: the array waits for data
        d[start : start + 40] = rng.integers(3000, 5000, len(d[start : start + 40]))
    return np.stack([c, d, w], 1)


def _writeback_bound_tiles(rng, n: int) -> np.ndarray:
    """(n, 3) tiles whose write-backs take longest (separate channels: the write-back channel
    saturates and each compute waits for its output slot)."""
    return np.stack([rng.integers(100, 1500, n), rng.integers(100, 1500, n), rng.integers(1600, 3000, n)], 1)


def _channel_bound_tiles(rng, n: int) -> np.ndarray:
    """(n, 3) tiles like a sparse replay on a shared DRAM channel: noisy loads well above the
    computes, write-backs on some tiles only, and now and then a compute-bound stretch."""
    c = rng.integers(100, 2100, n)
    d = rng.integers(1500, 8000, n)
    w = np.where(rng.random(n) < 0.3, rng.integers(800, 5000, n), 0)
    for start in rng.integers(0, n, 3):  # compute-bound stretches: the channel waits for the array
        c[start : start + 40] = rng.integers(9000, 12000, len(c[start : start + 40]))
    return np.stack([c, d, w], 1)


@pytest.mark.parametrize("slots", [1, 2, 3])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seed", range(10))
def test_event_engine_equals_the_scalar_loop(seed, shared, slots, monkeypatch):
    """Exact (every stage's end of every tile) on mixed-regime and channel-bound arrays, with
    stretch windows small enough that they grow, shrink, fail and back off."""
    from tests.hwsim.reference_schedule import reference_schedule

    monkeypatch.setattr(engine_event, "MIN_STRETCH", 4)
    monkeypatch.setattr(engine_event, "MAX_STRETCH", 64)
    rng = np.random.default_rng(500 + seed)
    for t in (_regime_tiles(rng, int(rng.integers(1, 3000))), _channel_bound_tiles(rng, 2000),
              _compute_bound_tiles(rng, 2000), _writeback_bound_tiles(rng, 500)):
        got, stretched = _event_counted(t[:, 0], t[:, 1], t[:, 2], slots=slots, shared=shared)
        _assert_same(got, reference_schedule(t[:, 0], t[:, 1], t[:, 2], slots, shared))
        if shared and slots == 1:
            assert sum(stretched.values()) == 0  # a shared channel with one slot: tile by tile


# (tiles, shared, the regime expected to serve most steps, the least share of steps it serves);
# measured on seeds 3, 4, 5: 0.981-0.982, 0.956-0.963, 0.936-0.940, 0.993, 0.999
SATURATED = [(_channel_bound_tiles, True, "channel", 0.9), (_compute_bound_tiles, True, "compute", 0.9),
             (_channel_bound_tiles, False, "dma", 0.85), (_compute_bound_tiles, False, "compute", 0.9),
             (_writeback_bound_tiles, False, "write_back", 0.9)]


@pytest.mark.parametrize("make, shared, regime, least", SATURATED)
def test_stretches_cover_a_saturated_stream_exactly(make, shared, regime, least):
    """Where one engine saturates, most steps are served in stretches of that regime, the
    others tile by tile, and the schedule is the scalar loop's."""
    from tests.hwsim.reference_schedule import reference_schedule

    t = make(np.random.default_rng(3), 20_000)
    got, stretched = _event_counted(t[:, 0], t[:, 1], t[:, 2], shared=shared)
    _assert_same(got, reference_schedule(t[:, 0], t[:, 1], t[:, 2], 2, shared))
    assert least * len(t) < stretched[regime] and sum(stretched.values()) < len(t)


def test_event_engine_without_contention_is_the_closed_form():
    rng = np.random.default_rng(11)
    t = _regime_tiles(rng, 3000)
    got, stretched = _event_counted(t[:, 0], t[:, 1], t[:, 2], shared=True, contention=False)
    _assert_same(got, engine_analytic.run(t[:, 0], t[:, 1], t[:, 2], contention=False))
    assert stretched["compute"] > 0  # measured: 2,718 of the 3,000 steps


@given(st.data())
@settings(max_examples=200, deadline=None, derandomize=True)
def test_event_engine_property(data):
    """Hypothesis: any small integer tiles (many ties between request times), any slot count,
    shared or not; tiny stretch windows so stretches start and stop anywhere."""
    from tests.hwsim.reference_schedule import reference_schedule

    n = data.draw(st.integers(1, 60))
    cyc = st.lists(st.integers(0, 30), min_size=n, max_size=n)
    c, d, w = (np.array(data.draw(cyc), dtype=np.int64) for _ in range(3))
    slots, shared = data.draw(st.integers(1, 3)), data.draw(st.booleans())
    old = engine_event.MIN_STRETCH, engine_event.MAX_STRETCH
    engine_event.MIN_STRETCH, engine_event.MAX_STRETCH = 1, data.draw(st.integers(1, 8))
    try:
        _assert_same(engine_event.run(c, d, w, slots=slots, shared=shared),
                     reference_schedule(c, d, w, slots, shared))
    finally:
        engine_event.MIN_STRETCH, engine_event.MAX_STRETCH = old


def _periodic_tiles(rng) -> np.ndarray:
    """Irregular tiles (some with long transfers, so a backlog drains during what follows),
    runs of one tile, and blocks of a few runs repeated many times."""
    parts = []
    for _ in range(int(rng.integers(1, 5))):
        parts.append(rng.integers(0, 400, (int(rng.integers(0, 5)), 3)))
        kind = rng.integers(0, 2)
        if kind == 0:
            parts.append(np.tile(rng.integers(0, 60, (1, 3)), (int(rng.integers(64, 300)), 1)))
        else:
            runs = [np.tile(rng.integers(0, 60, (1, 3)), (int(rng.integers(1, 30)), 1))
                    for _ in range(int(rng.integers(2, 5)))]
            parts.append(np.tile(np.concatenate(runs), (int(rng.integers(4, 40)), 1)))
    return np.concatenate(parts)


def test_periodic_stretches_are_solved_by_their_period_exactly(monkeypatch):
    """Runs of one tile and repeated blocks after irregular tiles: equal to the scalar reference,
    whole or fed in chunks, and both ways a stretch ends are taken (the periodic shift, and the
    plain steps where the state has not become periodic within the tries)."""
    from hwsim.engines.periodic import segments
    from tests.hwsim.reference_schedule import reference_schedule

    taken = {"shift": 0, "plain": 0, "blocks": 0}
    orig = engine_analytic.Scheduler._periodic
    monkeypatch.setattr(engine_analytic, "BLOCK_REPEATS", 4)

    def periodic(self, c, w, dn, period):
        taken["blocks"] += period > 1
        before = len(c)
        calls = {"n": 0}
        solve = self._solve

        def counting(*a):
            calls["n"] += len(a[0])
            return solve(*a)

        self._solve = counting
        try:
            orig(self, c, w, dn, period)
        finally:
            del self._solve
        taken["shift" if calls["n"] < before else "plain"] += 1

    monkeypatch.setattr(engine_analytic.Scheduler, "_periodic", periodic)
    for seed in range(40):
        rng = np.random.default_rng(500 + seed)
        t = _periodic_tiles(rng)
        cover = segments(t[:, 0], t[:, 1], t[:, 2], min_tiles=64, min_repeats=4)
        assert [a for a, *_ in cover] == [0] + [b for _, b, _ in cover[:-1]] and cover[-1][1] == len(t)
        for a, b, period in cover:  # a periodic segment repeats its first block throughout
            if period:
                assert (b - a) % period == 0
                np.testing.assert_array_equal(t[a:b], np.tile(t[a : a + period], ((b - a) // period, 1)))
        for slots in (1, 2, 3):
            for shared in (False, True):
                want = reference_schedule(t[:, 0], t[:, 1], t[:, 2], slots, shared)
                _assert_same(engine_analytic.run(t[:, 0], t[:, 1], t[:, 2], slots=slots, shared=shared), want)
                s = engine_analytic.Scheduler(slots=slots, shared=shared, keep=True)
                for part in np.split(t, np.sort(rng.integers(0, len(t), 3))):
                    s.feed(part[:, 0], part[:, 1], part[:, 2])
                _assert_same(s.finish(), want)
    assert taken["shift"] > 0 and taken["plain"] > 0 and taken["blocks"] > 0


@pytest.mark.parametrize("seed", range(6))
def test_channel_bound_streams_start_from_the_saturated_channel(seed, monkeypatch):
    """A shared channel that loads and writes back for longer than the computes take (a sparse
    os pass): the sweeps start from the saturated-channel estimates, which they confirm in one
    sweep, and the schedule equals the scalar reference; where one compute outlasts the
    channel the estimates are the relaxed ones, and the schedule is still exact."""
    from tests.hwsim.reference_schedule import reference_schedule

    used = []
    orig = engine_analytic._saturated
    monkeypatch.setattr(engine_analytic, "_saturated", lambda *a: used.append(orig(*a)) or used[-1])
    rng = np.random.default_rng(900 + seed)
    n = 3000
    c = rng.integers(100, 400, n)
    d = rng.integers(500, 700, n)
    w = rng.integers(0, 2, n) * rng.integers(400, 600, n)
    if seed % 2:
        c[int(rng.integers(100, n))] = 5000  # the regime breaks once
    sweeps = []
    orig_sweep = engine_analytic._sweep
    monkeypatch.setattr(engine_analytic, "_sweep", lambda *a: sweeps.append(1) or orig_sweep(*a))
    got = engine_analytic.run(c, d, w, slots=2, shared=True)
    _assert_same(got, reference_schedule(c, d, w, 2, True))
    assert used and (used[0] is None) == bool(seed % 2)
    if not seed % 2:
        assert len(sweeps) == 1


def test_run_symbols_are_equal_exactly_for_equal_rows():
    """The column-by-column codes of periodic.py: equal iff the rows are (as np.unique over the
    stacked rows numbers them), on few and on many distinct values, large ones included."""
    from hwsim.engines.periodic import _symbols

    rng = np.random.default_rng(3)
    for n, hi in [(1, 5), (500, 3), (2000, 50), (3000, 2**40)]:
        cols = tuple(rng.integers(0, hi, n) for _ in range(4))
        got = _symbols(cols)
        _, want = np.unique(np.stack(cols, 1), axis=0, return_inverse=True)
        want = want.reshape(-1)
        np.testing.assert_array_equal(got[:, None] == got[None, :], want[:, None] == want[None, :])


@pytest.mark.parametrize("period", [2, 3, 4])
def test_blocks_of_single_tiles_are_found_and_solved_exactly(period):
    """A stream whose runs are all one tile long but repeat in blocks (a dense pass's folds of
    two stream chunks: A, B, A, B, …), after distinct tiles: the repeated part is a periodic
    segment, and the schedule equals the scalar reference."""
    from hwsim.engines.periodic import segments
    from tests.hwsim.reference_schedule import reference_schedule

    rng = np.random.default_rng(period)
    distinct = rng.integers(0, 3000, (50, 3))
    block = rng.integers(0, 3000, (period, 3))
    t = np.concatenate([distinct, np.tile(block, (300 // period, 1))])
    cover = segments(t[:, 0], t[:, 1], t[:, 2], min_tiles=64, min_repeats=4)
    assert any(p == period and b - a >= 290 for a, b, p in cover), cover
    for shared in (False, True):
        want = reference_schedule(t[:, 0], t[:, 1], t[:, 2], 2, shared)
        _assert_same(engine_analytic.run(t[:, 0], t[:, 1], t[:, 2], slots=2, shared=shared), want)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seed", range(10))
def test_event_engine_on_runs_and_repeated_blocks(seed, shared):
    """The analytic back end's periodic inputs (runs and repeated blocks after backlogs): the
    event engine equals the scalar loop there too."""
    from tests.hwsim.reference_schedule import reference_schedule

    t = _periodic_tiles(np.random.default_rng(700 + seed))
    _assert_same(engine_event.run(t[:, 0], t[:, 1], t[:, 2], shared=shared),
                 reference_schedule(t[:, 0], t[:, 1], t[:, 2], 2, shared))
