"""Bytes per level: a compressed format moves exactly its data plus its metadata."""

from __future__ import annotations

import numpy as np

import archs
from hwsim.npu.traffic import moved_bytes
from hwsim.simulate import simulate
from traces.synth import linear, write_synthetic


def test_formats_by_hand():
    base = archs.PRESETS["edge-npu"]  # a: zvc at dram, bitmap at glb
    dense, nz = np.array([1000]), np.array([300])
    data, meta = moved_bytes(base, "dram", "a", dense, nz, 1.0, 16)
    assert data[0] == 300 and meta[0] == 1000 / 8  # non-zeros + 1 bit per element
    rle = archs.replace(base, {"sparse.formats": [{"level": "dram", "operand": "a", "format": "rle",
                                                   "metadata_bits": 4}]})
    data, meta = moved_bytes(rle, "dram", "a", dense, nz, 2.0, 16)
    assert data[0] == 600 and meta[0] == 300 * 4 / 8  # 2-byte values + a 4-bit run per non-zero
    data, meta = moved_bytes(base, "dram", "b", dense, nz, 1.0, 16)  # no format for b: dense
    assert data[0] == 1000 and meta[0] == 0


def test_replayed_dram_reads_of_a_compressed_operand(tmp_path):
    # One linear layer, 64 samples: A = X (64 × 128) read once from DRAM with ZVC, B dense.
    path = write_synthetic([linear("fc", 128, 32)], tmp_path / "t", batch=64, density={"x": 0.25})
    from traces import load

    with load(path).iteration(0) as it:
        nnz_x = int(it.mask("fc", "x").sum())
    row = simulate(path, "edge-npu", passes=["forward"]).to_frame().iloc[0]
    assert row.dram_a_read_bytes == nnz_x  # int8 values of the non-zeros
    assert row.dram_a_metadata_read_bytes == 64 * 128 / 8  # ZVC: 1 bit per element
    assert row.dense_energy_pj > row.energy_pj


def test_a_format_without_skipping_still_moves_compressed_bytes(tmp_path):
    # The same layer on a machine whose only sparse feature is the formats (no gating, no
    # skipping): the timing stays dense, but DRAM still holds X as ZVC, so it moves the non-zeros
    # plus one bit per element, in every dataflow (is runs as ws with the operands swapped).
    path = write_synthetic([linear("fc", 128, 32)], tmp_path / "t", batch=64, density={"x": 0.25})
    from traces import load

    with load(path).iteration(0) as it:
        nnz_x = int(it.mask("fc", "x").sum())
    storage_only = archs.replace(archs.PRESETS["edge-npu"], {"sparse.actions": []})
    for dataflow in ("ws", "os", "is"):
        row = simulate(path, storage_only, passes=["forward"], dataflow=dataflow).to_frame().iloc[0]
        assert row.dram_a_read_bytes == nnz_x, dataflow
        assert row.dram_a_metadata_read_bytes == 64 * 128 / 8
        assert row.skipped_macs == row.gated_macs == 0  # nothing skips: only the bytes change
    plain = archs.replace(storage_only, {"sparse.formats": []})
    row = simulate(path, plain, passes=["forward"]).to_frame().iloc[0]
    assert row.dram_a_read_bytes == 64 * 128 and row.get("dram_a_metadata_read_bytes", 0) == 0


def test_compressed_weights_pay_transposes_and_reencodes(tmp_path):
    from traces.training import train

    run = train(method="dst", epochs=1, every=5, out=tmp_path / "dst")
    csr = archs.replace(archs.PRESETS["edge-npu"], {"sparse.formats": [
        {"level": "dram", "operand": "b", "format": "csr", "metadata_bits": 8, "pointer_bits": 16}]})
    plain = simulate(run.trace, "edge-npu", iterations=[5]).to_frame().set_index(["layer", "pass"])
    comp = simulate(run.trace, csr, iterations=[5]).to_frame().set_index(["layer", "pass"])
    from traces import load

    with load(run.trace).iteration(5) as it:
        w_nnz = it.count("fc2", "w")
        flips = it.layer_stats("fc2")["flips_on"] + it.layer_stats("fc2")["flips_off"]
    bd = ("fc2", "backward_data")
    assert comp.loc[bd, "vector_ops"] - plain.loc[bd, "vector_ops"] == w_nnz  # one op per non-zero
    up = ("fc2", "update")
    compressed = w_nnz * (1 + 1) + 64 * 2  # int8 value + 8-bit index per non-zero, 16-bit pointer per row
    assert flips > 0
    assert comp.loc[up, "dram_b_write_bytes"] - plain.loc[up, "dram_b_write_bytes"] == compressed
    assert plain.loc[up, "speedup"] == 1.0 and comp.loc[up, "speedup"] <= 1.0

