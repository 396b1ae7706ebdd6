"""The eyeriss-like preset against Timeloop's published eyeriss_like reference (MobileNet layer 1).

Reference (architecture_parameters.md §6, edge NPU 1; timeloop-accelergy-exercises@2d55108
eyeriss_like/ref_outputs/default_problem/timeloop-mapper.stats.txt): C=3, M=32, 224×224 input,
3×3 filter, stride 2, pad 1, P=Q=112, N=1: 10,838,016 MACs; 59.28 µJ; DRAM 572,528 and GLB
1,913,456 scalar (8-bit) accesses. With `--mapping search` hwsim must land within 10 % of all three.
"""

from __future__ import annotations

import pytest

from hwsim.simulate import simulate
from traces.synth import conv, write_synthetic

TIMELOOP = {"macs": 10_838_016, "energy_pj": 59.28e6, "dram": 572_528, "glb": 1_913_456}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    layer = conv("mobilenet_l1", 3, 224, 224, 32, 3, stride=2, padding=1)
    path = write_synthetic([layer], tmp_path_factory.mktemp("eyeriss") / "t", batch=1,
                           density={"x": 1.0, "w": 1.0, "dy": 1.0})
    return {m: simulate(path, "eyeriss-like", passes=["forward"], mapping=m).to_frame().iloc[0]
            for m in ("fixed", "search")}


def accesses(row, level: str) -> float:
    return sum(v for k, v in row.items() if k.startswith(f"{level}_") and k.endswith("_bytes"))


def test_same_work(rows):
    assert rows["search"]["actual_macs"] == TIMELOOP["macs"]


@pytest.mark.parametrize(("level", "key"), [("dram", "dram"), ("shared_glb", "glb")])
def test_scalar_accesses_within_10_percent(rows, level, key):
    assert accesses(rows["search"], level) == pytest.approx(TIMELOOP[key], rel=0.10)


def test_energy_within_10_percent(rows):
    assert rows["search"]["energy_pj"] == pytest.approx(TIMELOOP["energy_pj"], rel=0.10)


def test_timeloops_own_mapping_gives_its_dram_count_in_the_loop_nest():
    """Timeloop's map (timeloop-mapper.map.txt): DRAM loops P8 Q2 M4 (outermost first), GLB tile
    Inputs 9831 = 3·29·113 and Outputs 6272 = 8·14·56, weights fetched per M tile (216 each): at
    residency level 5 (one tile each) the closed form gives Timeloop's 572,528 exactly. The input
    does not slide there: the innermost DRAM loop, M, does not index it (Timeloop refills its GLB
    tile whole at each Q step). Held across M (level 2, the same 9,831 elements) the slice slides
    along Q, as AccelForge counts a buffer lowered through that loop: the 8 × 3 × 29 input
    elements the two Q windows share (stride 2, one column) are not fetched again."""
    import numpy as np

    from hwsim.npu.loopnest import DIMS, ConvShape, footprints, nest_costs

    shape = ConvShape(1, 32, 3, 112, 112, 3, 3, 2, 2)
    tile = np.array([[1, 8, 3, 14, 56]])
    assert {k: int(v[0]) for k, v in footprints(shape, tile).items()} == {"I": 9831, "W": 216, "O": 6272}
    order = np.array([[DIMS.index(d) for d in ("OY", "OX", "K", "B", "C")]])
    c = nest_costs(shape, "forward", tile, order, 12, 14, "os")
    assert int(c["dram_read_a"][0] + c["dram_read_b"][0] + c["dram_write_c"][0]) == TIMELOOP["dram"]
    assert int(c["slide_a"][0]) == -1
    held = nest_costs(shape, "forward", tile, order, 12, 14, "os", {"a": np.array([2])})
    assert int(held["slide_a"][0]) == 1  # the Q loop
    assert int(c["dram_read_a"][0] - held["dram_read_a"][0]) == 8 * 3 * 29


def test_fixed_order_im2col_traffic_is_what_the_mapper_removes(rows):
    """The fixed order fetches the im2col input from DRAM (9/4 of the raw input here): far off. The
    searched row is timed by its own nest: its tiles' folds each pay the fill and drain (306 cycles
    more than the one-tile fixed order here), and with no DRAM bandwidth limit the schedule is the
    mapper's closed form to the cycle."""
    assert accesses(rows["fixed"], "dram") > 2 * TIMELOOP["dram"]
    assert rows["search"]["gemm_cycles"] == rows["search"]["mapper_gemm_cycles"]
    assert rows["search"]["cycles"] > rows["fixed"]["cycles"]
