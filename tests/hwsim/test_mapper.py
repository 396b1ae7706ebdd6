"""The mapper and its loop nest: hand cases, a slow scalar reference, buffer occupancy."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archs
from archs.components import RepresentationFormat, SparseFeatures
from hwsim.errors import MappingError
from hwsim.npu.loopnest import DIMS, RELEVANT, ROLES, ConvShape
from hwsim.npu.mapper import _CACHE, NestMapping, evaluate, search

TWIN = Path(__file__).resolve().parents[1] / "data" / "zigzag" / "systolic_32x32_hwsim.yaml"
ONE = {"a": 1.0, "b": 1.0, "c": 1.0}


@pytest.fixture(scope="module")
def twin() -> archs.Architecture:
    return archs.load(TWIN)


def with_capacity(arch: archs.Architecture, **caps: int) -> archs.Architecture:
    mems = tuple(replace(m, capacity_bytes=caps.get(m.name, m.capacity_bytes)) for m in arch.memories)
    return replace(arch, memories=mems)


def dram(res, op: str, direction: str = "read") -> float:
    return sum(v for (lv, o, _k, d), v in res.bytes.items() if lv == "dram" and o == op and d == direction)


def test_input_that_fits_is_read_once(twin):
    """3×3 conv, 16×16 output, 32 channels: the 18×18×32 input (10 KiB) fits its SRAM."""
    shape = ConvShape(1, 64, 32, 16, 16, 3, 3)
    res = search(shape, "forward", twin, ONE)
    assert dram(res, "a") == 18 * 18 * 32
    assert dram(res, "b") == 64 * 32 * 9
    assert dram(res, "c", "write") == 64 * 16 * 16


def test_filter_slice_stays_across_output_tiles(twin):
    """Outputs (56·56·64 = 196 KiB) stream through a 64 KiB SRAM; the 18 KiB filter stays: read once."""
    shape = ConvShape(1, 64, 32, 56, 56, 3, 3)
    res = search(shape, "forward", twin, ONE, objective="dram")
    assert dram(res, "b") == 64 * 32 * 9
    assert dram(res, "c", "write") == 64 * 56 * 56  # no partial sum leaves the chip


def test_halo_counted_per_tile(twin):
    """A given mapping that cuts a 3×3 layer into two row tiles (the 400 B input does not fit a
    300 B buffer; a 240 B row tile does): the buffer's input slice slides along the OY loop, so
    the second tile loads only its 4 new rows (the input once); with ``slide=False`` (ZigZag's
    convention) the two-row halo is fetched twice. The buffer holds a whole 6-row window either way."""
    shape = ConvShape(1, 8, 4, 8, 8, 3, 3)
    given = NestMapping((1, 8, 4, 4, 8), ("OY", "B", "K", "C", "OX"))
    arch = with_capacity(twin, ifmap_sram=300)
    res = evaluate(shape, "forward", arch, given, ONE)
    assert dram(res, "a") == 4 * (6 + 4) * 10  # 6 input rows of 10 columns, then 4 new ones
    assert res.notation == "B1 K8 C4 OY4 OX8 | OY2~"
    whole = evaluate(shape, "forward", arch, replace(given, slide=False), ONE)
    assert dram(whole, "a") == 2 * 4 * (4 + 2) * 10  # each 4-row tile reads 6 input rows of 10 columns
    assert whole.notation == "B1 K8 C4 OY4 OX8 | OY2"
    assert res.occupancy == whole.occupancy == {"ifmap_sram": 240, "filter_sram": 288, "ofmap_sram": 256}


def test_compressed_dram_format_moves_data_plus_metadata(twin):
    """zvc at DRAM for the input: non-zeros × 1 B + 1 bit per element, read once."""
    arch = replace(twin, sparse=SparseFeatures(formats=(RepresentationFormat("dram", "a", "zvc", 1),)))
    shape = ConvShape(1, 16, 8, 8, 8, 3, 3)
    res = search(shape, "forward", arch, ONE, {"a": 0.25, "b": 1.0, "c": 1.0})
    n = 8 * 10 * 10
    assert res.bytes[("dram", "a", "data", "read")] == pytest.approx(0.25 * n)
    assert res.bytes[("dram", "a", "metadata", "read")] == pytest.approx(n / 8)
    dense = search(shape, "forward", twin, ONE, {"a": 0.25, "b": 1.0, "c": 1.0})
    assert dense.bytes[("dram", "a", "data", "read")] == n  # no format: dense bytes, density or not


def test_compressed_operand_fits_where_dense_does_not(twin):
    """The input is bitmap-compressed at DRAM on both machines; on one its SRAM holds it
    compressed too. 4× sparse, it fits that 32 KiB SRAM (0.25 + 1/8 B per element: 21600 B)
    where its dense form (57600 B) does not: the mapper keeps it whole and every tensor crosses
    the DRAM interface once; the other machine (the 16 KiB output SRAM cannot hold all 50176
    outputs) gets there only by sliding its input windows: with every window whole it must
    re-fetch halos or spill partial sums."""
    shape = ConvShape(1, 64, 64, 28, 28, 3, 3)  # input 30·30·64 = 57600 elements
    small = with_capacity(twin, ifmap_sram=32768, ofmap_sram=16384)
    at_dram = RepresentationFormat("dram", "a", "bitmap", 1)
    dense_buf = replace(small, sparse=SparseFeatures(formats=(at_dram,)))
    in_sram = replace(at_dram, level="ifmap_sram")
    sparse_buf = replace(small, sparse=SparseFeatures(formats=(at_dram, in_sram)))
    dens = {"a": 0.25, "b": 1.0, "c": 1.0}
    dense_res = search(shape, "forward", dense_buf, ONE, dens)
    sparse_res = search(shape, "forward", sparse_buf, ONE, dens)
    assert sparse_res.occupancy["ifmap_sram"] <= 32768 < 57600
    assert sparse_res.dram_bytes == pytest.approx(0.375 * 57600 + 64 * 64 * 9 + 64 * 28 * 28)
    # the dense input's buffer holds row windows only: it moves as little by sliding them along
    # OY (each tile loads its new rows), and more when every window is fetched whole
    assert dense_res.dram_bytes == sparse_res.dram_bytes and "~" in dense_res.notation
    assert evaluate(shape, "forward", dense_buf, replace(dense_res.mapping, slide=False), ONE,
                    dens).dram_bytes > sparse_res.dram_bytes
    assert dense_res.occupancy["ifmap_sram"] <= 32768


def test_mapping_that_does_not_fit_is_refused(twin):
    with pytest.raises(MappingError, match="over a buffer"):
        evaluate(ConvShape(1, 64, 64, 56, 56, 3, 3), "forward", twin, NestMapping((1, 64, 64, 56, 56)), ONE)
    with pytest.raises(MappingError, match="does not divide"):
        evaluate(ConvShape(1, 64, 64, 56, 56, 3, 3), "forward", twin, NestMapping((1, 64, 64, 5, 56)), ONE)


def test_search_is_deterministic_and_cached(twin):
    shape = ConvShape(2, 48, 24, 12, 12, 3, 3)
    a = search(shape, "backward_weight", twin, ONE, objective="edp")
    b = search(shape, "backward_weight", twin, ONE, objective="edp")
    assert a is b  # the cache
    _CACHE.clear()
    c = search(shape, "backward_weight", twin, ONE, objective="edp")
    assert c is not a and (c.notation, c.energy_pj, c.bytes) == (a.notation, a.energy_pj, a.bytes)


def scalar_traffic(shape: ConvShape, pass_: str, tile: tuple[int, ...], order: tuple[str, ...],
                   levels: dict[str, int], slide: bool = True) -> dict[str, int]:
    """Slow reference: walk the DRAM loops one iteration at a time; a tensor's buffer slice is
    identified by the indices of its relevant loops outside its residency level; each change of
    that slice loads it (elements counted by listing the slice's input rows and columns). With
    ``slide``, a read input slice whose innermost turning loop outside it is ``OY`` or ``OX`` keeps
    what the next window shares with it when only that loop has stepped: it loads the rows and
    columns of the new window that the old one does not have."""
    trips = {d: size // t for d, size, t in zip(DIMS, shape.dims, tile, strict=True)}
    tile_of = dict(zip(DIMS, tile, strict=True))
    out = {}
    for op, tensor in ROLES[pass_].items():
        r = levels[op]
        rel = dict(zip(DIMS, RELEVANT[tensor], strict=True))
        sweep = {d: tile_of[d] * (trips[d] if order.index(d) >= r else 1) for d in DIMS}

        def window(d: str, i: int, s: int, f: int, sweep: dict = sweep, r: int = r) -> set[int]:
            first = i * sweep[d] if order.index(d) < r else 0  # input rows (or columns) of step i
            read = {(first + o) * s + k for o in range(sweep[d]) for k in range(f)}
            return set(range(min(read), max(read) + 1)) if shape.box else read  # a bounding box
        size = {"I": sweep["B"] * sweep["C"] * len(window("OY", 0, shape.sy, shape.fy))
                * len(window("OX", 0, shape.sx, shape.fx)),
                "W": sweep["K"] * sweep["C"] * shape.fy * shape.fx,
                "O": sweep["B"] * sweep["K"] * sweep["OY"] * sweep["OX"]}[tensor]
        outside = [d for d in order[:r] if trips[d] > 1]
        slides = slide and tensor == "I" and op != "c" and bool(outside) and outside[-1] in ("OY", "OX")
        last, moved, prev, before = None, 0, {}, (set(), set())
        for idx in itertools.product(*(range(trips[d]) for d in order)):
            at = dict(zip(order, idx, strict=True))
            key = tuple(i for d, i, p in zip(order, idx, range(5), strict=True) if rel[d] and p < r)
            if key == last:
                continue
            now = (window("OY", at["OY"], shape.sy, shape.fy), window("OX", at["OX"], shape.sx, shape.fx))
            stepped = last is not None and slides and all(
                at[d] == prev[d] + (d == outside[-1]) for d in DIMS if rel[d] and order.index(d) < r)
            if stepped:  # only the sliding loop moved on by one: keep the shared rows and columns
                kept = len(now[0] & before[0]) * len(now[1] & before[1])
                moved += size - sweep["B"] * sweep["C"] * kept
            else:
                moved += size
            last, prev, before = key, at, now
        out[op] = moved * shape.groups
    return out


@settings(max_examples=40, deadline=None)
@given(k=st.sampled_from([4, 8, 12, 32, 48]), c=st.sampled_from([3, 8, 16, 40]), oy=st.integers(1, 12),
       ox=st.integers(1, 12), f=st.sampled_from([1, 3, 5]), s=st.sampled_from([1, 2]),
       b=st.sampled_from([1, 2, 4]),
       caps=st.tuples(*[st.integers(64, 8192)] * 3), pass_=st.sampled_from(list(ROLES)),
       objective=st.sampled_from(["energy", "latency", "edp", "dram"]))
def test_search_never_exceeds_a_buffer_and_matches_the_scalar_walk(twin, k, c, oy, ox, f, s, b, caps, pass_,
                                                                    objective):
    arch = with_capacity(twin, ifmap_sram=caps[0], filter_sram=caps[1], ofmap_sram=caps[2])
    shape = ConvShape(b, k, c, oy, ox, f, f, s, s)
    try:
        res = search(shape, pass_, arch, ONE, objective=objective)
    except MappingError:
        need = {"I": c * f * f, "W": c * f * f, "O": 1}
        assert any(need[ROLES[pass_][op]] > cap for op, cap in zip("abc", caps, strict=True))
        return
    for name, cap in zip(("ifmap_sram", "filter_sram", "ofmap_sram"), caps, strict=True):
        assert res.occupancy[name] <= cap
    ref = scalar_traffic(shape, pass_, res.mapping.tile, res.mapping.order, res.levels)
    assert (dram(res, "a"), dram(res, "b"), dram(res, "c", "write")) == (ref["a"], ref["b"], ref["c"])


def test_scalar_walk_agrees_with_closed_form_on_all_levels(twin):
    """Every residency level, every order, awkward shapes (a 1×1 stride-2 one with its input as
    the rows read and as their bounding box): closed form == walk."""
    from hwsim.npu.loopnest import nest_costs
    pairs = list(itertools.product([[1, 3, 2, 2, 2], [2, 2, 4, 3, 1]],
                                   list(itertools.permutations(range(5)))[::7]))
    tiles = np.array([t for t, _ in pairs], np.int64)
    orders = np.array([o for _, o in pairs], np.int64)
    slid = 0
    shapes = (ConvShape(2, 6, 4, 6, 4, 3, 3, 2, 2), ConvShape(2, 6, 4, 6, 4, 1, 1, 2, 2),
              ConvShape(2, 6, 4, 6, 4, 1, 1, 2, 2, box=True))
    for shape, r, slide in itertools.product(shapes, range(6), (True, False)):
        levels = {op: np.full(len(pairs), r) for op in "abc"}
        c = nest_costs(shape, "forward", tiles, orders, 4, 4, "ws", levels, slide=slide)
        slid += int((c["slide_a"] >= 0).sum())
        for i, (tile, order) in enumerate(pairs):
            ref = scalar_traffic(shape, "forward", tuple(tile), tuple(DIMS[j] for j in order),
                                 {o: r for o in "abc"}, slide)
            got = (c["dram_read_a"][i], c["dram_read_b"][i], c["dram_write_c"][i])
            assert got == (ref["a"], ref["b"], ref["c"])
    assert slid > 0  # the shape's 3×3 stride-2 windows overlap: some slices do slide
