"""The GPT-like model and the ViT train with dense, N:M and DST (and the GPT with top-k attention),
record, validate and replay on edge-npu, gpu-a100 and reram-isaac (tiny sizes, a few steps); so does
DST's LSTM (its gate GEMMs as linear calls per time step)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import traces
from hwsim.simulate import simulate
from traces.format.validate import validate
from traces.training import train
from traces.zoo.transformer import GPT_PRESETS, VIT_PRESETS

FAMILIES = ("edge-npu", "gpu-a100", "reram-isaac")
BATCH, MASKED = 4, 2  # samples per step; samples whose activation masks are stored


def _record(tmp_path, model: str, method: str, **params):
    torch.set_num_threads(1)
    gpt = model.startswith("gpt")
    out = tmp_path / f"{model}-{method}"
    r = train(model=model, dataset="shakespeare" if gpt else "mnist", method=method, epochs=1,
              batch_size=BATCH, max_batches=2, test_samples=16, every=1, mask_samples=MASKED, out=out,
              lr=1e-3, optimizer="adamw", method_params=params or None)
    tr = traces.load(r.trace)
    assert validate(tr).iterations == len(tr) == 2
    assert tr.manifest["optimizer"]["name"] == "AdamW"
    return tr


def _causal_kept(length: int, k: int | None = None) -> int:
    """Scores a causal head computes: row i sees i + 1 keys, of which top-k keeps min(i + 1, k)."""
    return sum(i + 1 if k is None else min(i + 1, k) for i in range(length))


def _replay_all(tr) -> None:
    last = tr.mask_iterations[-1]
    for arch in FAMILIES:
        frame = simulate(tr, arch, iterations=[last]).to_frame()
        assert {s.name for s in tr.layers} <= set(frame["layer"]), arch  # (+ the step's vector ops)
        assert (frame["cycles"] > 0).any() and np.isfinite(frame["cycles"]).all(), arch


@pytest.mark.parametrize("method", ["dense", "nm", "dst", "attn-topk"])
def test_gpt_records_and_replays(tmp_path, method):
    params = {"k": 4} if method == "attn-topk" else {}
    tr = _record(tmp_path, "gpt-tiny", method, **params)
    p = GPT_PRESETS["gpt-tiny"]
    length, heads = p["context"], p["heads"]
    kinds = [s.kind for s in tr.layers]
    assert kinds.count("matmul") == 2 * p["depth"]  # scores and context per block
    head = next(s for s in tr.layers if s.module == "head")
    assert head.parameter == "wte.weight"  # the tied head updates the embedding's parameter
    with tr.iteration(tr.mask_iterations[-1]) as it:
        for li, s in enumerate(tr.layers):
            if s.kind == "matmul" and s.attention["role"] == "scores":
                y_sel = it.mask(li, "y_sel")
                assert s.attention["causal"] or method == "attn-topk"
                expected = _causal_kept(length, 4 if method == "attn-topk" else None)
                assert int(y_sel.sum()) == y_sel.shape[0] * heads * expected
            if method == "attn-topk" and s.module.endswith("attn.qkv"):  # the selection's own work
                stats = it.layer_stats(li)  # every visible score of each sample and head: d_head MACs
                assert stats["selection_macs"] == BATCH * heads * _causal_kept(length) * (p["dim"] // heads)
                kept = _causal_kept(length, 4) / _causal_kept(length)
                assert stats["attention_kept_fraction"] == round(kept, 6)
            if method == "nm" and s.kind == "linear" and s.module != "head":
                w = it.mask(li, "w")
                assert (w.reshape(w.shape[0], -1, 4).sum(-1) == 2).all()  # 2:4 along the reduction
    _replay_all(tr)


@pytest.mark.parametrize("method", ["dense", "nm", "dst"])
def test_vit_records_and_replays(tmp_path, method):
    tr = _record(tmp_path, "vit-tiny", method)
    p = VIT_PRESETS["vit-tiny"]
    tokens = (28 // p["patch"]) ** 2 + 1
    assert tr.layers[0].kind == "conv2d" and tr.layers[0].module == "patch_embed"
    scores = [li for li, s in enumerate(tr.layers) if s.kind == "matmul" and s.attention["role"] == "scores"]
    assert len(scores) == p["depth"]
    with tr.iteration(tr.mask_iterations[-1]) as it:
        for li in scores:
            y_sel = it.mask(li, "y_sel")
            assert y_sel is None or int(y_sel.sum()) == y_sel.shape[0] * p["heads"] * tokens * tokens
    _replay_all(tr)


def test_dst_lstm_records_gate_gemms_per_step_and_replays(tmp_path):
    """DST's LSTM (tiny): per layer one input-projection call over the 28 steps and one recurrent
    call per step, all naming their layer's parameter; DST's invariants hold; every family replays."""
    torch.set_num_threads(1)
    r = train(model="lstm-tiny", dataset="mnist", method="dst", epochs=1, batch_size=BATCH,
              max_batches=2, test_samples=16, every=1, mask_samples=MASKED, out=tmp_path / "lstm",
              optimizer="adam", lr=1e-3)
    tr = traces.load(r.trace)
    assert validate(tr).iterations == 2
    hidden, steps = 16, 28
    assert len(tr.layers) == 2 * (1 + steps) + 1
    for layer, inputs in ((0, 28), (1, hidden)):
        ih = [s for s in tr.layers if s.parameter == f"rnn.{layer}.ih.weight"]
        hh = [s for s in tr.layers if s.parameter == f"rnn.{layer}.hh.weight"]
        assert [(s.x_shape, s.w_shape) for s in ih] == [((steps, inputs), (4 * hidden, inputs))]
        assert len(hh) == steps
        assert {(s.x_shape, s.w_shape) for s in hh} == {((hidden,), (4 * hidden, hidden))}
    _replay_all(tr)


@pytest.mark.parametrize("method", ["dsg", "set", "rigl", "snfs", "gmp", "topkast"])
def test_gpt_with_dsg_and_the_baselines_records_and_replays(tmp_path, method):
    torch.set_num_threads(1)
    r = train(model="gpt-tiny", dataset="shakespeare", method=method, epochs=1, batch_size=BATCH,
              max_batches=2, test_samples=16, every=1, mask_samples=MASKED, out=tmp_path / method, lr=0.01)
    tr = traces.load(r.trace)
    assert validate(tr).iterations == 2  # format and the method's invariants
    converted = set(r.method.layers)
    assert "head" not in converted and all(n.endswith(("qkv", "proj", "fc")) for n in converted)
    if method == "dsg":  # output selection on the MLPs' first linear only
        with tr.iteration(tr.mask_iterations[-1]) as it:
            for li, s in enumerate(tr.layers):
                selected = s.module in converted
                assert selected == s.module.endswith("mlp.fc")
                if selected:  # ceil((1 - γ)·4D) outputs kept per row, γ = 0.8
                    y_sel = it.mask(li, "y_sel")
                    assert (y_sel.sum(-1) == math.ceil(0.2 * s.y_shape[-1] - 1e-9)).all()
    _replay_all(tr)


def test_gpu_prices_an_sdpa_calls_softmax_once(tmp_path):
    """The recorded SDPA call's score-shaped vector ops (scale, mask, softmax) are the GPU attention's
    own work (inside the fused kernel, or the unfused path's mask and softmax kernels): the GPU leaves
    their vector rows out, an NPU (which runs them on its vector unit) keeps them."""
    import archs

    tr = _record(tmp_path, "gpt-tiny", "dense")
    scores = [s for s in tr.layers if s.attention and s.attention["role"] == "scores"]
    assert scores and all(s.attention["backend"] != "explicit" for s in scores)
    shapes = {(s.module, s.y_shape[-2:]) for s in scores}
    table = tr.manifest["vector_ops"]
    score_rows = {r["name"] for r in table if (r["module"], tuple(r["shape"][-2:])) in shapes}
    assert any("softmax" in r["kind"] for r in tr.manifest["vector_ops"] if r["name"] in score_rows)
    last = tr.mask_iterations[-1]
    npu = set(simulate(tr, "edge-npu", iterations=[last]).to_frame()["layer"])
    assert score_rows <= npu
    for mode in ("fused", "unfused"):
        gpu = archs.replace(archs.load("gpu-a100"), {"gpu.transformer.attention": mode})
        layers = set(simulate(tr, gpu, iterations=[last]).to_frame()["layer"])
        assert not score_rows & layers, mode
        assert {s.name for s in scores} <= layers  # the attention itself is priced
