"""ReRAM products of two activations: the stationary operand written into spare crossbars per GEMM
(``hwsim/reram/activations.py``), counted by hand."""

from __future__ import annotations

import math

import pytest

import archs
from hwsim.errors import MappingError
from hwsim.reram.activations import expected_level_change, operand_map, operand_writes

R = archs.PRESETS["reram-isaac"].reram  # 128×128 crossbars of 2-bit cells, 16-bit offset code: 8 slices


def test_expected_level_change_matches_enumeration():
    top = 2**R.crossbar.bits_per_cell - 1
    pairs = [(a, b) for a in range(top + 1) for b in range(top + 1)]
    assert expected_level_change(R) == pytest.approx(sum(abs(a - b) for a, b in pairs) / len(pairs))


def test_operand_writes_by_hand():
    # a 64 × 1024 operand (Kᵀ of one head, GPT-2 small): 1 crossbar along K, 8 along N, 8 slices
    lm = operand_map(64, 1024, R)
    assert (lm.k_xbars, lm.n_xbars, lm.slices, lm.sets, lm.crossbars) == (1, 8, 8, 1, 64)
    w = operand_writes(R, 64, 1024, groups=96, spare_crossbars=1000)
    assert w.crossbars_per_group == 64 and w.rounds == math.ceil(96 / (1000 // 64))  # 15 at once: 7 rounds
    assert w.cells_written == 96 * 64 * 1024 * 8
    full = 3  # linear 2-bit cells: one pulse per level, 3 across the range
    per_cell = expected_level_change(R) * (full + full) / 2 / 3
    assert w.pulses == pytest.approx(w.cells_written * per_cell)
    assert w.pulses_per_cell == pytest.approx(7 * per_cell)  # the spare cells are rewritten each round
    assert w.lifetime_passes(R) == pytest.approx(R.write.endurance_cycles / (7 * per_cell))
    # each round writes its crossbars in parallel: 64 rows × (SET + RESET phases of 3 pulses) × 50 ns
    assert w.latency_ns == pytest.approx(7 * 64 * 6 * R.write.pulse_ns)


def test_too_few_spare_crossbars_is_a_mapping_error():
    with pytest.raises(MappingError, match="activation_products: digital"):
        operand_writes(R, 64, 1024, groups=1, spare_crossbars=10)


def test_replay_reports_both_choices(tmp_path):
    from hwsim.reram.mapping import slices_per_weight
    from hwsim.simulate import simulate
    from traces.synth_transformer import TransformerConfig, write_transformer

    cfg = TransformerConfig(layers=1, d_model=64, heads=2, seq=64, batch=2)
    path = write_transformer(cfg, tmp_path / "t")
    base = archs.PRESETS["reram-isaac"]
    frames = {v: simulate(path, archs.replace(base, {"reram.activation_products": v})).to_frame()
              for v in ("digital", "crossbar_writes")}
    for v, df in frames.items():
        fwd = df[(df.layer == "h.0.attn.scores") & (df["pass"] == "forward")].iloc[0]
        assert fwd["reram_act_path"] == v
        assert fwd["cycles"] == fwd[f"reram_act_{'digital' if v == 'digital' else 'crossbar'}_cycles"]
        # forward B = Kᵀ (32 × 64) per sample and head: 4 GEMMs, every cell of every slice written
        assert fwd["reram_act_cells_written"] == 4 * 32 * 64 * slices_per_weight(R)
    d, c = (frames[v][frames[v].layer == "h.0.attn.scores"] for v in ("digital", "crossbar_writes"))
    assert (d["reram_act_crossbar_cycles"].to_numpy() == c["cycles"].to_numpy()).all()
    assert (c["reram_act_digital_cycles"].to_numpy() == d["cycles"].to_numpy()).all()
