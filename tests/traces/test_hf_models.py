"""Hugging Face ``transformers`` models record unmodified, validate and replay on the three families.

GPT-2, BERT and ViT are built from tiny configs with random weights (nothing is downloaded), in
both attention implementations: ``sdpa`` (the default, one SDPA call per attention) and ``eager``
(explicit matmuls). Their linears (``nn.Linear``, GPT-2's ``Conv1D`` products), embeddings and
attention products are layer records; LayerNorm, GELU, softmax, dropout and residual adds are the
``vector_ops`` table.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import traces
from hwsim.simulate import simulate
from traces.format.validate import validate

transformers = pytest.importorskip("transformers")

N, L, D, LAYERS = 2, 8, 16, 2


def tokens(g: torch.Generator) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.randint(0, 50, (N, L), generator=g),
            "labels": torch.randint(0, 50, (N, L), generator=g)}


def gpt2(impl: str):
    config = transformers.GPT2Config(attn_implementation=impl, n_layer=LAYERS, n_head=2, n_embd=D,
                                     vocab_size=50, n_positions=L)
    return transformers.GPT2LMHeadModel(config), tokens


def bert(impl: str):
    config = transformers.BertConfig(attn_implementation=impl, num_hidden_layers=LAYERS,
                                     num_attention_heads=2, hidden_size=D, intermediate_size=2 * D,
                                     vocab_size=50, max_position_embeddings=L)
    return transformers.BertForMaskedLM(config), tokens


def vit(impl: str):
    config = transformers.ViTConfig(attn_implementation=impl, num_hidden_layers=LAYERS, num_attention_heads=2,
                                    hidden_size=D, intermediate_size=2 * D, image_size=8, patch_size=4,
                                    num_channels=3, num_labels=3)
    return transformers.ViTForImageClassification(config), lambda g: {
        "pixel_values": torch.randn(N, 3, 8, 8, generator=g),
        "labels": torch.randint(0, 3, (N,), generator=g)}


def opt(impl: str):
    config = transformers.OPTConfig(attn_implementation=impl, num_hidden_layers=LAYERS, num_attention_heads=2,
                                    hidden_size=D, ffn_dim=2 * D, word_embed_proj_dim=D, vocab_size=50,
                                    max_position_embeddings=L)
    return transformers.OPTForCausalLM(config), tokens


def llama(impl: str):
    config = transformers.LlamaConfig(attn_implementation=impl, num_hidden_layers=LAYERS,
                                      num_attention_heads=4, num_key_value_heads=2, hidden_size=D,
                                      intermediate_size=2 * D, vocab_size=50, max_position_embeddings=L)
    return transformers.LlamaForCausalLM(config), tokens


def record(path, build, impl: str) -> traces.Trace:
    torch.manual_seed(0)
    model, batch = build(impl)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        for _ in range(2):
            opt.zero_grad()
            model(**batch(g)).loss.backward()
            opt.step()
            rec.step()
    tr = traces.load(path)
    validate(tr)
    return tr


def kinds(tr: traces.Trace) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in tr.layers:
        out[s.kind] = out.get(s.kind, 0) + 1
    return out


@pytest.fixture(scope="module")
def gpt2_sdpa(tmp_path_factory) -> traces.Trace:
    return record(tmp_path_factory.mktemp("gpt2") / "t", gpt2, "sdpa")


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_gpt2_records_its_conv1d_products_tied_head_and_attention(tmp_path, gpt2_sdpa, impl):
    tr = gpt2_sdpa if impl == "sdpa" else record(tmp_path / "t", gpt2, impl)
    # per block: c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj (Conv1D products) and two attention
    # products; wte and wpe embeddings; the head is a Linear tied to wte
    assert kinds(tr) == {"embedding": 2, "linear": 4 * LAYERS + 1, "matmul": 2 * LAYERS}
    by_name = {s.name: s for s in tr.layers}
    c_attn = by_name["transformer.h.0.attn.c_attn.weight"]
    assert (c_attn.x_shape, c_attn.w_shape, c_attn.module_type) == ((L, D), (3 * D, D), "Conv1D")
    assert by_name["lm_head"].parameter == by_name["transformer.wte"].parameter == "transformer.wte.weight"
    vec = {r["kind"] for r in tr.manifest["vector_ops"]}
    assert {"layer_norm", "add", "tanh", "softmax"} <= vec  # GPT-2's gelu_new is written out with tanh
    assert "elementwise" not in vec  # every operator it runs has a kind of its own


@pytest.mark.parametrize(("build", "expected"), [
    (bert, {"embedding": 3, "linear": 6 * LAYERS + 2, "matmul": 2 * LAYERS}),
    (vit, {"conv2d": 1, "linear": 6 * LAYERS + 1, "matmul": 2 * LAYERS}),
], ids=["bert", "vit"])
def test_bert_and_vit_record(tmp_path, build, expected):
    tr = record(tmp_path / "t", build, "sdpa")
    assert kinds(tr) == expected
    assert {"layer_norm", "gelu", "add"} <= {r["kind"] for r in tr.manifest["vector_ops"]}


@pytest.mark.parametrize("preset", ["edge-npu", "gpu-a100", "reram-isaac"])
def test_a_hf_gpt2_trace_replays_on_every_family(gpt2_sdpa, preset):
    tr = gpt2_sdpa
    df = simulate(tr, preset).to_frame()
    layers = set(df["layer"])
    assert {s.name for s in tr.layers} <= layers  # every layer has rows (a matmul, embedding, linear)
    vector_rows = {r["name"] for r in tr.manifest["vector_ops"]}
    if preset.startswith("gpu"):  # an SDPA call's score-shaped ops are priced with the GPU attention
        scores = {(s.module, s.y_shape[-2:]) for s in tr.layers
                  if s.attention and s.attention["role"] == "scores"}
        inside = {r["name"] for r in tr.manifest["vector_ops"]
                  if (r["module"], tuple(r["shape"][-2:])) in scores}
        assert inside and not inside & layers
        vector_rows -= inside
    assert vector_rows <= layers
    assert (df["cycles"] >= 0).all() and (df["energy_pj"] >= 0).all()
    work = (df["actual_macs"] > 0) | (df["vector_ops"] > 0)
    assert df.loc[work, "energy_pj"].gt(0).all()
    vec = df[df["vector_op_kind"].notna()]
    assert (vec["cycles"] > 0).all()  # a residual add's backward passes dy on: no row
    gemm = df[df["actual_macs"] > 0]
    assert not gemm.empty and set(gemm["pass"]) == {"forward", "backward_data", "backward_weight"}


def test_trace_info_and_stats_read_embedding_layers(gpt2_sdpa):
    """`hwsim trace info`'s layer table and the MAC accounting take a layer without GEMMs."""
    from traces.stats import summary
    from traces.stats.accounting import pass_counts

    table = summary.layer_table(gpt2_sdpa)
    wte = table[table["layer"] == "transformer.wte"].iloc[0]
    assert wte["kind"] == "embedding" and wte["fwd M×K×N"] == ""  # no GEMM to show
    with gpt2_sdpa.iteration(0) as it:
        assert pass_counts(gpt2_sdpa.layers[0], it.batch, x=it.mask(0, "x"), w=it.mask(0, "w")) == []


def test_opt_records_its_own_forward_positions_and_flattened_mlp(tmp_path):
    """OPT's learned positions are an nn.Embedding subclass called with the attention mask (it
    computes the indices itself), and its MLP runs on the tokens flattened to (N·L, d): the lookup
    of its own weight is recorded, and fc1/fc2 per sample as (L, d)."""
    tr = record(tmp_path / "t", opt, "sdpa")
    assert kinds(tr) == {"embedding": 2, "linear": 6 * LAYERS + 1, "matmul": 2 * LAYERS}
    by_name = {s.name: s for s in tr.layers}
    fc1 = by_name["model.decoder.layers.0.fc1"]
    assert (fc1.x_shape, fc1.y_shape) == ((L, D), (L, 2 * D))
    index = [s.name for s in tr.layers].index("model.decoder.embed_positions")
    with tr.iteration(0) as it:
        rows = np.flatnonzero(it.mask(index, "dw_needed").any(axis=1))
    assert rows.tolist() == list(range(2, L + 2))  # no padding: positions 0..L-1 at OPT's offset 2
    for preset in ("edge-npu", "gpu-a100", "reram-isaac"):
        assert (simulate(tr, preset).to_frame()["energy_pj"] >= 0).all()


def test_llama_records_grouped_query_attention_and_gated_mlp(tmp_path):
    """Llama: RMSNorm, rotary positions, grouped-query attention (2 key/value heads for 4 query
    heads), a SiLU-gated MLP of three linears, an untied head."""
    tr = record(tmp_path / "t", llama, "sdpa")
    assert kinds(tr) == {"embedding": 1, "linear": 7 * LAYERS + 1, "matmul": 2 * LAYERS}
    vec = {r["kind"] for r in tr.manifest["vector_ops"]}
    assert {"silu", "rsqrt", "softmax"} <= vec  # SiLU gate, RMSNorm as x·rsqrt(mean(x²)+ε)
    for preset in ("edge-npu", "gpu-a100", "reram-isaac"):
        assert (simulate(tr, preset).to_frame()["energy_pj"] >= 0).all()


def test_mixtral_grouped_gemm_experts_are_refused_not_dropped(tmp_path):
    """Mixtral's experts run one ``aten._grouped_mm`` over the routed tokens: hwsim has no record
    for it yet, so the recording stops naming the operator and its line in transformers, instead
    of a trace without the expert MLPs."""
    config = transformers.MixtralConfig(num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                                        hidden_size=D, intermediate_size=2 * D, num_local_experts=4,
                                        num_experts_per_tok=2, vocab_size=50, max_position_embeddings=L)
    with pytest.raises(traces.RecorderError, match=r"aten\._grouped_mm.* at .*\.py:\d+"):
        record(tmp_path / "t", lambda impl: (transformers.MixtralForCausalLM(config), tokens), "sdpa")


LT, PAD = 6, [0, 3]  # encoder-decoders: target length; padded source tokens per sample (mask 0)


def _seq2seq_batch(g: torch.Generator) -> dict[str, torch.Tensor]:
    mask = torch.ones(N, L, dtype=torch.long)
    for n, p in enumerate(PAD):
        mask[n, L - p:] = 0
    return {"input_ids": torch.randint(3, 50, (N, L), generator=g), "attention_mask": mask,
            "labels": torch.randint(3, 50, (N, LT), generator=g)}


def t5(impl: str):
    """Relative position biases (one embedding per attention stack, looked up with (Lq, Lk)
    buckets shared by the batch), cross-attention over the padded source."""
    config = transformers.T5Config(attn_implementation=impl, vocab_size=50, d_model=D, d_kv=D // 2,
                                   d_ff=2 * D, num_layers=1, num_decoder_layers=1, num_heads=2,
                                   relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0)
    return transformers.T5ForConditionalGeneration(config), _seq2seq_batch


def bart(impl: str):
    """Learned positions (an nn.Embedding subclass making its own indices), cross-attention over
    the padded source."""
    config = transformers.BartConfig(attn_implementation=impl, vocab_size=50, d_model=D, encoder_layers=1,
                                     decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                                     encoder_ffn_dim=2 * D, decoder_ffn_dim=2 * D, max_position_embeddings=L,
                                     pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    return transformers.BartForConditionalGeneration(config), _seq2seq_batch


# per model: its builder, the attention calls (encoder self, decoder self, cross) and the projections
SEQ2SEQ = {
    "t5": (t5, ("encoder.block.0.layer.0.SelfAttention", "decoder.block.0.layer.0.SelfAttention",
                "decoder.block.0.layer.1.EncDecAttention"), ("q", "k")),
    "bart": (bart, ("model.encoder.layers.0.self_attn", "model.decoder.layers.0.self_attn",
                    "model.decoder.layers.0.encoder_attn"), ("q_proj", "k_proj")),
}


@pytest.fixture(scope="module", params=sorted(SEQ2SEQ))
def seq2seq(request, tmp_path_factory) -> tuple[str, traces.Trace]:
    name = request.param
    return name, record(tmp_path_factory.mktemp(name) / "t", SEQ2SEQ[name][0], "sdpa")


@pytest.mark.parametrize("preset", ["edge-npu", "gpu-a100", "reram-isaac"])
def test_encoder_decoders_record_cross_attention_padding_and_replay(seq2seq, preset):
    """HF T5 and BART unmodified: their masks (torch.finfo.min added to the scores, T5's position
    bias too, or is_causal) are the scores' structure: the decoder's causal self-attention keeps
    Lt(Lt+1)/2 scores per head, the cross-attention Lt·(L - p) and the encoder L·(L - p) for p
    padded source tokens."""
    name, tr = seq2seq
    _, (enc, dec, cross), (q, k) = SEQ2SEQ[name]
    assert kinds(tr) == {"embedding": 4, "linear": 17, "matmul": 6}  # q, k, v, o ×3, 2 MLP ×2, head
    by_name = {s.name: s for s in tr.layers}
    if name == "t5":
        bias = by_name[f"{dec}.relative_attention_bias"]
        assert (bias.x_shape, bias.y_shape) == ((LT, LT), (LT, LT, 2))  # buckets shared by the batch
    assert by_name[f"{cross}.{k}"].x_shape == (L, D) and by_name[f"{cross}.{q}"].x_shape == (LT, D)
    kept = {enc: sum(2 * L * (L - p) for p in PAD), dec: N * 2 * LT * (LT + 1) // 2,
            cross: sum(2 * LT * (L - p) for p in PAD)}
    with tr.iteration(1) as it:
        assert {c: it.count(f"{c}.scores", "y_sel") for c in kept} == kept
    df = simulate(tr, preset, iterations=[1]).to_frame()
    assert {s.name for s in tr.layers} <= set(df["layer"])
    fwd = df[(df["layer"] == f"{cross}.scores") & (df["pass"] == "forward")].iloc[0]
    assert fwd["algorithmic_macs"] == N * 2 * LT * L * (D // 2)
    assert fwd["effectual_macs"] == kept[cross] * (D // 2)  # Q and K dense: the kept scores' products
    assert (df["cycles"] >= 0).all() and df["cycles"].sum() > 0


@pytest.fixture(scope="module")
def plain_runs() -> dict[str, tuple[traces.Trace, dict]]:
    """The models' traces without checkpointing and their replays, made once (by the first test
    needing one)."""
    return {}


PRESETS = ("edge-npu", "gpu-a100", "reram-isaac")


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
@pytest.mark.parametrize("build", [gpt2, llama], ids=["gpt2", "llama"])
def test_gradient_checkpointing_records_the_recomputation_as_forward_work(tmp_path, build, reentrant,
                                                                        plain_runs):
    """``gradient_checkpointing_enable``: every block's forward runs again in the backward pass
    (Conv1D/linear products, SDPA, vector work): recorded as forward calls ``#1``; the forward MACs
    are the plain run's plus every block's, the backward and the updates the plain run's."""
    if build.__name__ not in plain_runs:
        tr0 = record(tmp_path / "plain", build, "sdpa")
        plain_runs[build.__name__] = tr0, {p: simulate(tr0, p).to_frame() for p in PRESETS}
    plain, frames = plain_runs[build.__name__]

    def checkpointed(impl: str):
        model, batch = build(impl)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
        return model, batch

    tr = record(tmp_path / "ckpt", checkpointed, "sdpa")
    block = [s.name for s in plain.layers if ".h." in s.name or ".layers." in s.name]
    # recomputed in backward, so the last block first
    assert sorted(s.name for s in tr.layers if "#1" in s.name) == sorted(f"{n}#1" for n in block)
    for preset in PRESETS:
        df0, df = frames[preset], simulate(tr, preset).to_frame()
        df0, df = df0[df0["iteration"] == 0], df[df["iteration"] == 0]
        by_pass0 = df0.groupby("pass")["algorithmic_macs"].sum()
        by_pass = df.groupby("pass")["algorithmic_macs"].sum()
        block_macs = df0[df0["layer"].isin(block) & (df0["pass"] == "forward")]["algorithmic_macs"].sum()
        assert by_pass["forward"] == by_pass0["forward"] + block_macs > by_pass0["forward"]
        assert by_pass["backward_data"] == by_pass0["backward_data"]
        assert by_pass["backward_weight"] == by_pass0["backward_weight"]
        assert sorted(df[df["pass"] == "update"]["layer"]) == sorted(df0[df0["pass"] == "update"]["layer"])
        assert (df["cycles"] >= 0).all() and (df["energy_pj"] >= 0).all()
