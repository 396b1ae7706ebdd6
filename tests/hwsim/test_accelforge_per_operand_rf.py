"""hwsim's per-operand register files and a buffer bypass against AccelForge 1.0.467 (issue 23 item 2).

Four held-out machines, all DRAM (8 B/cycle) -> a 64 KiB global buffer -> 16×16 PEs, each PE with three
register files of its own, one per tensor (Eyeriss-style scratchpads: weights 32 B at 0.25 pJ/B, inputs
12 B at 0.1, partial sums 16 B at 0.15) -> one MAC (AccelForge's ``pe_array.yaml`` with one ``!Memory``
per scratchpad keeping one tensor; hwsim's twin ``*_hwsim.yaml`` with three ``register_file`` memories,
one operand each):

- ``held_out_per_operand_rf``: the global buffer keeps every tensor;
- ``held_out_weight_bypass``: the global buffer keeps only the inputs and the outputs; the weights go
  from DRAM straight into the weight register files (Eyeriss v1; AccelForge ``keep: ~Wt``, hwsim's
  ``operands: ["a", "c"]``);
- ``held_out_input_bypass``, ``held_out_output_bypass``: the global buffer keeps no inputs (``keep: ~I``,
  ``operands: ["b", "c"]``: DRAM fills the input register files, multicast over the columns), or no
  outputs (``keep: ~O``, ``operands: ["a", "b"]``: the partial-sum register files drain to DRAM,
  reduced over the rows, and refill from it).

given.csv (``make accelforge-given``): AccelForge's model on hwsim's chosen mappings: every tensor's
reads and writes at every level (the three register files summed in the ``rf`` columns) and the energy
equal hwsim's to the element, latency within 1.25×. Before the bypass was modelled hwsim took the
weight register files for the weights' staging buffer (a DRAM tile written into them, then read again
to fill themselves): twice the weights' register-file writes, and the machine's mappings mispriced.
reference.csv (``make accelforge-reference``): AccelForge's own mapper, once per nesting order of the
three scratchpads (``rf_order``); latency within 1.25× on every layer, energy within 10 % but where
the filter window split above the array is worth more (``ENERGY_OUTSIDE``), the accesses outside
1.25× pinned in ``OUTSIDE``, each with its cause (docs/validation.md §3c).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archs
from hwsim.npu.mapper import NestMapping, evaluate, search
from hwsim.npu.mapping import buffers
from hwsim.npu.pe_tiles import PeMapping
from tests.hwsim.test_accelforge_agreement import (
    LAYERS,
    ONE,
    _rows,
    assert_equal_to_the_model,
    each_access,
    latency_ratios,
    schedule_cycles,
    shape_of,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "accelforge"
MACHINES = ("held_out_per_operand_rf", "held_out_weight_bypass", "held_out_input_bypass",
            "held_out_output_bypass")
BYPASS = {"held_out_weight_bypass": ("b", "Wt"), "held_out_input_bypass": ("a", "I"),
          "held_out_output_bypass": ("c", "O")}  # machine -> the operand (tensor) skipping the buffer
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
    return each_access(r, res, level_accesses)  # the three register files summed as the CSV's `rf`


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
    for machine, (op, tensor) in BYPASS.items():
        assert f"tensors: {{keep: ~{tensor}}}" in (DATA / machine / "pe_array.yaml").read_text()
        bufs = buffers(twin(machine))
        assert bufs[op] == ("", 0.0)  # no buffer stages it
        assert all(bufs[o] == ("glb", 64 * KIB) for o in "abc" if o != op)
    assert all(b == ("glb", 64 * KIB) for b in buffers(twin("held_out_per_operand_rf")).values())


def test_given_mappings_are_hwsims_current_choice(machine):
    name, _, res = machine
    for r in _rows(f"{name}/given.csv"):
        assert res[r["layer"]].notation == r["hwsim_mapping"], r["layer"]


def test_accesses_and_energy_equal_accelforges_model_on_the_same_mapping(machine):
    name, _, res = machine
    assert_equal_to_the_model(_rows(f"{name}/given.csv"), res, level_accesses)


def test_latency_within_125_percent_of_accelforges_model(machine):
    name, arch, res = machine
    for layer, ratio in latency_ratios(arch, _rows(f"{name}/given.csv"), res).items():
        assert 0.8 <= ratio <= 1.25, (layer, ratio)


def test_a_bypassed_operand_moves_between_dram_and_the_register_files():
    """An operand that bypasses the buffer never touches it, and DRAM serves every register-file fill:
    the weights (each PE its own input and output channel: no multicast) as many as the register files
    take; the input multicast over the 16 columns, 1/16 of them; the partial sums reduced over the 16
    rows on their way down (DRAM takes 1/16 of the drains: its writes are its reads plus the output
    once, and a refill feeds every PE of the reduction) — as AccelForge counts them (given.csv)."""
    for machine, (op, _tensor) in BYPASS.items():
        arch = twin(machine)
        for r in _rows(f"{machine}/given.csv"):
            shape = shape_of(r["layer"])
            res = search(shape, "forward", arch, ONE)
            assert float(r.get(f"glb_{op}_read") or 0) == float(r.get(f"glb_{op}_write") or 0) == 0
            assert level_accesses(res, "glb", op, "read") == level_accesses(res, "glb", op, "write") == 0
            dram_read = level_accesses(res, "dram", op, "read")
            assert dram_read == float(r[f"dram_{op}_read"])
            if op == "c":
                fills = level_accesses(res, "rf", "c", "write") - shape.macs
                assert fills == 16 * dram_read
                assert level_accesses(res, "dram", "c", "write") == dram_read + shape.size("O")
                assert level_accesses(res, "dram", "c", "write") == float(r["dram_c_write"])
            else:
                fills = level_accesses(res, "rf", op, "write")
                assert fills == (1 if op == "b" else 16) * dram_read == float(r[f"rf_{op}_write"])
                assert dram_read >= (shape.size("W") if op == "b" else 1)


# (machine, layer, level, tensor, direction): hwsim / AccelForge's own mapper (reference.csv), outside
# 1.25× (a tensor AccelForge does not move there: hwsim's count); each has its cause in a test below
OUTSIDE = {
    "held_out_per_operand_rf": {
        # mappings AccelForge's loop-order-limited mapper misses, its own model prices lower (on the
        # 3 × 3 ones its pick splits the filter's rows above the array)
        ("l1_3x3", "glb", "a", "read"): 4 / 7, ("l1_3x3", "rf", "a", "write"): 4 / 7,
        ("l1_3x3", "glb", "b", "read"): 1 / 2, ("l1_3x3", "rf", "b", "write"): 1 / 2,
        ("l1_3x3", "glb", "c", "read"): 4 / 3, ("l1_3x3", "glb", "c", "write"): 4 / 3,
        ("l2_3x3_s2", "dram", "a", "read"): 19 / 28, ("l2_3x3_s2", "glb", "a", "write"): 19 / 28,
        ("l2_3x3_s2", "glb", "a", "read"): 38 / 21, ("l2_3x3_s2", "rf", "a", "write"): 38 / 21,
        ("l2_3x3_s2", "dram", "b", "read"): 1 / 2, ("l2_3x3_s2", "glb", "b", "write"): 1 / 2,
        ("l2_3x3_s2", "glb", "b", "read"): 1 / 4, ("l2_3x3_s2", "rf", "b", "write"): 1 / 4,
        ("l2_3x3_s2", "dram", "c", "read"): 100352, ("l2_3x3_s2", "dram", "c", "write"): 2,
        ("l2_1x1_s2", "glb", "a", "read"): 1 / 4, ("l2_1x1_s2", "rf", "a", "write"): 1 / 4,
        ("l2_1x1_s2", "glb", "b", "read"): 1 / 4, ("l2_1x1_s2", "rf", "b", "write"): 1 / 4,
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
    "held_out_input_bypass": {
        # the filter's columns split above the array: a mapping hwsim's nest cannot express
        ("l1_3x3", "dram", "a", "read"): 4 / 3, ("l1_3x3", "rf", "a", "write"): 4 / 3,
        ("l1_3x3", "glb", "c", "read"): 2 / 3, ("l1_3x3", "glb", "c", "write"): 2 / 3,
        ("l2_3x3_s2", "dram", "a", "read"): 4, ("l2_3x3_s2", "rf", "a", "write"): 4,
        ("l2_3x3_s2", "dram", "b", "read"): 1 / 2, ("l2_3x3_s2", "glb", "b", "read"): 1 / 2,
        ("l2_3x3_s2", "glb", "b", "write"): 1 / 2, ("l2_3x3_s2", "rf", "b", "write"): 1 / 2,
        ("l2_3x3_s2", "glb", "c", "read"): 1 / 3, ("l2_3x3_s2", "glb", "c", "write"): 1 / 3,
        ("l3_3x3", "dram", "a", "read"): 8 / 3, ("l3_3x3", "rf", "a", "write"): 8 / 3,
        ("l3_3x3", "glb", "c", "read"): 1 / 3, ("l3_3x3", "glb", "c", "write"): 1 / 3,
        # another mapping, AccelForge's model prices hwsim's 0.2 % higher
        ("l2_1x1_s2", "glb", "b", "read"): 2, ("l2_1x1_s2", "rf", "b", "write"): 2,
    },
    "held_out_output_bypass": {},
}
# (machine, layer) -> hwsim / AccelForge's mapper energy, outside 10 % (the latency is within 1.25×
# everywhere): the filter's columns split above the array, worth a third of the energy with the inputs
# bypassing the buffer (test_input_bypass_differs_by_filter_columns_split_above_the_array)
ENERGY_OUTSIDE = {("held_out_input_bypass", "l2_3x3_s2"): 1.504, ("held_out_input_bypass", "l3_3x3"): 1.133}


def test_reference_csvs_ran_every_layer():
    for machine in MACHINES:
        rows = _rows(f"{machine}/reference.csv")
        assert f"machine {machine}" in (DATA / machine / "reference.csv").read_text().splitlines()[0]
        assert [r["layer"] for r in rows] == list(LAYERS)
        for r in rows:
            assert int(r["macs"]) == shape_of(r["layer"]).macs


def test_energy_and_latency_against_accelforges_mapper(machine):
    name, arch, res = machine
    seen = set()
    for r in _rows(f"{name}/reference.csv"):
        energy = res[r["layer"]].energy_pj / float(r["energy_pj"])
        latency = schedule_cycles(arch, shape_of(r["layer"]), res[r["layer"]]) / float(r["latency_cycles"])
        assert 0.8 <= latency <= 1.25, (r["layer"], latency)
        if (name, r["layer"]) in ENERGY_OUTSIDE:
            seen.add((name, r["layer"]))
            assert energy == pytest.approx(ENERGY_OUTSIDE[(name, r["layer"])], abs=1e-3), (r["layer"], energy)
        else:
            assert 0.9 <= energy <= 1.1, (r["layer"], energy)
    assert seen == {k for k in ENERGY_OUTSIDE if k[0] == name}


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
    and AccelForge's own model prices hwsim's mapping lower (given.csv against reference.csv): 0.6 %,
    0.7 % and 6.2 % less energy. On the 3 × 3 convolutions the pick splits the filter's rows above the
    array (`T-r in [0..3)` above the spatial loops), which hwsim's whole-window register files do not;
    on `l2_1x1_s2` hwsim keeps all 8,192 weights in the buffer while the 28 output rows stream through
    and each PE keeps 8 × 4 weights, 4 inputs at a time (AccelForge's pick: 2 × 4 weights, a quarter
    of the buffer reads and fills, 0.94× the energy). With every loop order (``--all-orders``,
    reference_all_orders.csv) AccelForge's mapper finds hwsim's `l2_1x1_s2` mapping: the same energy and
    every count equal."""
    ref = {r["layer"]: r for r in _rows("held_out_per_operand_rf/reference.csv")}
    given = {r["layer"]: r for r in _rows("held_out_per_operand_rf/given.csv")}
    for name in ("l1_3x3", "l2_3x3_s2", "l2_1x1_s2"):
        assert float(given[name]["energy_pj"]) < float(ref[name]["energy_pj"]), name
    for name in ("l1_3x3", "l2_3x3_s2"):
        m = ref[name]["mapping"]
        assert m.index("T-r in [0..3) shape=1") < m.index("S-cols-k"), name
    assert "[Wt in GlobalBuffer] I,Wt,O reserves MainMemory Wt reserves GlobalBuffer T-p in [0..28)" in \
        given["l2_1x1_s2"]["mapping"]
    assert float(given["l2_1x1_s2"]["energy_pj"]) < 0.95 * float(ref["l2_1x1_s2"]["energy_pj"])
    arch = twin("held_out_per_operand_rf")
    all_orders = {r["layer"]: r for r in _rows("held_out_per_operand_rf/reference_all_orders.csv")}
    assert "every loop order" in (DATA / "held_out_per_operand_rf" /
                                  "reference_all_orders.csv").read_text().splitlines()[0]
    assert list(all_orders) == ["l2_1x1_s2"]
    r = all_orders["l2_1x1_s2"]
    assert float(r["energy_pj"]) < float(ref["l2_1x1_s2"]["energy_pj"])  # never worse than the limited one
    res = search(shape_of("l2_1x1_s2"), "forward", arch, ONE)
    assert res.energy_pj == pytest.approx(float(r["energy_pj"]), rel=1e-6)
    for key, ours, theirs in _each_access(r, {"l2_1x1_s2": res}):
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
    energy 1.006× (as on held_out_16x16)."""
    ref = next(r for r in _rows("held_out_weight_bypass/reference.csv") if r["layer"] == "l2_3x3_s2")
    m = ref["mapping"]
    assert m.index("O reserves GlobalBuffer T-s in [0..3)") < m.index("S-cols-k") < m.index(
        "[Wt in WeightSpad]")
    outputs = 128 * 28 * 28
    assert float(ref["glb_c_write"]) == 3 * outputs
    arch = twin("held_out_weight_bypass")
    res = search(shape_of("l2_3x3_s2"), "forward", arch, ONE)
    assert level_accesses(res, "glb", "c", "write") == 4 * outputs


def test_input_bypass_differs_by_filter_columns_split_above_the_array():
    """With the inputs bypassing the buffer, AccelForge's mapper splits the filter's columns above the
    array on the three 3 × 3 convolutions (`T-s in [0..3)` above the spatial loops, as on `l2_3x3_s2`
    of the other machines): each PE's weight register file then keeps one filter column of 8 output
    channels (8 × 3 = 24 B of 32, where 8 whole windows, 72 B, do not fit) and each input fetched
    from DRAM serves those 8 channels in the PE. hwsim's register files keep whole filter windows (no
    loop over FY or FX is tiled: docs/mapping.md, "What it does not do yet"), so its inputs come from
    DRAM 4/3 to 4 times as often; AccelForge's own model prices hwsim's mappings higher (given.csv
    against reference.csv): a limit of hwsim's mapping space, 6 % to 50 % of the energy here (the
    GEMMs and the 1×1 convolution, with no filter window, within 0.2 %)."""
    ref = {r["layer"]: r for r in _rows("held_out_input_bypass/reference.csv")}
    given = {r["layer"]: r for r in _rows("held_out_input_bypass/given.csv")}
    for name in ("l1_3x3", "l2_3x3_s2", "l3_3x3"):
        m = ref[name]["mapping"]
        assert m.index("T-s in [0..3) shape=1") < m.index("S-cols-k"), name
        assert "T-s" not in given[name]["mapping"].split("S-rows-c")[0], name
        assert float(given[name]["energy_pj"]) > float(ref[name]["energy_pj"]), name
        assert float(given[name]["dram_a_read"]) > float(ref[name]["dram_a_read"]), name
    for name in ("l2_3x3_s2", "l3_3x3"):
        assert "S-cols-k in [0..16) shape=8" in ref[name]["mapping"]
        assert "I reserves InputSpad T-k in [0..8)" in ref[name]["mapping"]
    assert 8 * 3 <= 32 < 8 * 3 * 3
    for name in ("bert_qkv", "bert_ffn1", "l2_1x1_s2"):
        assert float(given[name]["energy_pj"]) <= 1.002 * float(ref[name]["energy_pj"]), name


def test_input_bypass_l2_1x1_s2_another_mapping_priced_alike():
    """On `l2_1x1_s2` with the inputs bypassing the buffer hwsim's buffer tiles are 7 output rows
    (`OY7 OX28 | OY4`) and each refills the weights from the buffer: 4 reads of each weight where
    AccelForge's mapper, with two 14-row tiles, reads them twice; AccelForge's own model prices hwsim's
    mapping 0.18 % above its mapper's (given.csv against reference.csv)."""
    ref = next(r for r in _rows("held_out_input_bypass/reference.csv") if r["layer"] == "l2_1x1_s2")
    given = next(r for r in _rows("held_out_input_bypass/given.csv") if r["layer"] == "l2_1x1_s2")
    weights = 128 * 64
    assert "T-p in [0..2) shape=14" in ref["mapping"] and float(ref["glb_b_read"]) == 2 * weights
    assert given["hwsim_mapping"].startswith("B1 K128 C64 OY7 OX28 | OY4 ||")
    assert float(given["glb_b_read"]) == 4 * weights
    assert 1 < float(given["energy_pj"]) / float(ref["energy_pj"]) < 1.002


def test_every_order_of_the_scratchpads_is_searched():
    """AccelForge's mapper nests the storage nodes of sibling scratchpads in their declaration order
    (its ``force_memory_hierarchy_order``): the script runs it once per order of the three and keeps
    the least energy (``rf_order``). hwsim's register files have no order between them; with the
    outputs bypassing the buffer the best nesting keeps the partial sums between the weights and the
    inputs on the GEMMs (`WeightSpad>PsumSpad>InputSpad`), not the declared one, and every count then
    equals hwsim's."""
    for machine in MACHINES:
        for r in _rows(f"{machine}/reference.csv"):
            assert sorted(r["rf_order"].split(">")) == ["InputSpad", "PsumSpad", "WeightSpad"], machine
    ref = {r["layer"]: r for r in _rows("held_out_output_bypass/reference.csv")}
    arch = twin("held_out_output_bypass")
    for name in ("bert_qkv", "bert_ffn1"):
        assert ref[name]["rf_order"] == "WeightSpad>PsumSpad>InputSpad"
        m = ref[name]["mapping"]
        assert m.index("[Wt in WeightSpad]") < m.index("[O in PsumSpad]") < m.index("[I in InputSpad]")
        res = search(shape_of(name), "forward", arch, ONE)
        for key, ours, theirs in _each_access(ref[name], {name: res}):
            assert ours == pytest.approx(theirs, rel=1e-6, abs=0.5), key
