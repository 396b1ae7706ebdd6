"""hwsim's per-operand register files and a buffer bypass against AccelForge 1.0.467 (issue 23 item 2).

Two held-out machines, both DRAM (8 B/cycle) -> a 64 KiB global buffer -> 16×16 PEs, each PE with three
register files of its own, one per tensor (Eyeriss-style scratchpads: weights 32 B at 0.25 pJ/B, inputs
12 B at 0.1, partial sums 16 B at 0.15) -> one MAC (AccelForge's ``pe_array.yaml`` with one ``!Memory``
per scratchpad keeping one tensor; hwsim's twin ``*_hwsim.yaml`` with three ``register_file`` memories,
one operand each):

- ``held_out_per_operand_rf``: the global buffer keeps every tensor;
- ``held_out_weight_bypass``: the global buffer keeps only the inputs and the outputs; the weights go
  from DRAM straight into the weight register files (Eyeriss v1; AccelForge ``keep: ~Wt``, hwsim's
  ``operands: ["a", "c"]``).

given.csv (``make accelforge-given``): AccelForge's model on hwsim's chosen mappings: every tensor's
reads and writes at every level (the three register files summed in the ``rf`` columns) and the energy
equal hwsim's to the element, latency within 1.25×. Before the bypass was modelled hwsim took the
weight register files for the weights' staging buffer (a DRAM tile written into them, then read again
to fill themselves): twice the weights' register-file writes, and the machine's mappings mispriced.
reference.csv (``make accelforge-reference``): AccelForge's own mapper; energy within 10 % and latency
within 1.25× on every layer, the accesses outside 1.25× pinned in ``OUTSIDE`` with their cause.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archs
from hwsim.npu.mapper import NestMapping, evaluate, search
from hwsim.npu.mapping import buffers
from hwsim.npu.pe_tiles import PeMapping
from tests.hwsim.test_accelforge_agreement import LAYERS, LEVELS, ONE, _rows, schedule_cycles, shape_of

DATA = Path(__file__).resolve().parents[1] / "data" / "accelforge"
MACHINES = ("held_out_per_operand_rf", "held_out_weight_bypass")
KIB = 1024


def twin(machine: str):
    return archs.load(next((DATA / machine).glob("*_hwsim.yaml")))


def level_accesses(res, level: str, op: str, direction: str) -> float:
    """hwsim's bytes (8-bit values: elements) of one tensor at a level; ``rf``: the register files summed."""
    return sum(v for (lv, o, _k, d), v in res.bytes.items()
               if (lv.startswith("rf") if level == "rf" else lv == level) and o == op and d == direction)


@pytest.fixture(scope="module", params=MACHINES)
def machine(request):
    arch = twin(request.param)
    return request.param, arch, {name: search(shape_of(name), "forward", arch, ONE) for name in LAYERS}


def _each_access(r: dict[str, str], res):
    for level in LEVELS:
        for op in "abc":
            for direction in ("read", "write"):
                theirs = float(r.get(f"{level}_{op}_{direction}", 0) or 0)
                ours = level_accesses(res[r["layer"]], level, op, direction)
                yield (r["layer"], level, op, direction), ours, theirs


def test_the_machines_are_per_operand_register_files_and_a_bypass():
    for machine in MACHINES:
        arch, oracle = twin(machine), (DATA / machine / "pe_array.yaml").read_text()
        assert (arch.compute.rows, arch.compute.cols) == (16, 16) and "fanout: 16" in oracle
        rfs = {m.name: (tuple(m.operands), m.capacity_bytes) for m in arch.memories
               if m.kind == "register_file"}
        assert rfs == {"rf_w": (("b",), 32), "rf_i": (("a",), 12), "rf_o": (("c",), 16)}
        for spad, tensor, size in (("WeightSpad", "Wt", 32), ("InputSpad", "I", 12), ("PsumSpad", "O", 16)):
            block = oracle.split(f"name: {spad}")[1].split("!")[0]
            assert f"size: {size} * 8" in block and f"keep: {tensor}" in block
        assert arch.memory("glb").capacity_bytes == 2 * 64 * KIB and "size: 64 * 1024 * 8" in oracle
        rows = _rows(f"{machine}/given.csv")
        assert f"machine {machine}" in (DATA / machine / "given.csv").read_text().splitlines()[0]
        assert [r["layer"] for r in rows] == list(LAYERS)
        for r in rows:  # the oracle ran every MAC of the layer
            assert int(r["macs"]) == shape_of(r["layer"]).macs
    assert "tensors: {keep: ~Wt}" in (DATA / "held_out_weight_bypass" / "pe_array.yaml").read_text()
    assert buffers(twin("held_out_weight_bypass"))["b"] == ("", 0.0)  # no buffer stages the weights
    assert buffers(twin("held_out_per_operand_rf"))["b"] == ("glb", 64 * KIB)


def test_given_mappings_are_hwsims_current_choice(machine):
    name, _, res = machine
    for r in _rows(f"{name}/given.csv"):
        assert res[r["layer"]].notation == r["hwsim_mapping"], r["layer"]


def test_accesses_and_energy_equal_accelforges_model_on_the_same_mapping(machine):
    name, _, res = machine
    for r in _rows(f"{name}/given.csv"):
        for key, ours, theirs in _each_access(r, res):
            assert ours == pytest.approx(theirs, rel=1e-6, abs=0.5), key
        assert res[r["layer"]].energy_pj == pytest.approx(float(r["energy_pj"]), rel=1e-6), r["layer"]


def test_latency_within_125_percent_of_accelforges_model(machine):
    name, arch, res = machine
    for r in _rows(f"{name}/given.csv"):
        ratio = schedule_cycles(arch, shape_of(r["layer"]), res[r["layer"]]) / float(r["latency_cycles"])
        assert 0.8 <= ratio <= 1.25, (r["layer"], ratio)


def test_bypassed_weights_go_from_dram_straight_into_the_register_files():
    """With the weights bypassing the buffer, the buffer never touches them and DRAM serves every fill
    of a weight register file: each PE keeps weights of its own input and output channel (both
    unrolled: no multicast), so DRAM's weight reads equal the register files' weight writes (AccelForge
    counts them so, given.csv), and each weight is read at least once."""
    arch = twin("held_out_weight_bypass")
    for r in _rows("held_out_weight_bypass/given.csv"):
        res = search(shape_of(r["layer"]), "forward", arch, ONE)
        assert float(r.get("glb_b_read") or 0) == float(r.get("glb_b_write") or 0) == 0
        assert level_accesses(res, "glb", "b", "read") == level_accesses(res, "glb", "b", "write") == 0
        fills = level_accesses(res, "rf_w", "b", "write")
        assert fills == level_accesses(res, "dram", "b", "read") == float(r["dram_b_read"])
        assert fills >= shape_of(r["layer"]).size("W")


# (machine, layer, level, tensor, direction): hwsim / AccelForge's own mapper (reference.csv), outside
# 1.25× (a tensor AccelForge does not move there: hwsim's count); each has its cause in a test below
OUTSIDE = {
    "held_out_per_operand_rf": {
        # a mapping AccelForge's loop-order-limited mapper misses, its own model prices lower
        ("l1_3x3", "glb", "a", "read"): 5 / 7, ("l1_3x3", "glb", "b", "read"): 1 / 2,
        ("l1_3x3", "rf", "a", "write"): 5 / 7, ("l1_3x3", "rf", "b", "write"): 1 / 2,
        ("l2_3x3_s2", "dram", "b", "read"): 1 / 4, ("l2_3x3_s2", "dram", "c", "read"): 100352,
        ("l2_3x3_s2", "dram", "c", "write"): 2, ("l2_3x3_s2", "glb", "b", "read"): 7 / 4,
        ("l2_3x3_s2", "glb", "b", "write"): 1 / 4, ("l2_3x3_s2", "rf", "b", "write"): 7 / 4,
        ("l2_1x1_s2", "dram", "a", "read"): 7 / 13, ("l2_1x1_s2", "dram", "b", "read"): 1 / 4,
        ("l2_1x1_s2", "glb", "a", "read"): 1 / 2, ("l2_1x1_s2", "glb", "a", "write"): 7 / 13,
        ("l2_1x1_s2", "glb", "b", "read"): 7, ("l2_1x1_s2", "glb", "b", "write"): 1 / 4,
        ("l2_1x1_s2", "rf", "a", "write"): 1 / 2, ("l2_1x1_s2", "rf", "b", "write"): 7,
        # a split loop AccelForge's buffer uses and hwsim's nest cannot (one loop per dimension)
        ("bert_qkv", "dram", "a", "read"): 1 / 2, ("bert_qkv", "dram", "c", "read"): 98304,
        ("bert_qkv", "dram", "c", "write"): 2, ("bert_qkv", "glb", "a", "read"): 4,
        ("bert_qkv", "glb", "a", "write"): 1 / 2, ("bert_qkv", "glb", "c", "read"): 5 / 12,
        ("bert_qkv", "glb", "c", "write"): 5 / 12, ("bert_qkv", "rf", "a", "write"): 4,
        ("bert_ffn1", "glb", "a", "read"): 2, ("bert_ffn1", "glb", "c", "read"): 5 / 7,
        ("bert_ffn1", "glb", "c", "write"): 5 / 7, ("bert_ffn1", "rf", "a", "write"): 2,
    },
    "held_out_weight_bypass": {  # the filter's columns split above the array
        ("l2_3x3_s2", "glb", "c", "read"): 4 / 3, ("l2_3x3_s2", "glb", "c", "write"): 4 / 3,
    },
}
# layers whose energy and latency are outside 10 % / 1.25× of AccelForge's loop-order-limited mapper:
# hwsim's mapping is cheaper and faster in AccelForge's own model, and its mapper finds it with every
# loop order (reference_all_orders.csv)
LIMITED_MAPPER_MISS = {("held_out_per_operand_rf", "l2_1x1_s2")}


def test_reference_csvs_ran_every_layer():
    for machine in MACHINES:
        rows = _rows(f"{machine}/reference.csv")
        assert f"machine {machine}" in (DATA / machine / "reference.csv").read_text().splitlines()[0]
        assert [r["layer"] for r in rows] == list(LAYERS)
        for r in rows:
            assert int(r["macs"]) == shape_of(r["layer"]).macs


def test_energy_and_latency_against_accelforges_mapper(machine):
    name, arch, res = machine
    for r in _rows(f"{name}/reference.csv"):
        energy = res[r["layer"]].energy_pj / float(r["energy_pj"])
        latency = schedule_cycles(arch, shape_of(r["layer"]), res[r["layer"]]) / float(r["latency_cycles"])
        if (name, r["layer"]) in LIMITED_MAPPER_MISS:
            assert energy < 0.8 and latency < 0.8, (r["layer"], energy, latency)
        else:
            assert 0.9 <= energy <= 1.1, (r["layer"], energy)
            assert 0.8 <= latency <= 1.25, (r["layer"], latency)


def test_accesses_within_125_percent_of_accelforges_mapper_but_the_documented_ones(machine):
    name, _, res = machine
    seen = set()
    for r in _rows(f"{name}/reference.csv"):
        for key, ours, theirs in _each_access(r, res):
            if theirs == 0 and ours == 0:
                continue
            ratio = ours / max(theirs, 1)
            if key in OUTSIDE[name]:
                seen.add(key)
                assert ratio == pytest.approx(OUTSIDE[name][key], rel=1e-9), (key, ours, theirs)
            else:
                assert 0.8 <= ratio <= 1.25, (key, ours, theirs)
    assert seen == set(OUTSIDE[name])


def test_where_hwsim_beats_the_limited_mapper_accelforges_model_agrees():
    """On `l1_3x3`, `l2_3x3_s2` and `l2_1x1_s2` of the per-operand machine hwsim's mapping differs from
    AccelForge's loop-order-limited mapper's pick (``explore_loop_orders: False``, as on every machine)
    and AccelForge's own model prices hwsim's mapping lower (given.csv against reference.csv): 1.0 %,
    1.3 % and 25.8 % less energy. `l2_1x1_s2` keeps all 8,192 weights in the buffer while the 28 output
    rows stream through (AccelForge `[Wt in GlobalBuffer]` above `T-p in [0..28)`): 28 refills of each
    PE's 8 × 4 weights from the buffer (7× the weights' buffer reads, 229,376 against 32,768) for one
    read of the input from DRAM (98,560 B: 28 rows of 55 columns of 64 channels, where the limited
    mapper's 7-row tiles read 4 × 13 rows, 183,040 B); DRAM-bound, 25,888 cycles against 39,520. With
    every loop order (``--all-orders``, reference_all_orders.csv) AccelForge's mapper finds hwsim's
    energy and counts to the element."""
    ref = {r["layer"]: r for r in _rows("held_out_per_operand_rf/reference.csv")}
    given = {r["layer"]: r for r in _rows("held_out_per_operand_rf/given.csv")}
    for name in ("l1_3x3", "l2_3x3_s2", "l2_1x1_s2"):
        assert float(given[name]["energy_pj"]) < float(ref[name]["energy_pj"]), name
    assert float(given["l2_1x1_s2"]["energy_pj"]) < 0.75 * float(ref["l2_1x1_s2"]["energy_pj"])
    assert "[Wt in GlobalBuffer] I,Wt,O reserves MainMemory Wt reserves GlobalBuffer T-p in [0..28)" in \
        given["l2_1x1_s2"]["mapping"]
    assert float(given["l2_1x1_s2"]["dram_a_read"]) == 28 * 55 * 64
    assert float(ref["l2_1x1_s2"]["dram_a_read"]) == 4 * 13 * 55 * 64 and "T-p in [0..4) shape=7" in \
        ref["l2_1x1_s2"]["mapping"]
    assert float(ref["l2_1x1_s2"]["latency_cycles"]) == (183040 + 32768 + 100352) / 8  # DRAM-bound
    arch = twin("held_out_per_operand_rf")
    all_orders = {r["layer"]: r for r in _rows("held_out_per_operand_rf/reference_all_orders.csv")}
    assert "every loop order" in (DATA / "held_out_per_operand_rf" /
                                  "reference_all_orders.csv").read_text().splitlines()[0]
    assert "l2_1x1_s2" in all_orders
    for name, r in all_orders.items():  # every loop order: never worse than the limited search
        assert float(r["energy_pj"]) <= float(ref[name]["energy_pj"]) * (1 + 1e-9), name
        res = search(shape_of(name), "forward", arch, ONE)
        assert res.energy_pj == pytest.approx(float(r["energy_pj"]), rel=0.10), name
    res = search(shape_of("l2_1x1_s2"), "forward", arch, ONE)
    assert res.energy_pj == pytest.approx(float(all_orders["l2_1x1_s2"]["energy_pj"]), rel=1e-6)
    for key, ours, theirs in _each_access(all_orders["l2_1x1_s2"], {"l2_1x1_s2": res}):
        assert ours == pytest.approx(theirs, rel=1e-6, abs=0.5), key


def test_gemms_differ_by_a_split_loop_accelforges_buffer_uses():
    """On the GEMMs of the per-operand machine AccelForge's buffer splits a loop around another tensor's
    node: `bert_qkv` keeps 384 output channels of the output (48 KiB) above its loop over the 12 input
    channel tiles while the input and the weights stream 128 output channels at a time (`T-k in
    [0..2) shape=384` at DRAM, `T-k in [0..3) shape=128` below the input's node: 48 + 8 + 8 KiB = the
    64 KiB buffer); `bert_ffn1` keeps 384 input channels of the input and splits its loop over the
    input channels alike. hwsim's nest has one DRAM loop per dimension (docs/mapping.md, "What it does
    not do yet"): without the split, keeping the output across the input channels leaves 128 output
    channels per tile and the input read from DRAM 6 times (163.1 µJ in hwsim's model, above its pick,
    `K32 C384 | C2 K24`: the output spilled once to DRAM, 143.1 µJ, 4.2 % over AccelForge's 137.3 µJ)."""
    ref = {r["layer"]: r for r in _rows("held_out_per_operand_rf/reference.csv")}
    qkv, ffn1 = ref["bert_qkv"]["mapping"], ref["bert_ffn1"]["mapping"]
    assert qkv.index("T-k in [0..2) shape=384") < qkv.index("[I in GlobalBuffer]") < qkv.index(
        "T-k in [0..3) shape=128")
    assert ffn1.index("T-c in [0..2) shape=384") < ffn1.index("[O in GlobalBuffer]") < ffn1.index(
        "T-c in [0..3) shape=128")
    assert 384 * 128 + 64 * 128 + 128 * 64 == 64 * KIB
    arch = twin("held_out_per_operand_rf")
    unsplit = evaluate(shape_of("bert_qkv"), "forward", arch, NestMapping(
        (1, 128, 64, 1, 128), ("K", "C", "B", "OY", "OX"),
        PeMapping((("C", 16), ("K", 16)), (1, 1, 4, 1, 1), ("B", "OY", "OX", "K", "C"))), ONE)
    assert level_accesses(unsplit, "dram", "a", "read") == 6 * 768 * 128
    chosen = search(shape_of("bert_qkv"), "forward", arch, ONE)
    assert chosen.energy_pj < unsplit.energy_pj
    assert float(ref["bert_qkv"]["energy_pj"]) < chosen.energy_pj < 1.05 * float(ref["bert_qkv"]["energy_pj"])


def test_bypass_l2_3x3_s2_splits_the_filter_columns_above_the_array():
    """With the weights bypassing the buffer, AccelForge's mapper equals hwsim's energy on five layers
    (every count equal); on `l2_3x3_s2` it splits the filter's columns above the array (`T-s in
    [0..3)` below the output's buffer node: the script's whole-window constraint binds only the loops
    below the array), so each output visits the buffer 3 times where hwsim's register files keep whole
    windows and accumulate over 4 input channels per visit: 4/3 of the output's buffer traffic,
    energy 1.005× (as on held_out_16x16)."""
    ref = next(r for r in _rows("held_out_weight_bypass/reference.csv") if r["layer"] == "l2_3x3_s2")
    m = ref["mapping"]
    assert m.index("O reserves GlobalBuffer T-s in [0..3)") < m.index("S-cols-k") < m.index(
        "[Wt in WeightSpad]")
    outputs = 128 * 28 * 28
    assert float(ref["glb_c_write"]) == 3 * outputs
    arch = twin("held_out_weight_bypass")
    res = search(shape_of("l2_3x3_s2"), "forward", arch, ONE)
    assert level_accesses(res, "glb", "c", "write") == 4 * outputs
