"""Cross-attention (``nn.MultiheadAttention`` with the query from one sequence and the key and
value from another: ``nn.TransformerDecoder``, ``nn.Transformer``) records exactly and replays.

Numbers come from closed forms (``Lq·Lk·d_head`` score products per head; with ``p`` padded keys,
``Lq·(Lk - p)·d_head`` of them are needed) and from a scalar loop over the recorded masks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from hwsim.simulate import simulate
from tests.hwsim.test_matmul_replay import scalar_effectual
from traces import RecorderError
from traces.format.layer import update_owners
from traces.format.validate import validate

N, LQ, LK, HEADS, E = 3, 5, 7, 2, 8  # samples, query and key lengths, heads, embedding (d_head 4)
D_HEAD = E // HEADS
PADDED = [0, 2, 3]  # masked (padding) keys at the end of each sample's memory
FAMILIES = ("edge-npu", "gpu-a100", "reram-isaac")


class Cross(nn.Module):
    """Decoder-style cross-attention: queries from ``tgt`` (N, Lq, E), keys and values from
    ``memory`` (N, Lk, E), a key padding mask and optionally a (non-causal) ``attn_mask``."""

    def __init__(self, need_weights: bool, **mha) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(E, HEADS, batch_first=True, **mha)
        self.out = nn.Linear(E, 4)
        self.need_weights = need_weights

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor,
                attn_mask: torch.Tensor | None = None, value: torch.Tensor | None = None) -> torch.Tensor:
        y, _ = self.attn(tgt, memory, memory if value is None else value, key_padding_mask=pad,
                         attn_mask=attn_mask, need_weights=self.need_weights)
        return self.out(y).mean(1)


def _padding() -> torch.Tensor:
    pad = torch.zeros(N, LK, dtype=torch.bool)  # True: a padded key, not attended to
    for n, p in enumerate(PADDED):
        if p:
            pad[n, LK - p:] = True
    return pad


def _record(model: nn.Module, path, inputs, steps: int = 2) -> tuple[traces.Trace, list[torch.Tensor]]:
    """Train ``steps`` SGD steps under the recorder; the trace and each step's model output."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    outputs = []
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        for _ in range(steps):
            opt.zero_grad()
            out = model(*inputs)
            outputs.append(out.detach())
            loss = F.cross_entropy(out, torch.arange(N) % 4)
            loss.backward()
            opt.step()
            rec.step(loss=loss.item())
    tr = traces.load(path)
    validate(tr)
    return tr, outputs


def _weights_updated_once(tr: traces.Trace, model: nn.Module) -> None:
    """The layers carrying updates cover every 2-D weight of the model exactly once."""
    owned = sum(int(np.prod(s.w_shape)) for s, own in zip(tr.layers, update_owners(tr.layers), strict=True)
                if own)
    assert owned == sum(p.numel() for p in model.parameters() if p.dim() == 2)


@pytest.mark.parametrize("need_weights", [True, False])  # bmm/baddbmm, or SDPA
def test_cross_attention_records_projections_scores_and_the_padding_structure(tmp_path, need_weights):
    torch.manual_seed(0)
    model = Cross(need_weights)
    g = torch.Generator().manual_seed(1)
    tgt, memory, pad = torch.randn(N, LQ, E, generator=g), torch.randn(N, LK, E, generator=g), _padding()
    expected = model(tgt, memory, pad).detach()  # unrecorded
    tr, outputs = _record(model, tmp_path / "t", (tgt, memory, pad), steps=1)
    torch.testing.assert_close(outputs[0], expected)  # (SDPA as its math decomposition: to rounding)
    layers = {s.name: s for s in tr.layers}
    q, kv = layers["attn.in_proj_weight[0:8]"], layers["attn.in_proj_weight[8:24]"]
    assert (q.x_shape, q.w_shape, q.parameter) == ((LQ, E), (E, E), "attn.in_proj_weight[0:8]")
    assert (kv.x_shape, kv.w_shape, kv.y_shape) == ((LK, E), (2 * E, E), (LK, 2 * E))
    scores, context = layers["attn.scores"], layers["attn.context"]
    assert (scores.x_shape, scores.w_shape, scores.y_shape) == ((HEADS, LQ, D_HEAD), (HEADS, D_HEAD, LK),
                                                                 (HEADS, LQ, LK))
    assert (context.x_shape, context.w_shape) == ((HEADS, LQ, LK), (HEADS, LK, D_HEAD))
    assert not scores.attention["causal"]
    assert scores.gemm("forward", N).macs == N * HEADS * LQ * LK * D_HEAD
    assert layers["attn.out_proj.weight"].x_shape == (LQ, E)
    _weights_updated_once(tr, model)
    keep = ~pad[:, None, None, :].expand(N, HEADS, LQ, LK).numpy()
    with tr.iteration(0) as it:
        li = tr.layer_index("attn.scores")
        np.testing.assert_array_equal(it.mask(li, "y_sel"), keep)  # exactly the unpadded keys
        masks = {"x": it.mask(li, "x"), "w": it.mask(li, "w"), "y_sel": it.mask(li, "y_sel")}
        np.testing.assert_array_equal(it.mask(tr.layer_index(kv.name), "x"), (memory != 0).numpy())
        np.testing.assert_array_equal(it.mask(tr.layer_index(kv.name), "w"),
                                      (model.attn.in_proj_weight[E:] != 0).detach().numpy())
        for block, rows in ((q, slice(0, E)), (kv, slice(E, 3 * E))):  # each block's own gradient rows
            assert it.count(block.name, "dw") == int((model.attn.in_proj_weight.grad[rows] != 0).sum())
    per_sample = [HEADS * LQ * (LK - p) * D_HEAD for p in PADDED]  # Q and K dense: all needed products
    assert scalar_effectual("forward", masks["x"], masks["w"], None, masks["y_sel"]) == sum(per_sample)
    for arch in FAMILIES:
        row = simulate(tr, arch, passes=("forward",), layers=["attn.scores"]).to_frame().iloc[0]
        assert row["algorithmic_macs"] == N * HEADS * LQ * LK * D_HEAD, arch
        assert row["effectual_macs"] == sum(per_sample), arch


def test_an_attention_mask_and_padding_are_the_scores_structure(tmp_path):
    """A non-causal boolean attn_mask (Lq × Lk) with the key padding: the scores' y_sel is neither's
    complement alone, and the replay's effectual MACs are the scalar loop's."""
    torch.manual_seed(0)
    model = Cross(False)
    g = torch.Generator().manual_seed(2)
    blocked = torch.rand(LQ, LK, generator=g) < 0.3
    blocked[:, 0] = False  # every query sees a key
    inputs = (torch.randn(N, LQ, E, generator=g), torch.relu(torch.randn(N, LK, E, generator=g)), _padding(),
              blocked)
    tr, _ = _record(model, tmp_path / "t", inputs)
    li = tr.layer_index("attn.scores")
    keep = ~(blocked[None, None] | _padding()[:, None, None, :]).numpy()
    with tr.iteration(1) as it:
        m = {k: it.mask(li, k) for k in ("x", "w", "y_sel", "dy")}
    np.testing.assert_array_equal(m["y_sel"], np.broadcast_to(keep, (N, HEADS, LQ, LK)))
    expect = scalar_effectual("forward", m["x"], m["w"], None, m["y_sel"])
    assert 0 < expect < N * HEADS * LQ * LK * D_HEAD
    for arch in FAMILIES:
        rep = simulate(tr, arch, iterations=[1], layers=["attn.scores"]).to_frame()
        fwd = rep[rep["pass"] == "forward"].iloc[0]
        assert fwd["effectual_macs"] == expect, arch
        bwd = rep[rep["pass"] == "backward_data"].iloc[0]
        assert bwd["effectual_macs"] == scalar_effectual("backward_data", None, m["w"], m["dy"], None), arch


def test_separate_key_and_value_sizes_record(tmp_path):
    """kdim, vdim != embed_dim: three projection parameters, each a linear on its own sequence."""
    torch.manual_seed(0)
    model = Cross(True, kdim=6, vdim=5)
    g = torch.Generator().manual_seed(3)
    inputs = (torch.randn(N, LQ, E, generator=g), torch.randn(N, LK, 6, generator=g), _padding(), None,
              torch.randn(N, LK, 5, generator=g))
    tr, _ = _record(model, tmp_path / "t", inputs)
    shapes = {s.name: (s.x_shape, s.w_shape) for s in tr.layers if s.kind == "linear"}
    assert shapes["attn.q_proj_weight"] == ((LQ, E), (E, E))
    assert shapes["attn.k_proj_weight"] == ((LK, 6), (E, 6))
    assert shapes["attn.v_proj_weight"] == ((LK, 5), (E, 5))
    _weights_updated_once(tr, model)


def test_a_key_other_than_the_value_uses_three_row_blocks(tmp_path):
    """Query, key and value three tensors (sequence-first, unbatched: one sample): PyTorch splits
    in_proj_weight in three row blocks, each a linear on its own sequence, together the parameter."""
    class Three(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(E, HEADS)

        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return self.attn(q, k, v)[0].sum()

    model = Three()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, tmp_path / "t", every=1, optimizer=opt) as rec:
        opt.zero_grad()
        model(torch.randn(LQ, E), torch.randn(LK, E), torch.randn(LK, E)).backward()
        opt.step()
        rec.step()
    tr = traces.load(tmp_path / "t")
    validate(tr)
    assert [(s.name, s.x_shape, s.w_shape) for s in tr.layers if s.kind == "linear"] == [
        ("attn.in_proj_weight[0:8]", (LQ, E), (E, E)), ("attn.in_proj_weight[8:16]", (LK, E), (E, E)),
        ("attn.in_proj_weight[16:24]", (LK, E), (E, E)), ("attn.out_proj.weight", (LQ, E), (E, E))]
    assert tr.layers[3].y_shape == (HEADS, LQ, LK)
    _weights_updated_once(tr, model)


def test_a_packed_projection_used_whole_and_in_blocks_is_refused(tmp_path):
    """One nn.MultiheadAttention run as self-attention (its whole in_proj_weight) and as
    cross-attention (its row blocks) in one step would update the rows twice: refused."""
    class Both(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(E, HEADS, batch_first=True)

        def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
            h, _ = self.attn(x, x, x)
            return self.attn(h, memory, memory)[0].sum()

    model = Both()
    with pytest.raises(RecorderError, match=r"attn\.in_proj_weight: rows 0:8 and 0:24 .* counted twice"):
        with traces.record(model, tmp_path / "t"):
            model(torch.randn(N, LQ, E), torch.randn(N, LK, E)).backward()


def test_an_encoder_decoder_transformer_trains_records_and_replays(tmp_path):
    """nn.Transformer (1 encoder and 1 decoder layer): the decoder's cross-attention has Lq != Lk,
    the padded source keys are its scores' structure, the target's self-attention is causal; the
    model trains, and the trace validates and replays on the three families."""
    class Seq2Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.t = nn.Transformer(d_model=E, nhead=HEADS, num_encoder_layers=1, num_decoder_layers=1,
                                    dim_feedforward=16, dropout=0.1, batch_first=True)
            self.head = nn.Linear(E, 4)

        def forward(self, src: torch.Tensor, tgt: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
            causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
            y = self.t(src, tgt, tgt_mask=causal, tgt_is_causal=True, src_key_padding_mask=pad,
                       memory_key_padding_mask=pad)
            return self.head(y)

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(4)
    src, tgt = torch.randn(N, LK, E, generator=g), torch.randn(N, LQ, E, generator=g)
    target = torch.arange(N * LQ).reshape(N, LQ) % 4
    net = Seq2Seq()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    with traces.record(net, tmp_path / "t", every=2, optimizer=opt) as rec:
        for _ in range(6):
            opt.zero_grad()
            loss = F.cross_entropy(net(src, tgt, _padding()).reshape(-1, 4), target.reshape(-1))
            loss.backward()
            opt.step()
            rec.step(loss=loss.item())
            losses.append(loss.item())
    assert losses[-1] < losses[0]
    tr = traces.load(tmp_path / "t")
    assert validate(tr).iterations == 6
    _weights_updated_once(tr, net)
    cross = "t.decoder.layers.0.multihead_attn"
    layers = {s.name: s for s in tr.layers}
    assert layers[f"{cross}.scores"].y_shape == (HEADS, LQ, LK)
    assert layers[f"{cross}.in_proj_weight[8:24]"].x_shape == (LK, E)
    assert layers["t.decoder.layers.0.self_attn.scores"].attention["causal"]
    with tr.iteration(tr.mask_iterations[-1]) as it:
        y_sel = it.mask(tr.layer_index(f"{cross}.scores"), "y_sel")
        assert int(y_sel.sum()) == sum(HEADS * LQ * (LK - p) for p in PADDED)
        enc = it.mask(tr.layer_index("t.encoder.layers.0.self_attn.scores"), "y_sel")
        assert int(enc.sum()) == sum(HEADS * LK * (LK - p) for p in PADDED)
    last = tr.mask_iterations[-1]
    for arch in FAMILIES:
        frame = simulate(tr, arch, iterations=[last]).to_frame()
        assert set(layers) <= set(frame["layer"]), arch
        assert (frame["cycles"] >= 0).all() and frame["cycles"].sum() > 0, arch
        gemm = frame[frame["layer"] == f"{cross}.scores"]
        assert set(gemm["pass"]) == {"forward", "backward_data", "backward_weight"}, arch
