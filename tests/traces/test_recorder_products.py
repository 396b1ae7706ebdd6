"""Products of two activations (attention) are recorded as matmul layers, exactly as the tensors
hold them: hand-written attention, every CPU SDPA backend, masks; unrecordable ones are refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

import traces
from traces import RecorderError
from traces.format.validate import validate

N, L, H, D = 3, 6, 2, 4  # samples, sequence, heads, head dim


def heads(t: torch.Tensor) -> torch.Tensor:
    """(N, L, H·D) -> (N, H, L, D)."""
    return t.view(t.shape[0], L, H, D).transpose(1, 2)


class HandAttention(nn.Module):
    """Causal attention written out: q @ kᵀ, masked_fill, softmax, p @ v; ReLU on q and v makes
    the operands sparse."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(H * D, 3 * H * D)
        self.out = nn.Linear(H * D, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split(H * D, dim=-1)
        q, k, v = heads(torch.relu(q)), heads(k), heads(torch.relu(v))
        s = q @ k.transpose(-2, -1)
        causal = torch.ones(L, L, dtype=torch.bool).tril()
        p = torch.softmax((s / math.sqrt(D)).masked_fill(~causal, float("-inf")), -1)
        o = p @ v
        return self.out(o.transpose(1, 2).reshape(x.shape[0], L, H * D)).mean(1)


def independent(model: HandAttention, x: torch.Tensor, target: torch.Tensor) -> dict:
    """The products' tensors recomputed functionally, with their gradients from autograd."""
    q, k, v = F.linear(x, model.qkv.weight, model.qkv.bias).split(H * D, dim=-1)
    q, kt, v = heads(torch.relu(q)), heads(k).transpose(-2, -1), heads(torch.relu(v))
    s = torch.matmul(q, kt)
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    p = torch.softmax((s / math.sqrt(D)).masked_fill(~causal, float("-inf")), -1)
    o = torch.matmul(p, v)
    y = F.linear(o.transpose(1, 2).reshape(N, L, H * D), model.out.weight, model.out.bias).mean(1)
    loss = F.cross_entropy(y, target)
    ds, dq, dkt, do, dp, dv = torch.autograd.grad(loss, [s, q, kt, o, p, v])
    return {"matmul": {"x": q, "w": kt, "y": s, "dy": ds, "dx": dq, "dw": dkt},
            "matmul#1": {"x": p, "w": v, "y": o, "dy": do, "dx": dp, "dw": dv}}


def train(model: nn.Module, path, steps: int = 2, seed: int = 0, **kw) -> list[float]:
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    with traces.record(model, path, every=1, optimizer=opt, **kw) as rec:
        for _ in range(steps):
            x, t = torch.randn(N, L, H * D), torch.randint(0, 5, (N,))
            opt.zero_grad()
            loss = F.cross_entropy(model(x), t)
            loss.backward()
            opt.step()
            rec.step(loss=loss.item())
            losses.append(loss.item())
    return losses


def test_hand_written_attention_records_both_products_exactly(tmp_path):
    torch.manual_seed(1)
    model = HandAttention()
    torch.manual_seed(2)
    x, target = torch.randn(N, L, H * D), torch.randint(0, 5, (N,))
    truth = independent(model, x, target)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, tmp_path / "t", every=1, optimizer=opt) as rec:
        opt.zero_grad()
        F.cross_entropy(model(x), target).backward()
        opt.step()
        rec.step()
    tr = traces.load(tmp_path / "t")
    validate(tr)
    by_name = {s.name: s for s in tr.layers}
    assert [s.kind for s in tr.layers] == ["linear", "matmul", "matmul", "linear"]
    scores, context = by_name["matmul"], by_name["matmul#1"]
    assert (scores.x_shape, scores.w_shape, scores.y_shape) == ((H, L, D), (H, D, L), (H, L, L))
    assert scores.groups == H
    assert (context.x_shape, context.w_shape, context.y_shape) == ((H, L, L), (H, L, D), (H, L, D))
    assert scores.attention is None and scores.parameter is None and scores.module_type == "matmul"
    with tr.iteration(0) as it:
        for name, tensors in truth.items():
            li = tr.layer_index(name)
            for t, value in tensors.items():
                nz = (value != 0).numpy()
                assert it.count(li, t) == int(nz.sum()), (name, t)
                if t != "dw":
                    assert np.array_equal(it.mask(li, t), nz), (name, t)
    # explicit attention computes every score: no structure is recorded
    assert it.count(tr.layer_index("matmul"), "y_sel") is None


@pytest.mark.parametrize("backend, name", [(None, "flash"), (SDPBackend.MATH, "math"),
                                           (SDPBackend.FLASH_ATTENTION, "flash")])
def test_every_cpu_sdpa_backend_records_causal_attention(tmp_path, backend, name):
    """F.scaled_dot_product_attention (on the CPU: the fused flash kernel by default, the math one
    under sdpa_kernel) records as a scores/context pair with the causal structure in y_sel: per
    sample and head L(L+1)/2 of L² scores; the replay's effectual forward score MACs with dense Q, K
    are exactly L(L+1)/2·D per head."""
    class Sdpa(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(H * D, 3 * H * D)
            self.out = nn.Linear(H * D, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = (heads(t) for t in self.qkv(x).split(H * D, dim=-1))
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.out(o.transpose(1, 2).reshape(x.shape[0], L, H * D)).mean(1)

    torch.manual_seed(0)
    model = Sdpa()
    plain = Sdpa()
    plain.load_state_dict(model.state_dict())
    context = sdpa_kernel(backend) if backend is not None else torch.autograd.graph.saved_tensors_hooks(
        lambda t: t, lambda t: t)
    with context:
        recorded = train(model, tmp_path / "t")
        torch.manual_seed(0)
        opt = torch.optim.SGD(plain.parameters(), lr=0.1)
        unrecorded = []
        for _ in range(2):
            x, t = torch.randn(N, L, H * D), torch.randint(0, 5, (N,))
            opt.zero_grad()
            loss = F.cross_entropy(plain(x), t)
            loss.backward()
            opt.step()
            unrecorded.append(loss.item())
    assert recorded == pytest.approx(unrecorded, rel=1e-5)  # the same training, up to rounding
    tr = traces.load(tmp_path / "t")
    validate(tr)
    scores, ctx = tr.layers[1], tr.layers[2]
    assert (scores.name, ctx.name) == ("scores", "context")
    assert scores.attention == {"call": "(model)", "role": "scores", "causal": True, "backend": name}
    assert ctx.attention["role"] == "context" and ctx.attention["call"] == scores.attention["call"]
    with tr.iteration(1) as it:
        assert it.count(1, "y_sel") == N * H * L * (L + 1) // 2
        sel = it.mask(1, "y_sel")
        assert np.array_equal(sel, np.broadcast_to(np.tril(np.ones((L, L), bool)), (N, H, L, L)))
        assert not (it.mask(1, "dy") & ~sel).any()  # no gradient reaches a masked score
        assert np.array_equal(it.mask(2, "x"), sel)  # softmax is positive where selected
    from hwsim.simulate import simulate

    rows = simulate(tr, "edge-npu", passes=("forward",), layers=["scores"]).to_frame()
    assert set(rows["effectual_macs"]) == {N * H * L * (L + 1) // 2 * D}
    assert set(rows["algorithmic_macs"]) == {N * H * L * L * D}


def test_sdpa_masks_are_the_structure(tmp_path):
    """A boolean padding mask and a float mask with -inf entries select exactly what they keep."""
    keep = torch.ones(N, 1, L, L, dtype=torch.bool)
    keep[1, :, :, 4:] = False  # sample 1: the last two keys are padding
    bias = torch.zeros(L, L).masked_fill(torch.eye(L, dtype=torch.bool), float("-inf"))

    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(H * D, 3 * H * D)
            self.out = nn.Linear(H * D, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = (heads(t) for t in self.qkv(x).split(H * D, dim=-1))
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=keep) + \
                F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            return self.out(o.transpose(1, 2).reshape(x.shape[0], L, H * D)).mean(1)

    train(Masked(), tmp_path / "t", steps=1)
    tr = traces.load(tmp_path / "t")
    assert [s.name for s in tr.layers] == ["qkv", "scores", "context", "scores#1", "context#1", "out"]
    assert tr.layers[3].attention["call"] != tr.layers[1].attention["call"]
    with tr.iteration(0) as it:
        assert np.array_equal(it.mask(1, "y_sel"), np.broadcast_to(keep.numpy(), (N, H, L, L)))
        assert np.array_equal(it.mask(3, "y_sel"),
                              np.broadcast_to(~np.eye(L, dtype=bool), (N, H, L, L)))


def test_einsum_and_bmm_between_activations_record(tmp_path):
    """einsum with heads and bmm on the (N·H, L, D) layout are per-sample batched products."""
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(H * D, 3 * H * D)
            self.out = nn.Linear(H * D, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = (heads(t) for t in self.qkv(x).split(H * D, dim=-1))
            s = torch.einsum("nhld,nhmd->nhlm", q, k).softmax(-1)
            o = torch.bmm(s.reshape(-1, L, L), v.reshape(-1, L, D)).view(x.shape[0], H, L, D)
            return self.out(o.transpose(1, 2).reshape(x.shape[0], L, H * D)).mean(1)

    train(Mixed(), tmp_path / "t", steps=1)
    tr = traces.load(tmp_path / "t")
    validate(tr)
    e, b = tr.layers[1], tr.layers[2]
    assert (e.name, e.module_type, e.x_shape, e.w_shape, e.y_shape) == \
        ("einsum", "einsum", (H, L, D), (H, D, L), (H, L, L))
    assert (b.name, b.module_type, b.x_shape, b.w_shape, b.groups) == ("bmm", "bmm", (H, L, L), (H, L, D), H)


def test_a_product_across_the_batch_is_refused_naming_op_and_line(tmp_path):
    class Gram(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.fc(x)
            return (h @ h.T).sum(1, keepdim=True)  # mixes the samples

    model = Gram()
    with pytest.raises(RecorderError, match=r"aten\.mm at .*test_recorder_products\.py:\d+ in forward: "
                                            r"`return \(h @ h\.T\)\.sum\(1, keepdim=True\)"):
        with traces.record(model, tmp_path / "t"):
            model(torch.randn(3, 4)).sum().backward()


@pytest.mark.parametrize("choice, name", [(2, "efficient"), (3, "cudnn")])
def test_the_backend_torch_would_choose_is_recorded(tmp_path, monkeypatch, choice, name):
    """Off the CPU, torch chooses the memory-efficient or cuDNN kernel; the recording runs the same
    decomposition whatever the choice (torch._fused_sdp_choice, stood in for here) and names it."""
    class Sdpa(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(H * D, 3 * H * D)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = (heads(t) for t in self.qkv(x).split(H * D, dim=-1))
            return F.scaled_dot_product_attention(q, k, v).mean((1, 2, 3))[:, None].expand(-1, 5)

    monkeypatch.setattr(torch, "_fused_sdp_choice", lambda *a, **k: choice)
    train(Sdpa(), tmp_path / "t", steps=1)
    tr = traces.load(tmp_path / "t")
    assert [s.attention["backend"] for s in tr.layers[1:]] == [name, name]
    assert tr.layers[1].attention["causal"] is False
    with tr.iteration(0) as it:
        assert it.count(1, "y_sel") is None  # no structure: every score is computed


def test_a_backend_that_cannot_run_still_raises(tmp_path):
    """On the CPU the memory-efficient kernel does not exist: forcing it fails as it does unrecorded."""
    class Sdpa(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(H * D, 3 * H * D)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = (heads(t) for t in self.qkv(x).split(H * D, dim=-1))
            return F.scaled_dot_product_attention(q, k, v).sum()

    model = Sdpa()
    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
        with pytest.raises(RuntimeError, match="No viable backend"):
            model(torch.randn(N, L, H * D))
        with pytest.raises(RuntimeError, match="No viable backend"):
            with traces.record(model, tmp_path / "t"):
                model(torch.randn(N, L, H * D))


def test_products_keep_masks_of_the_first_samples_only(tmp_path):
    """With mask_samples, both operands' masks (B included: it is an activation) hold the first
    samples; the counts are the whole batch's."""
    torch.manual_seed(0)
    train(HandAttention(), tmp_path / "t", steps=1, mask_samples=2)
    tr = traces.load(tmp_path / "t")
    validate(tr)
    with tr.iteration(0) as it:
        li = tr.layer_index("matmul")
        assert it.mask(li, "w").shape == (2, H, D, L) and it.mask(li, "y").shape == (2, H, L, L)
        assert it.mask(li, "w").sum() <= it.count(li, "w") <= it.mask(li, "w").sum() + H * D * L


def test_sdpa_without_a_sample_dimension_is_refused_naming_op_and_line(tmp_path):
    """Attention over the whole batch as one sequence (2-D q, k, v: no per-sample form) runs as it
    is (on the CPU, torch's math path: aten.mm), and the GEMM watch refuses it with the line that
    called it."""
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 12)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self.fc(x).split(4, dim=-1)
            return F.scaled_dot_product_attention(q, k, v).sum()  # q: (batch, 4)

    model = Flat()
    with pytest.raises(RecorderError, match=r"aten\.mm at .*test_recorder_products\.py:\d+ in forward: "
                                            r"`return F\.scaled_dot_product_attention\(q, k, v\)"):
        with traces.record(model, tmp_path / "t"):
            model(torch.randn(3, 4)).backward()


@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_records_its_products(tmp_path, need_weights):
    """nn.MultiheadAttention with a causal mask: with need_weights its bmm/baddbmm pair (backend
    explicit), without it SDPA; either way one attention call's scores and context, the structure
    in the scores' y_sel."""
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(H * D, H * D)
            self.attn = nn.MultiheadAttention(H * D, H, batch_first=True)
            self.out = nn.Linear(H * D, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.inp(x))
            self.h = h.detach()  # the projections' input, per sample (N, L, E)
            mask = torch.ones(L, L, dtype=torch.bool).triu(1)  # True: not allowed
            a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=need_weights)
            return self.out(a).mean(1)

    block = Block()
    train(block, tmp_path / "t", steps=1)
    tr = traces.load(tmp_path / "t")
    validate(tr)
    products = [s for s in tr.layers if s.kind == "matmul"]
    assert [s.attention["role"] for s in products] == ["scores", "context"]
    assert products[0].attention["backend"] == ("explicit" if need_weights else "flash")
    assert (products[0].x_shape, products[0].w_shape, products[0].groups) == ((H, L, D), (H, D, L), H)
    with tr.iteration(0) as it:
        li = tr.layer_index(products[0].name)
        assert it.count(li, "y_sel") == N * H * L * (L + 1) // 2
    # its projections (sequence-major inside F.multi_head_attention_forward) are per-sample linears
    proj = {s.parameter: s for s in tr.layers if s.kind == "linear" and s.parameter.startswith("attn.")}
    assert proj["attn.in_proj_weight"].x_shape == (L, H * D)
    assert proj["attn.in_proj_weight"].y_shape == (L, 3 * H * D)
    assert proj["attn.out_proj.weight"].x_shape == (L, H * D)
    with tr.iteration(0) as it:  # sample-major masks, not the sequence-major layout they ran in
        assert np.array_equal(it.mask(tr.layer_index(proj["attn.in_proj_weight"].name), "x"),
                              (block.h != 0).numpy())


def test_a_transformer_encoder_records_unmodified(tmp_path):
    """nn.TransformerEncoder (self-attention through nn.MultiheadAttention, its feed-forward
    Linear modules) records every GEMM of a layer: projections, scores, context, feed-forward."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=H * D, nhead=H, dim_feedforward=16, batch_first=True)
    model = nn.Sequential(nn.Linear(H * D, H * D), nn.TransformerEncoder(layer, num_layers=1),
                          nn.Flatten(), nn.Linear(L * H * D, 5))
    train(model, tmp_path / "t", steps=1)
    tr = traces.load(tmp_path / "t")
    validate(tr)
    attn = "1.layers.0.self_attn"
    assert [(s.name, s.kind) for s in tr.layers[1:6]] == [
        (f"{attn}.in_proj_weight", "linear"), (f"{attn}.scores", "matmul"), (f"{attn}.context", "matmul"),
        (f"{attn}.out_proj.weight", "linear"), ("1.layers.0.linear1", "linear")]
    assert tr.layers[2].x_shape == (H, L, D) and tr.layers[2].attention["role"] == "scores"


def test_a_flattened_input_times_a_parameter_records_per_sample(tmp_path):
    """``F.linear(h.view(-1, d), W)`` with a bare parameter (a router, GPT-2's Conv1D): the
    (N·L, d) input is recorded per sample as (L, d) (a name clash made it a TypeError once)."""

    class Router(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Linear(4, 6)
            self.weight = torch.nn.Parameter(torch.randn(3, 6))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.emb(x)
            return F.linear(h.reshape(-1, 6), self.weight).sum()

    model = Router()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, tmp_path / "t", every=1, optimizer=opt) as rec:
        opt.zero_grad()
        model(torch.randn(2, 5, 4)).backward()
        opt.step()
        rec.step()
    spec = {s.name: s for s in traces.load(tmp_path / "t").layers}["weight"]
    assert (spec.x_shape, spec.y_shape) == ((5, 6), (5, 3))


def test_baddbmm_with_keyword_operands_records_and_keeps_its_values(tmp_path):
    """BLOOM's scores: ``alibi.baddbmm(batch1=q, batch2=kᵀ, beta=1, alpha=1/√d)``, the operands by
    keyword (refused as an unrecorded product once); recorded as a (L, d)·(d, L) matmul per head
    with the same values as the unrecorded call."""

    class Alibi(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(8, 24)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, length, _ = x.shape
            heads = self.qkv(x).reshape(n, length, 3, 2, 4).permute(2, 0, 3, 1, 4)
            q, k, v = heads.reshape(3, n * 2, length, 4)
            bias = torch.linspace(-1, 0, length).expand(n * 2, 1, length)
            scores = bias.baddbmm(batch1=q, batch2=k.transpose(1, 2), beta=1.0, alpha=0.5)
            return torch.bmm(scores.softmax(-1), v).square().sum()

    torch.manual_seed(0)
    model, x = Alibi(), torch.randn(3, 5, 8)
    expected = model(x).item()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with traces.record(model, tmp_path / "t", every=1, optimizer=opt) as rec:
        opt.zero_grad()
        loss = model(x)
        loss.backward()
        opt.step()
        rec.step()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    products = [s for s in traces.load(tmp_path / "t").layers if s.kind == "matmul"]
    assert [(s.module_type, s.x_shape, s.w_shape) for s in products] == [
        ("baddbmm", (2, 5, 4), (2, 4, 5)), ("bmm", (2, 5, 5), (2, 5, 4))]
