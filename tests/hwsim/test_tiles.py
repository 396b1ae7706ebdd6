"""Vectorized tile costs equal the scalar reference exactly; hand-computable cases."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.npu.mapping import Mapping
from hwsim.npu.tiles import Features, tile_costs

from .scalar_tiles import reference

FEATURES = {
    "dense": Features(),
    "gate": Features(gate=True),
    "skip_a": Features(skip=frozenset({"a"})),
    "skip_b_gate": Features(gate=True, skip=frozenset({"b"})),
    "skip_ab": Features(gate=True, skip=frozenset({"a", "b"})),
    "pe_skip": Features(pe_skip=True),
}


def vectorized(a, b, need, mp, f):
    t = tile_costs(a, b, need, mp, f)
    cols = [t.compute_cycles, t.algorithmic, t.actual, t.gated, t.skipped, t.buf_read["a"], t.buf_read["b"],
            t.buf_read_nz["a"], t.buf_read_nz["b"]]
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize("feature", sorted(FEATURES))
@pytest.mark.parametrize("seed", range(6))
def test_tile_costs_equal_scalar_reference(df, feature, seed):
    rng = np.random.default_rng(seed * 100 + sorted(FEATURES).index(feature))
    m, k, n = (int(v) for v in rng.integers(1, 14, 3))
    rows, cols = (int(v) for v in rng.integers(1, 6, 2))
    stream = {"ws": m, "os": k, "is": n}[df]
    chunk = int(rng.integers(1, stream + 1))
    a = rng.random((m, k)) < rng.uniform(0.05, 0.9)
    b = rng.random((k, n)) < rng.uniform(0.05, 0.9)
    a[rng.integers(0, m)] = False  # an all-zero row, to exercise vector skipping
    need = rng.random((m, n)) < 0.6 if df == "os" else None
    mp = Mapping(df, rows, cols, m, k, n, chunk)
    f = FEATURES[feature]
    if feature == "dense":
        a_in, b_in = None, None
        ref = reference(np.ones((m, k), bool), np.ones((k, n), bool), None, df, rows, cols, chunk, False,
                        frozenset(), False, mp.fill_cycles)
    else:
        a_in, b_in = a, b
        ref = reference(a, b, need if f.pe_skip else None, df, rows, cols, chunk, f.gate, f.skip,
                        f.pe_skip, mp.fill_cycles)
    got = vectorized(a_in, b_in, need if f.pe_skip else None, mp, f)
    np.testing.assert_array_equal(got, ref)
    assert (got[:, 1] == got[:, 2] + got[:, 3] + got[:, 4]).all()  # algorithmic = actual + gated + skipped


# -- hand-computable cases ---------------------------------------------------------------------------

def test_gating_saves_energy_and_no_cycles():
    a = np.zeros((8, 4), bool)
    a[::2] = True  # every other row dense, the rest zero
    b = np.ones((4, 4), bool)
    mp = Mapping("ws", 4, 4, 8, 4, 4, 8)
    plain = tile_costs(a, b, None, mp, Features())
    gated = tile_costs(a, b, None, mp, Features(gate=True))
    assert gated.compute_cycles.sum() == plain.compute_cycles.sum() == 2 * 4 + 4 + 8 - 2  # one fold
    assert gated.actual.sum() == 4 * 4 * 4 and gated.gated.sum() == 4 * 4 * 4  # 4 live rows × K × N


def test_skipping_saves_cycles_and_energy():
    a = np.zeros((8, 4), bool)
    a[::2] = True
    b = np.ones((4, 4), bool)
    mp = Mapping("ws", 4, 4, 8, 4, 4, 8)
    skip = tile_costs(a, b, None, mp, Features(gate=True, skip=frozenset({"a"})))
    assert skip.compute_cycles.sum() == 2 * 4 + 4 + 4 - 2  # the 4 zero rows are not streamed
    assert skip.actual.sum() == 64 and skip.gated.sum() == 0 and skip.skipped.sum() == 64


def test_one_dense_pe_row_costs_what_the_dense_row_costs():
    m = k = n = 8
    a = np.zeros((m, k), bool)
    a[3] = True  # one dense row of outputs' inputs; the other rows are empty
    b = np.ones((k, n), bool)
    mp = Mapping("os", 8, 8, m, k, n, k)
    sparse = tile_costs(a, b, None, mp, Features(pe_skip=True))
    dense = tile_costs(None, None, None, mp, Features())
    assert sparse.compute_cycles.sum() == dense.compute_cycles.sum() == 8 + 8 + 8 - 2
    assert sparse.actual.sum() == k * n  # but only that row's MACs are performed


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("partial_rows", [3, 400])
def test_os_pe_skip_over_several_slabs_equals_scalar_reference(partial_rows, order, monkeypatch):
    """Per-PE skipping in os over many slabs of per-PE work (small slabs here: 24 rows), each
    cast in several parts (10 rows), with A and B in either memory order, with a few rows that have
    unneeded outputs (the row-wise zeroing) and with many (the whole-slab zeroing)."""
    from hwsim.npu import pework

    monkeypatch.setattr(pework, "SLAB_BYTES", 1024)
    monkeypatch.setattr(pework, "SLAB_MIN_ROWS", 16)
    monkeypatch.setattr(pework, "CAST_BYTES", 200)
    monkeypatch.setattr(pework, "CAST_MIN_ROWS", 10)
    rng = np.random.default_rng(partial_rows)
    m, k, n, rows, cols, chunk = 700, 11, 9, 4, 3, 5
    a = rng.random((m, k)) < 0.5
    b = rng.random((k, n)) < 0.6
    need = np.ones((m, n), bool)
    hit = rng.choice(m, partial_rows, replace=False)
    need[hit] = rng.random((partial_rows, n)) < 0.5
    mp = Mapping("os", rows, cols, m, k, n, chunk)
    f = FEATURES["pe_skip"]
    ref = reference(a, b, need, "os", rows, cols, chunk, f.gate, f.skip, f.pe_skip, mp.fill_cycles)
    a_in, b_in = (np.asfortranarray(a), np.asfortranarray(b)) if order == "F" else (a, b)
    np.testing.assert_array_equal(vectorized(a_in, b_in, need, mp, f), ref)
    np.testing.assert_array_equal(vectorized(a_in.astype(np.float32), b_in, need, mp, f), ref)  # no cast


def test_zero_unneeded_equals_the_product():
    from hwsim.npu.pework import _zero_unneeded

    rng = np.random.default_rng(0)
    for partial in (0, 5, 60):
        work = rng.integers(0, 40, (64, 13)).astype(np.float32)
        need = np.ones(work.shape, bool)
        need[rng.choice(64, partial, replace=False)] = False
        expected = work * need
        view = np.concatenate([work, np.ones((64, 1), np.float32)], 1)[:, :13]  # a strided view, as used
        _zero_unneeded(view, need)
        np.testing.assert_array_equal(view, expected)


def test_row_and_column_blocks_equal_a_loop_over_blocks():
    from hwsim.npu.pework import _col_blocks, _row_blocks

    rng = np.random.default_rng(1)
    for rows, cols, size in [(32, 48, 16), (30, 45, 16), (7, 5, 3), (1, 9, 4), (9, 1, 4)]:
        x = rng.integers(0, 100, (rows, cols)).astype(np.float32)
        starts_r, starts_c = range(0, rows, size), range(0, cols, size)
        for op, fn in ((np.maximum, np.max), (np.add, np.sum)):
            want_r = np.array([fn(x[i : i + size], axis=0) for i in starts_r])
            got_r = np.empty(want_r.shape, np.float32)
            _row_blocks(x, size, op, np.float32, got_r)
            np.testing.assert_array_equal(got_r, want_r)
            want_c = np.stack([fn(x[:, j : j + size], axis=1) for j in starts_c], axis=1)
            np.testing.assert_array_equal(_col_blocks(x, size, op), want_c)


def test_scratch_buffers_are_reused_up_to_the_kept_size(monkeypatch):
    """The per-thread buffers of the per-PE work: the same memory for a shape that fits the
    previous one, a fresh array (not kept) above SCRATCH_KEEP_BYTES."""
    from hwsim.npu import pework

    monkeypatch.setattr(pework, "SCRATCH_KEEP_BYTES", 4096)
    small = pework._buffer("test", (10, 20))
    again = pework._buffer("test", (20, 10), "F")
    assert again.shape == (20, 10) and again.flags.f_contiguous and np.shares_memory(small, again)
    big = pework._buffer("test", (40, 40))  # 6,400 bytes: not kept
    assert not np.shares_memory(big, pework._buffer("test", (40, 40)))
    assert np.shares_memory(small, pework._buffer("test", (5, 5)))
