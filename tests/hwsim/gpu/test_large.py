"""GPT-3-sized GEMMs replay: no artificial size limit, counts exact in int64 (closed-form counts)."""

from __future__ import annotations

import pytest

import archs
from hwsim import gpu
from hwsim.layer_input import LayerInput
from traces.format.layer import MAX_BATCH
from traces.format.manifest import TENSORS

from .helpers import linear

TOKENS, D_MODEL = 32768, 12288  # a GPT-3 175B batch of 32768 tokens through a 12288×12288 projection
MACS = TOKENS * D_MODEL * D_MODEL  # 2**42.2 per pass: above the old per-sample limit of 2**42


def counts_only(spec, x_density: float, dy_density: float) -> LayerInput:
    """One iteration of the layer with counts and no masks (expected-value replay)."""
    counts = {t: None for t in TENSORS}
    counts.update(x=round(x_density * spec.numel("x", 1)), w=spec.numel("w", 1), dy=round(dy_density *
                  spec.numel("dy", 1)), y=spec.numel("y", 1), dx=spec.numel("x", 1), dw=spec.numel("w", 1))
    return LayerInput(0, 1, 1, False, counts, {}, {})


def test_a_gpt3_projection_is_a_valid_layer():
    spec = linear(TOKENS, D_MODEL, D_MODEL)
    assert MACS > 2**42 and spec.macs_per_sample == MACS
    assert spec.check() == []
    # the int64 bound stays, on the whole pass: 2**20 such samples would be 2**62.2 MACs
    assert spec.check_batch(2**17) == [] and spec.check_batch(MAX_BATCH)


@pytest.mark.parametrize("preset", ["gpu-a100", "gpu-h100"])
def test_gpt3_training_passes_replay_with_closed_form_counts(preset):
    arch = archs.PRESETS[preset]
    spec = linear(TOKENS, D_MODEL, D_MODEL)
    ctx = gpu.context(arch, {"method": {"name": "synthetic"}}, dataflow=None, backend="analytic",
                      stream_chunk=None)
    rows = {r["pass"]: r for r in gpu.layer_rows(ctx, spec, counts_only(spec, 0.5, 0.25), 0,
                                                 ("forward", "backward_data", "backward_weight"))}
    assert set(rows) == {"forward", "backward_data", "backward_weight"}
    peak = arch.gpu.sms * arch.gpu.tensor_cores_per_sm * arch.gpu.tensor_core.fma_per_cycle  # FMA/cycle
    for pass_, density in (("forward", 0.5), ("backward_data", 0.25), ("backward_weight", 0.5 * 0.25)):
        r = rows[pass_]
        assert r["algorithmic_macs"] == MACS  # exact: Python int, no float rounding
        assert r["effectual_macs"] == round(MACS * density)
        assert r["actual_macs"] + r["skipped_macs"] == MACS
        # dense tensor-core time: at least the MACs at peak, at most twice that (tiles, efficiency)
        assert MACS / peak < r["gemm_cycles"] < 2 * MACS / peak
        assert r["cycles"] == r["gemm_cycles"] + r["vector_cycles"]
