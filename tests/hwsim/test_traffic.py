"""Bytes per level: a compressed format moves exactly its data plus its metadata."""

from __future__ import annotations

import numpy as np

import archs
from hwsim.simulate import simulate
from hwsim.traffic import moved_bytes
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
