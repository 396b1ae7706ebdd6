"""The mapper's shortcuts give what the plain computation gives: the candidate tiles against a
brute-force walk over every tile, residency over distinct tiles against one row per candidate,
and the leading candidates against a full sort."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import archs
from hwsim.npu.loopnest import ROLES, ConvShape, divisors, nest_costs, residency, tie_rank
from hwsim.npu.mapper import KEEP_ALL_TILES, ORDERS, _candidates, _pairs, _ranked

TWIN = Path(__file__).resolve().parents[1] / "data" / "zigzag" / "systolic_32x32_hwsim.yaml"
ONE = {f"{lv}:{op}": 1.0 for lv in ("ifmap_sram", "filter_sram", "ofmap_sram", "dram") for op in "abc"}


def test_candidates_are_the_fitting_tiles_that_cannot_grow():
    """3×3 conv, batch 4, 64→64 channels, 28×28 outputs on three 64 KiB SRAMs (1 byte per element):
    every tile (divisors of B, K, C, OY, OX) whose input window ``B·C·(OY+2)·(OX+2)``, filter
    ``K·C·9`` and output ``B·K·OY·OX`` fit, less those still fitting one divisor larger in some
    dimension, in itertools.product order."""
    arch = archs.load(TWIN)
    shape = ConvShape(4, 64, 64, 28, 28, 3, 3)
    cap = 65536
    divs = [list(divisors(d)) for d in shape.dims]

    def fits(t: tuple[int, ...]) -> bool:
        b, k, c, oy, ox = t
        return b * c * (oy + 2) * (ox + 2) <= cap and k * c * 9 <= cap and b * k * oy * ox <= cap

    fitting = [t for t in itertools.product(*divs) if fits(t)]
    assert len(fitting) > KEEP_ALL_TILES  # the pruned case

    def grows(t: tuple[int, ...]) -> bool:
        for d in range(5):
            i = divs[d].index(t[d])
            if i + 1 < len(divs[d]) and fits((*t[:d], divs[d][i + 1], *t[d + 1:])):
                return True
        return False

    expected = [t for t in fitting if not grows(t)]
    got = [tuple(int(x) for x in row) for row in _candidates(shape, "forward", arch, ONE)]
    assert got == expected


@settings(max_examples=30, deadline=None)
@given(dims=st.tuples(*[st.sampled_from([1, 2, 3, 4, 6, 8, 12, 28, 56])] * 5), f=st.sampled_from([1, 3, 7]),
       s=st.sampled_from([1, 2, 3]), box=st.booleans(), seed=st.integers(0, 2**16))
def test_residency_over_distinct_tiles_is_residency_per_candidate(dims, f, s, box, seed):
    """``residency(tiles, orders, tile_index)`` (the mapper's tile-major pairs) equals
    ``residency(tiles[tile_index], orders)``, array for array, and so do ``nest_costs``'s counts
    at random residency levels."""
    shape = ConvShape(*dims, f, f, s, s, box=box)
    rng = np.random.default_rng(seed)
    n_tiles = int(rng.integers(1, 12))
    tiles = np.array([[rng.choice(divisors(d)) for d in dims] for _ in range(n_tiles)], np.int64)
    ti, pi = _pairs(shape, tiles)  # the mapper's pairs, then any tile under any order
    ti = np.concatenate([ti, rng.integers(0, n_tiles, 50)])
    orders = ORDERS[np.concatenate([pi, rng.integers(0, len(ORDERS), 50)])]
    shared, plain = residency(shape, tiles, orders, ti), residency(shape, tiles[ti], orders)
    for tensor in ("I", "W", "O"):
        for a, b in zip(shared[tensor], plain[tensor], strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    levels = {op: rng.integers(0, 6, len(ti)) for op in "abc"}
    for pass_ in ROLES:
        got = nest_costs(shape, pass_, tiles, orders, 8, 8, "ws", levels, tile_index=ti)
        want = nest_costs(shape, pass_, tiles[ti], orders, 8, 8, "ws", levels)
        assert got.keys() == want.keys()
        assert all(got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]) for k in got)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 600), groups=st.integers(1, 40), seed=st.integers(0, 2**16),
       near=st.booleans())
def test_leading_candidates_are_the_full_sorts_first(n, groups, seed, near):
    """The first RUNNERS_UP + 1 by (tie rank, DRAM bytes, index) from the smallest values alone
    are the full lexsort's, with many exact ties and (``near``) values within the tie tolerance."""
    rng = np.random.default_rng(seed)
    obj = 1e6 * (1 + rng.integers(0, groups, n) * 1e-3)
    if near:
        obj *= 1 + rng.integers(0, 3, n) * 1e-10
    dram = rng.integers(0, 3, n).astype(np.float64)
    full = np.lexsort((np.arange(n), dram, tie_rank(obj)))
    assert np.array_equal(_ranked(obj, dram, 8), full[:8])
    assert np.array_equal(_ranked(obj, dram), full)
