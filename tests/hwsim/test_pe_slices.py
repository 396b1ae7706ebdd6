"""Per-tensor register-file slices (``hwsim.npu.pe_tiles``) against a slow walk of the loop nest.

The walk knows nothing of footprints or load products: it steps through one PE's DRAM loops and
buffer-level loops outside each tensor's residency level, builds the set of elements the tensor's
slice holds at every step from the convolution's geometry, and counts what the register file loads:
the whole slice whenever a DRAM loop turns (a new buffer tile) or the slice changes, only the new
elements where a read slice's sliding loop advances by one inside a sweep (the shift-register model
AccelForge and hwsim count), nothing while it stays the same.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import archs
from hwsim.npu.loopnest import DIMS, RELEVANT, ROLES, ConvShape
from hwsim.npu.mapper import search
from hwsim.npu.pe_tiles import pe_costs, register_files, spatial_of, unrollings

MACHINE = Path(__file__).resolve().parents[1] / "data" / "accelforge" / "held_out_16x16"


UNROLL = MACHINE.parent / "unroll_ox_k" / "pe_array_unroll_hwsim.yaml"  # OX over the rows, K over the columns


@pytest.fixture(scope="module")
def arch() -> archs.Architecture:
    return archs.load(MACHINE / "pe_array_16x16_hwsim.yaml")


def elements(shape: ConvShape, tensor: str, start: dict[str, int], extent: dict[str, int]) -> frozenset:
    """Elements of ``tensor`` that output coordinates ``[start, start + extent)`` per dimension touch."""
    rng = {d: range(start[d], start[d] + extent[d]) for d in DIMS}
    if tensor == "W":
        return frozenset(itertools.product(rng["K"], rng["C"], range(shape.fy), range(shape.fx)))
    if tensor == "O":
        return frozenset(itertools.product(rng["B"], rng["K"], rng["OY"], rng["OX"]))
    rows = {oy * shape.sy + f for oy in rng["OY"] for f in range(shape.fy)}
    cols = {ox * shape.sx + f for ox in rng["OX"] for f in range(shape.fx)}
    return frozenset(itertools.product(rng["B"], rng["C"], rows, cols))


def walk(shape: ConvShape, tensor: str, tile: tuple[int, ...], dram_order: tuple[str, ...],
         per_pe: tuple[int, ...], pe_tile: tuple[int, ...], order: tuple[str, ...], level: int,
         slide: bool) -> tuple[int, int]:
    """(elements loaded into one PE's register file, elements its slice holds) at ``level``."""
    dram_trips = [shape.dims[DIMS.index(d)] // tile[DIMS.index(d)] for d in dram_order]
    glb = [(d, per_pe[DIMS.index(d)] // pe_tile[DIMS.index(d)]) for d in order]
    outer = glb[:level]  # the buffer-level loops outside the slice
    extent = {d: (per_pe if q >= level else pe_tile)[DIMS.index(d)] for q, d in enumerate(order)}
    loaded, prev, prev_idx, size = 0, None, None, 0
    relevant = set(d for d, r in zip(DIMS, RELEVANT[tensor], strict=True) if r)
    for di in itertools.product(*(range(t) for t in dram_trips)):
        for gi in itertools.product(*(range(t) for _, t in outer)):
            start = {d: 0 for d in DIMS}
            for d, i in zip(dram_order, di, strict=True):
                start[d] += i * tile[DIMS.index(d)]
            for (d, _t), i in zip(outer, gi, strict=True):
                start[d] += i * pe_tile[DIMS.index(d)]
            s = elements(shape, tensor, start, extent)
            size = len(s)
            if prev is None or di != prev_idx[0]:
                loaded += len(s)  # a new buffer tile refills the register files
            elif s != prev:
                changed = [q for q, (a, b) in enumerate(zip(gi, prev_idx[1], strict=True))
                           if a != b and outer[q][0] in relevant]  # loops that index the tensor
                innermost_relevant = [q for q, (d, t) in enumerate(outer) if d in relevant and t > 1]
                advance = (slide and changed == [changed[-1]] and changed[-1] == innermost_relevant[-1]
                           and gi[changed[-1]] == prev_idx[1][changed[-1]] + 1)
                loaded += len(s - prev) if advance else len(s)
            prev, prev_idx = s, (di, gi)
    return loaded, size


CASES = [  # (shape, pass, machine): 16 × 16 PEs unroll C and K (forward, ws) by up to 16 each, or OX and K
    (ConvShape(1, 32, 32, 6, 5, 3, 3), "forward", None),
    (ConvShape(2, 32, 16, 4, 6, 3, 3), "forward", None),
    (ConvShape(1, 32, 32, 6, 4, 1, 1, 2, 2), "forward", None),
    (ConvShape(1, 32, 32, 4, 4, 3, 3), "backward_data", None),
    (ConvShape(1, 32, 32, 4, 6, 3, 3), "backward_weight", None),
    (ConvShape(1, 32, 8, 4, 32, 3, 3), "forward", UNROLL),
    (ConvShape(1, 32, 8, 4, 32, 3, 3), "backward_weight", UNROLL),
]


@pytest.mark.parametrize("shape,pass_,machine", CASES)
def test_register_file_slices_load_what_the_walk_loads(arch, shape, pass_, machine):
    arch = archs.load(machine) if machine else arch
    rng = np.random.default_rng(23)
    dataflow = arch.compute.dataflow
    eb = {"a": 1.0, "b": 1.0, "c": arch.compute.precision.psum_bits / 8}
    rfs = register_files(arch)
    cap = next(iter(rfs.values()))[1]
    checked = deeper = 0
    for draw in range(4):  # the whole layer as one buffer tile (the largest per-PE extents), then others
        tile = shape.dims if draw == 0 else tuple(int(rng.choice(
            [t for t in range(1, d + 1) if d % t == 0 and (t > 1 or d == 1)])) for d in shape.dims)
        dram_order = tuple(rng.permutation(DIMS))
        (rd, rfac), (cd, cfac) = spatial = spatial_of(shape, pass_, dataflow, tile, arch.compute.rows,
                                                      arch.compute.cols, unrollings(arch, pass_, dataflow)[0])
        c = pe_costs(shape, pass_, arch, tile, dram_order, eb, dataflow, spatial=spatial)
        per_pe = list(tile)
        per_pe[DIMS.index(rd)] //= rfac
        per_pe[DIMS.index(cd)] //= cfac
        pes = rfac * cfac
        below = np.flatnonzero(np.min([c[f"rf_level_{op}"] for op in "abc"], axis=0) < 5)
        rest = np.setdiff1d(np.arange(len(c["pe_tile"])), below)
        picks = [rng.choice(x, size=min(6, len(x)), replace=False) for x in (below, rest) if len(x)]
        for j in np.concatenate(picks):  # candidates with a slice spanning loops, and others
            pe_tile = tuple(int(x) for x in c["pe_tile"][j])
            order = tuple(DIMS[i] for i in c["order"][j])
            held = 0.0
            for op, tensor in ROLES[pass_].items():
                level = int(c[f"rf_level_{op}"][j])
                deeper += level < 5
                loaded, size = walk(shape, tensor, tile, dram_order, tuple(per_pe), pe_tile, order, level,
                                    slide=op != "c")
                held += size * eb[op]
                key = "rf_drain_c" if op == "c" else f"rf_fill_{op}"
                assert c[key][j] == loaded * pes * shape.groups, (tile, dram_order, pe_tile, order, op, level)
                one_tile, _ = walk(shape, tensor, tile, dram_order, tuple(per_pe), pe_tile, order, 5,
                                   slide=op != "c")
                assert loaded <= one_tile  # a larger slice never loads more than one tile does
            assert c["rf_bytes:rf"][j] == held <= cap
            checked += 1
    assert checked >= 15 and deeper > 0  # some slices span loops (the case the levels add)


def test_a_level_that_saves_nothing_is_not_taken(arch):
    """Each slice takes the innermost level of least traffic: a tensor the buffer-level loops outside
    its tile do not index stays at one tile (5), since a larger slice would load as much."""
    shape = ConvShape(1, 32, 32, 1, 8)  # a GEMM: 8 rows, K = N = 32; per PE 2 × 2 of C × K
    c = pe_costs(shape, "forward", arch, (1, 32, 32, 1, 8), DIMS, {"a": 1.0, "b": 1.0, "c": 4.0}, "ws",
                 np.array([[1, 1, 1, 1, 1]]),
                 np.array([[DIMS.index(d) for d in ("OX", "K", "C", "B", "OY")]]))
    # loops OX8 K2 C2: the output (one element) keeps one tile (C is its only inner loop and does not
    # index it); the weights' 2 × 2 span K and C below OX (level 1); the input's C2 below K (level 2)
    assert {op: int(c[f"rf_level_{op}"][0]) for op in "abc"} == {"a": 2, "b": 1, "c": 5}
    assert c["rf_fill_b"][0] == 32 * 32  # each weight loaded into one register file, once
    assert c["rf_fill_a"][0] == 8 * 2 * 256 // 16 * 16  # per PE 8 rows × 2 channels, all 256 PEs
    assert c["rf_bytes:rf"][0] == 2 * 2 + 2 + 4


def test_search_reports_each_tensors_slice_in_the_notation(arch):
    r = search(ConvShape(1, 768, 768, 1, 128), "forward", arch, {"a": 1.0, "b": 1.0, "c": 1.0})
    assert r.rf_levels["W"] < 5 and "{W}" in r.notation
    assert r.occupancy["rf"] <= arch.memory("rf").capacity_bytes
