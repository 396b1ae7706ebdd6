"""`trace synth --transformer`: GPT-style records from a config, exact causal structure, and the
dense-operand shortcut of the matmul accounting (checked against a scalar reference)."""

from __future__ import annotations

import numpy as np
import pytest

from traces import load
from traces.format.layer import GEMM_PASSES
from traces.stats.products import _masked_product_sum
from traces.synth_transformer import TransformerConfig, parse_config, transformer_layers, write_transformer

CFG = TransformerConfig(layers=2, d_model=32, heads=4, seq=24, batch=3, vocab=50)


def test_records_of_a_block_and_their_gemms():
    layers = transformer_layers(CFG)
    assert [s.name for s in layers[:6]] == ["h.0.attn.c_attn", "h.0.attn.scores", "h.0.attn.context",
                                            "h.0.attn.c_proj", "h.0.mlp.c_fc", "h.0.mlp.c_proj"]
    assert len(layers) == 6 * 2 + 1 and layers[-1].parameter == "wte.weight"
    scores, context = layers[1], layers[2]
    assert scores.attention == {"call": "h.0.attn", "role": "scores", "causal": True, "backend": "flash"}
    assert scores.gemm("forward", 3).__dict__ == {"m": 24, "k": 8, "n": 24, "groups": 12}
    assert context.gemm("forward", 3).__dict__ == {"m": 24, "k": 24, "n": 8, "groups": 12}
    # a block's MACs per token: 12·d² in its linears, 2·L·d in attention (GPT-style accounting)
    per_sample = sum(s.gemm("forward", 1).macs for s in layers[:6])
    assert per_sample == 24 * (12 * 32 * 32 + 2 * 24 * 32)


def test_trace_has_exact_causal_structure(tmp_path):
    path = write_transformer(CFG, tmp_path / "t.trace", density={"x": 0.5}, seed=1)
    tr = load(path)
    tri = 24 * 25 // 2  # entries with key j <= query i, per (sample, head)
    with tr.iteration(0) as it:
        for li, spec in enumerate(tr.layers):
            if spec.attention is None:
                assert it.mask(li, "y_sel") is None
                continue
            if spec.attention["role"] == "scores":
                sel = it.mask(li, "y_sel")
                assert it.count(li, "y_sel") == 3 * 4 * tri
                assert (sel == np.tri(24, dtype=bool)).all()
                assert not np.triu(it.mask(li, "dy"), 1).any()
            else:
                assert not np.triu(it.mask(li, "x"), 1).any()  # P is zero above the diagonal
            for t in ("x", "w", "dy"):
                assert it.count(li, t) == int(it.mask(li, t).sum())


@pytest.mark.parametrize("dense", ["a", "b", None])
def test_masked_product_sum_matches_a_scalar_reference(dense):
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 5, 3)) < 0.6, rng.random((2, 3, 4)) < 0.6
    if dense == "a":
        a[:] = True
    if dense == "b":
        b[:] = True
    keep = rng.random((2, 5, 4)) < 0.5
    ref = sum(int(a[g, i, r] and b[g, r, j] and keep[g, i, j])
              for g in range(2) for i in range(5) for r in range(3) for j in range(4))
    assert _masked_product_sum(a, b, keep) == ref


def test_parse_config_presets_and_errors():
    c = parse_config("gpt2-small,seq=128", batch=8)
    assert (c.layers, c.d_model, c.heads, c.seq, c.batch) == (12, 768, 12, 128, 8)
    assert (c.vocab, c.inner) == (50257, 3072)
    assert parse_config("layers=1,d_model=8,heads=2,seq=4,causal=0").causal is False
    for bad, msg in (("gpt5", "unknown preset"), ("layers=1", "give d_model"), ("size=3", "unknown key"),
                     ("layers=x,d_model=8,heads=2,seq=4", "not an integer"),
                     ("layers=1,d_model=10,heads=4,seq=4", "not a multiple of heads")):
        with pytest.raises(ValueError, match=msg):
            parse_config(bad)
    assert set(GEMM_PASSES) == {"forward", "backward_data", "backward_weight"}
