"""The transformer zoo: the Shakespeare corpus, the GPT-like model and the ViT, the methods on their
linears, and top-k attention (training only; recording and replay: test_transformer_traces.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from traces.methods import make_method
from traces.methods.topk_attention import topk_keep
from traces.training import train
from traces.zoo import text
from traces.zoo.datasets import load_dataset
from traces.zoo.models import build_model
from traces.zoo.transformer import GPT_PRESETS, VIT_PRESETS


def test_markdown_cleaning_by_hand():
    md = ("# Macbeth\n\n## ACT I\n\n_Thunder. Enter three Witches_\n\n**First Witch**  \n"
          "When shall we three meet again  \nIn thunder?\n__\\[Aside]_  \n*Exit.*\n'Ladies,'\\--or 1\\. so\n")
    assert text.plain_text(md) == ("Macbeth\n\nACT I\n\nThunder. Enter three Witches\n\nFirst Witch:\n"
                                   "When shall we three meet again\nIn thunder?\n[Aside]\nExit.\n"
                                   "'Ladies,'--or 1. so\n")


def test_corpus_split_and_windows():
    data = load_dataset("shakespeare", seq_len=16)
    assert len(text.corpus()) == 38 and len(text.test_plays()) == 3  # plays 10, 20, 30 held out
    assert sum(len(t) for _, t in text.corpus()) == 4_987_656  # docs/methods.md states it
    assert data.n_classes == len(data.vocabulary) == len(set(data.vocabulary)) == 80  # docs/methods.md
    assert list(data.vocabulary) == sorted(data.vocabulary)
    assert "*" not in data.vocabulary and "\\" not in data.vocabulary and "_" not in data.vocabulary
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == y.dtype == np.int64 and x.shape == y.shape and x.shape[1] == 16
        # non-overlapping consecutive windows: each target is the next character of the stream
        assert (y[:, :-1] == x[:, 1:]).all() and (y[:-1, -1] == x[1:, 0]).all()
    held_out = {name for name in text.test_plays()}
    test_text = "\n".join(t for name, t in text.corpus() if name in held_out)
    assert text.decode(data.x_test[:3], data.vocabulary) == test_text[:48]
    assert len(data.x_test) == (len(test_text) - 1) // 16
    ids = text.encode("To be, or not to be", data.vocabulary)
    assert text.decode(ids, data.vocabulary) == "To be, or not to be"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        text.encode("naïve", data.vocabulary)


def test_corpus_missing_and_tampered(monkeypatch):
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "distribution", missing)
    with pytest.raises(text.CorpusMissingError, match="make install"):
        text.play_files()
    monkeypatch.undo()
    monkeypatch.setattr(text, "CORPUS_SHA256", "0" * 64)
    with pytest.raises(text.CorpusMissingError, match="not the pinned corpus"):
        text.play_files()


def test_text_and_model_kinds_must_match():
    with pytest.raises(ValueError, match="needs a sequence model"):
        load_dataset("shakespeare")
    with pytest.raises(ValueError, match="not text"):
        load_dataset("digits", seq_len=8)


def _block_params(d: int) -> int:
    """qkv (3d² + 3d) + proj (d² + d) + fc (4d² + 4d) + proj (4d² + d) + two LayerNorms (4d)."""
    return 12 * d * d + 13 * d


def test_gpt_parameters_tied_head_and_causality():
    torch.manual_seed(0)
    p = GPT_PRESETS["gpt-tiny"]
    d, vocab, ctx = p["dim"], 81, p["context"]
    net = build_model("gpt-tiny", (ctx,), vocab)
    assert p["depth"] >= 4 and net.head.weight is net.wte.weight
    expected = vocab * d + ctx * d + p["depth"] * _block_params(d) + 2 * d  # head tied: no extra
    assert sum(q.numel() for q in net.parameters()) == expected
    idx = torch.randint(0, vocab, (2, ctx))
    out = net(idx)
    assert out.shape == (2, ctx, vocab)
    changed = idx.clone()
    changed[:, 20] = (changed[:, 20] + 1) % vocab
    out2 = net(changed)
    assert torch.equal(out[:, :20], out2[:, :20]) and not torch.allclose(out[:, 20:], out2[:, 20:])
    names = [b.name for b in net.blocks()]
    assert len(names) == 4 * p["depth"] and "head" not in names
    assert not any(b.classifier for b in net.blocks())


def test_vit_parameters():
    p = VIT_PRESETS["vit-tiny"]
    d, patch = p["dim"], p["patch"]
    net = build_model("vit-tiny", (1, 28, 28), 10)
    tokens = (28 // patch) ** 2 + 1
    expected = ((d * patch * patch + d) + d + tokens * d + p["depth"] * _block_params(d) + 2 * d
                + (10 * d + 10))
    assert sum(q.numel() for q in net.parameters()) == expected
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    blocks = net.blocks()
    assert blocks[0].name == "patch_embed" and blocks[-1].name == "head" and blocks[-1].classifier


@pytest.mark.parametrize("method", ["dense", "nm", "dst", "dsg", "set", "rigl", "snfs", "gmp", "topkast"])
def test_methods_convert_transformer_linears(method):
    torch.manual_seed(0)
    net = build_model("gpt-tiny", (32,), 81)
    meth = make_method(method, "shakespeare", "gpt-tiny")
    net = meth.prepare(net)
    assert net.head.weight is net.wte.weight  # the tied head is left alone
    assert type(net.head) is torch.nn.Linear
    layers = getattr(meth, "layers", {})
    depth = GPT_PRESETS["gpt-tiny"]["depth"]
    if method == "dsg":  # output selection only before the GELU
        assert sorted(layers) == [f"layers.{i}.mlp.fc" for i in range(depth)]
    elif method != "dense":
        assert len(layers) == 4 * depth and all(not n.startswith(("wte", "head")) for n in layers)
    net(torch.randint(0, 81, (2, 32))).sum().backward()
    if method == "nm":
        for layer in layers.values():
            groups = layer.prev_mask.reshape(layer.prev_mask.shape[0], -1, 4).sum(-1)
            assert (groups == 2).all()


def test_topk_keep_matches_a_scalar_reference():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(2, 3, 7, 7, generator=gen)
    for causal in (False, True):
        keep = topk_keep(scores, 3, causal)
        for b, h, i in np.ndindex(2, 3, 7):
            visible = list(range(i + 1)) if causal else list(range(7))
            ranked = sorted(visible, key=lambda j: -float(scores[b, h, i, j]))[:3]
            assert sorted(torch.nonzero(keep[b, h, i]).ravel().tolist()) == sorted(ranked)


def test_topk_attention_output_is_masked_softmax():
    torch.manual_seed(0)
    net = build_model("gpt-tiny", (32,), 81)
    meth = make_method("attn-topk", "shakespeare", "gpt-tiny", k=4)
    net = meth.prepare(net)
    attn = net.layers[0].attn
    x = torch.randn(2, 32, GPT_PRESETS["gpt-tiny"]["dim"])
    b, n, d = x.shape
    q, k, v = attn.qkv(x).view(b, n, 3, attn.heads, d // attn.heads).permute(2, 0, 3, 1, 4)
    s = q @ k.transpose(-2, -1) / math.sqrt(d // attn.heads)
    keep = topk_keep(s, 4, causal=True)
    ref = torch.softmax(s.masked_fill(~keep, float("-inf")), -1) @ v
    ref = attn.proj(ref.transpose(1, 2).reshape(b, n, d))
    assert torch.allclose(attn(x), ref, atol=1e-6)
    stats = meth.last_stats["layers.0.attn"]
    visible = 2 * attn.heads * 32 * 33 // 2
    kept = 2 * attn.heads * sum(min(i + 1, 4) for i in range(32))
    assert stats["selection_macs"] == visible * (d // attn.heads)
    assert stats["kept_fraction"] == round(kept / visible, 6)
    with pytest.raises(ValueError, match="no attention layers"):
        make_method("attn-topk").prepare(build_model("mlp", (64,), 10))


@pytest.mark.parametrize(("model", "method", "optimizer", "lr", "steps"), [
    ("gpt-tiny", "dense", "sgd", 0.1, 30), ("gpt-tiny", "nm", "sgd", 0.1, 30),
    ("gpt-tiny", "dst", "sgd", 0.1, 30),
    ("gpt-tiny", "attn-topk", "adamw", 3e-3, 30), ("vit-tiny", "dense", "adamw", 3e-3, 100)])
def test_transformers_learn(model, method, optimizer, lr, steps):
    torch.set_num_threads(1)
    losses: list[float] = []
    r = train(model=model, dataset="shakespeare" if model == "gpt-tiny" else "mnist", method=method, epochs=1,
              batch_size=32, max_batches=steps, test_samples=256, lr=lr, seed=0, optimizer=optimizer,
              progress=lambda p: losses.append(p["loss"]))
    assert r.iterations == len(losses) == steps and all(map(math.isfinite, losses))
    assert np.mean(losses[-10:]) < np.mean(losses[:10])  # it learns something
    assert 0 <= r.history[0]["test_accuracy"] <= 1


def test_adamw_refused_by_momentum_methods():
    with pytest.raises(ValueError, match="works with optimizer sgd"):
        train(model="mlp", method="rigl", optimizer="adamw", epochs=1, max_batches=1)


def test_lstm_of_linears_equals_nn_lstm():
    torch.manual_seed(0)
    net = build_model("lstm-tiny", (1, 28, 28), 10)
    hidden = net.rnn[0].hidden
    ref = torch.nn.LSTM(28, hidden, num_layers=2, batch_first=True)
    with torch.no_grad():
        for i, layer in enumerate(net.rnn):
            getattr(ref, f"weight_ih_l{i}").copy_(layer.ih.weight)
            getattr(ref, f"bias_ih_l{i}").copy_(layer.ih.bias)
            getattr(ref, f"weight_hh_l{i}").copy_(layer.hh.weight)
            getattr(ref, f"bias_hh_l{i}").zero_()
    x = torch.randn(3, 1, 28, 28)
    expected = net.out(ref(x[:, 0])[0][:, -1])
    assert torch.allclose(net(x), expected, atol=1e-5)
    names = [b.name for b in net.blocks()]
    assert names == ["rnn.0.ih", "rnn.0.hh", "rnn.1.ih", "rnn.1.hh", "out"]


def test_dst_thresholds_per_gate_and_unit_on_the_lstm():
    net = build_model("lstm-tiny", (1, 28, 28), 10)
    meth = make_method("dst", "mnist", "lstm-tiny")
    assert meth.params["alpha"] == 1e-4  # the official LSTM script's default
    net = meth.prepare(net)
    hidden = net.rnn[0].hidden
    for name in ("rnn.0.ih", "rnn.0.hh", "rnn.1.ih", "rnn.1.hh"):
        assert meth.layers[name].threshold.shape == (4 * hidden,)  # 4 gates × H units


def test_dst_lstm_script_smoke(tmp_path):
    import json
    import runpy

    script = runpy.run_path(str(__import__("pathlib").Path(__file__).parents[2] / "scripts" / "dst_lstm.py"))
    assert script["main"](["--smoke", "--epochs", "2", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "dst_lstm.json").read_text())
    assert [(r["model"], r["method"]) for r in rows] == [("lstm-tiny", "dst"), ("lstm-tiny", "dense")]
    for r in rows:
        assert len(r["history"]) == 2 and r["iterations"] == 6
        assert 0 < r["remaining_at_best"] <= 1 and r["remaining_last"] == r["history"][-1]["remaining"]
    assert "| lstm-tiny |" in (tmp_path / "dst_lstm.md").read_text()


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_first_step_moves_every_weight_by_lr(optimizer):
    """Adam's first update is ``lr · g / (|g| + eps)``: ``lr`` in magnitude wherever ``g`` ≠ 0
    (an SGD step at the same lr would move each weight by ``lr · |g|``, far less)."""
    r = train(model="mlp", dataset="digits", method="dense", epochs=1, batch_size=64, max_batches=1,
              lr=1e-3, optimizer=optimizer, seed=3)
    torch.manual_seed(3)
    data = load_dataset("digits")
    before = build_model("mlp", data.input_shape, data.n_classes)
    w0, w1 = before.fc1.weight.detach(), r.method.model.fc1.weight.detach()
    moved = (w1 - w0).abs()
    assert moved.max() <= 1e-3 * (1 + 1e-4)
    assert ((moved > 0.999e-3) | (moved == 0)).float().mean() > 0.99
