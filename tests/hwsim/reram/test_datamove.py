"""Activation traffic of a crossbar pass: tile buffers and interconnect (NeuroSim's per-layer rule)."""

from __future__ import annotations

import dataclasses
import math

import pytest

import archs
from hwsim.reram.crossbar import data_movement_ns, tiles_per_copy
from hwsim.reram.mapping import LayerMap, map_layer
from hwsim.simulate import simulate
from traces.synth import linear, write_synthetic

ISAAC = archs.PRESETS["reram-isaac"]
# bandwidths in bytes/s chosen so that every term is a whole number of ns
R = dataclasses.replace(ISAAC.reram, input_bits=8, output_buffer_bits=16,
                        tile_input_buffer_bandwidth_bytes_per_s=4e9,
                        tile_output_buffer_bandwidth_bytes_per_s=2e9,
                        interconnect_bandwidth_bytes_per_s=8e9)


def test_zero_bandwidths_cost_no_time():
    lm = map_layer(linear("fc", 256, 128), ISAAC.reram)
    assert data_movement_ns((100, 256, 128), 1, lm, ISAAC.reram) == (0.0, 0.0)


def test_buffer_and_interconnect_time_closed_form_and_independent_of_copies():
    spec = linear("fc", 4 * 128, 128)  # 4 crossbars along K × 8 slices
    lm = map_layer(spec, R)
    tiles = tiles_per_copy(lm, R)
    assert tiles == math.ceil(lm.imas / R.imas_per_tile)
    m, k, n = 1000, 512, 128
    buf, ic = data_movement_ns((m, k, n), 1, lm, R)
    # inputs: m·k·8 bits / (tiles × 4 GB/s); outputs: m·n·16 bits / (tiles × 2 GB/s), in ns
    assert buf == pytest.approx((m * k * 8 / 8 / 4 + m * n * 16 / 8 / 2) / tiles)
    assert ic == pytest.approx(m * (k + n) * 8 / 8 / 8)
    copies = LayerMap(**{**lm.__dict__, "replicas": 8})
    assert data_movement_ns((m, k, n), 1, copies, R) == (buf, ic)
    assert data_movement_ns((m, k, n), 2, lm, R) == pytest.approx((2 * buf, 2 * ic))


def test_replayed_pass_adds_traffic_in_series(tmp_path):
    """A replayed forward pass: cycles = crossbar cycles + buffer cycles + interconnect cycles."""
    arch = dataclasses.replace(ISAAC, reram=R)
    path = write_synthetic([linear("fc", 128, 128)], tmp_path / "t", batch=64)
    row = simulate(path, arch, passes=["forward"]).to_frame().iloc[0]
    no_traffic = dataclasses.replace(R, tile_input_buffer_bandwidth_bytes_per_s=0.0,
                                     tile_output_buffer_bandwidth_bytes_per_s=0.0,
                                     interconnect_bandwidth_bytes_per_s=0.0)
    plain_arch = dataclasses.replace(ISAAC, reram=no_traffic)
    plain = simulate(path, plain_arch, passes=["forward"]).to_frame().iloc[0]
    lm = map_layer(linear("fc", 128, 128), R)
    buf, ic = data_movement_ns((64, 128, 128), 1, lm, R)
    assert row["reram_buffer_cycles"] == math.ceil(round(buf * ISAAC.clock_hz / 1e9, 6)) > 0
    assert row["reram_interconnect_cycles"] == math.ceil(round(ic * ISAAC.clock_hz / 1e9, 6)) > 0
    assert row["gemm_cycles"] == plain["gemm_cycles"]
    assert row["cycles"] == row["gemm_cycles"] + row["reram_buffer_cycles"] + row["reram_interconnect_cycles"]
    assert row["stall_cycles"] == row["reram_buffer_cycles"] + row["reram_interconnect_cycles"]
    assert plain["reram_buffer_cycles"] == plain["reram_interconnect_cycles"] == 0
    assert plain["cycles"] == plain["gemm_cycles"]


def test_traffic_energy_is_bits_times_the_per_bit_prices(tmp_path):
    """A replayed conv forward pass of a training trace: each level's energy is the bits the mapping moves
    (closed form: im2col inputs in, outputs back, both over the tile H-tree; inputs and outputs through the
    global buffer and interconnect; the input map stored in DRAM) × its per-bit price. Prices 0 (the
    ISAAC preset: its tile peripherals' power covers eDRAM, bus and router) cost nothing."""
    import json

    from traces.synth import conv

    prices = dict(tile_input_buffer_energy_pj_per_bit=0.01, tile_output_buffer_energy_pj_per_bit=0.02,
                  tile_interconnect_energy_pj_per_bit=0.1, global_buffer_energy_pj_per_bit=0.003,
                  interconnect_energy_pj_per_bit=0.5, dram_energy_pj_per_bit=4.0)
    arch = dataclasses.replace(ISAAC, reram=dataclasses.replace(R, **prices))
    spec = conv("c", 3, 8, 8, 16, 3)  # no padding: M = 6·6 positions a sample, K = 27, N = 16
    path = write_synthetic([spec], tmp_path / "t", batch=2)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["optimizer"] = {"name": "SGD", "params": {}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    row = simulate(path, arch, passes=["forward"]).to_frame().iloc[0]
    g = spec.gemm("forward", 2)
    m, k, n = g.m, g.k, g.n
    assert (m, k, n) == (2 * 36, 27, 16)
    t_in, t_out, chip, dram = m * k * 8, m * n * 16, m * (k + n) * 8, 2 * 3 * 8 * 8 * 8
    assert (row["reram_tile_input_bits"], row["reram_tile_output_bits"], row["reram_chip_bits"],
            row["reram_dram_bits"]) == (t_in, t_out, chip, dram)
    assert row["energy_tile_buffers_pj"] == pytest.approx(t_in * 0.01 + t_out * 0.02)
    assert row["energy_tile_interconnect_pj"] == pytest.approx((t_in + t_out) * 0.1)
    assert row["energy_global_buffer_pj"] == pytest.approx(chip * 0.003)
    assert row["energy_interconnect_pj"] == pytest.approx(chip * 0.5)
    assert row["energy_dram_pj"] == pytest.approx(dram * 4.0)
    parts = [c for c in row.index if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"]
    assert row["energy_pj"] == pytest.approx(sum(row[c] for c in parts))
    # an inference trace stores nothing off chip; the ISAAC preset prices no bit
    manifest["optimizer"] = None
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert simulate(path, arch, passes=["forward"]).to_frame().iloc[0]["energy_dram_pj"] == 0
    isaac = simulate(path, ISAAC, passes=["forward"]).to_frame().iloc[0]
    assert isaac[["energy_tile_buffers_pj", "energy_interconnect_pj", "energy_dram_pj"]].sum() == 0
