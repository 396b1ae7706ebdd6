"""Recorder capture of recurrent layers, Conv1d, embeddings and parameter products (issue 26).

Numbers come from closed forms: G gate blocks of H rows per time step (LSTM 4, GRU 3, RNN 1),
the set of indices a batch looks up, and the per-pass GEMM dims of a linear layer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from hwsim.simulate import simulate
from traces import RecorderError
from traces.format.validate import validate

N, T, F_IN, H, P = 3, 5, 7, 6, 4  # batch, time steps, input features, hidden units, LSTM projection


def record(model: nn.Module, path, make_input, steps: int = 2, loss=None) -> traces.Trace:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        for _ in range(steps):
            opt.zero_grad()
            out = model(make_input(g))
            out = out[0] if isinstance(out, tuple) else out
            (loss or (lambda y: (y ** 2).mean()))(out).backward()
            opt.step()
            rec.step()
    tr = traces.load(path)
    validate(tr)
    return tr


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
def test_a_recurrent_step_is_its_gate_gemms(tmp_path, cls, gates):
    torch.manual_seed(0)
    rnn = cls(F_IN, H, batch_first=True)
    tr = record(rnn, tmp_path / "t", lambda g: torch.randn(N, T, F_IN, generator=g))
    names = [s.name for s in tr.layers]
    assert names == ["weight_ih_l0", "weight_hh_l0"] + [f"weight_hh_l0#{t}" for t in range(1, T)]
    proj, steps = tr.layers[0], tr.layers[1:]
    assert (proj.kind, proj.x_shape, proj.w_shape, proj.parameter) == ("linear", (T, F_IN), (gates * H, F_IN),
                                                                      "weight_ih_l0")
    assert proj.gemm("forward", N).macs == N * T * F_IN * gates * H
    for s in steps:  # one (N × H) · (H × G·H) GEMM per time step
        assert (s.kind, s.x_shape, s.w_shape, s.y_shape, s.parameter) == (
            "linear", (H,), (gates * H, H), (gates * H,), "weight_hh_l0")
        g = s.gemm("forward", N)
        assert (g.m, g.k, g.n, g.groups) == (N, H, gates * H, 1)
    total = sum(s.gemm("forward", N).macs for s in tr.layers)
    assert total == N * T * gates * H * (F_IN + H)
    with tr.iteration(1) as it:  # h_0 = 0: the first recurrent GEMM's input is all zeros
        assert it.count("weight_hh_l0", "x") == 0
        assert it.count("weight_hh_l0#1", "x") > 0
        assert it.count("weight_hh_l0", "dw") == gates * H * H


@pytest.mark.parametrize(("cls", "proj"), [(nn.LSTM, 0), (nn.LSTM, P), (nn.GRU, 0), (nn.RNN, 0)])
def test_the_decomposed_recurrent_layer_computes_what_the_fused_one_does(tmp_path, cls, proj):
    """Two layers, bidirectional, sequence-first, with an initial state (an LSTM also with
    projections): outputs and gradients of the recording (gate GEMMs) equal the fused kernel's to
    float rounding."""
    torch.manual_seed(0)
    rnn = cls(F_IN, H, num_layers=2, bidirectional=True, **({"proj_size": proj} if proj else {}))
    x = torch.randn(T, N, F_IN, requires_grad=True)
    h0 = torch.randn(4, N, proj or H)
    hx = (h0, torch.randn(4, N, H)) if cls is nn.LSTM else h0
    fused_out, fused_h = rnn(x, hx)
    fused_out.sum().backward()
    fused_grad = [x.grad.clone(), *(p.grad.clone() for p in rnn.parameters())]
    x.grad = None
    rnn.zero_grad()
    with traces.record(rnn, tmp_path / "t", every=1) as rec:
        out, h = rnn(x, hx)
        out.sum().backward()
        with torch.no_grad():
            for p in rnn.parameters():
                p.add_(0.0)  # an update of nothing: rec.step() wants the weights stepped
        rec.step()
    torch.testing.assert_close(out, fused_out)
    for a, b in zip([h] if cls is not nn.LSTM else h, [fused_h] if cls is not nn.LSTM else fused_h,
                    strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip([x.grad, *(p.grad for p in rnn.parameters())], fused_grad, strict=True):
        torch.testing.assert_close(a, b)
    # 2 layers × 2 directions: an input projection and T recurrent GEMMs each (and T projections)
    assert len(traces.load(tmp_path / "t").layers) == 4 * (1 + T * (2 if proj else 1))


def test_an_lstm_with_projections_is_its_gate_and_projection_gemms(tmp_path):
    """nn.LSTM(proj_size=P): weight_ih (4H, I), weight_hh (4H, P) on the projected state and
    weight_hr (P, H) per time step (torch.nn.LSTM docs), so a step's forward MACs are
    N·T·(4H·(I + P) + P·H); it trains, records, validates and every GEMM replays."""
    torch.manual_seed(0)
    lstm = nn.LSTM(F_IN, H, proj_size=P, batch_first=True)
    assert (lstm.weight_hh_l0.shape, lstm.weight_hr_l0.shape) == ((4 * H, P), (P, H))
    target = torch.randn(N, T, P)
    tr = record(lstm, tmp_path / "t", lambda g: torch.randn(N, T, F_IN, generator=g), steps=3,
                loss=lambda y: F.mse_loss(y, target))
    names = [s.name for s in tr.layers]
    steps = [n for t in range(T) for n in (f"weight_hh_l0{f'#{t}' if t else ''}",
                                           f"weight_hr_l0{f'#{t}' if t else ''}")]
    assert names == ["weight_ih_l0", *steps]
    for s in tr.layers[1:]:
        hh = s.parameter == "weight_hh_l0"
        assert (s.x_shape, s.w_shape, s.bias) == (((P,), (4 * H, P), True) if hh else ((H,), (P, H), False))
    total = sum(s.gemm("forward", N).macs for s in tr.layers)
    assert total == N * T * (4 * H * (F_IN + P) + P * H)
    with tr.iteration(2) as it:  # the projection's input o ⊙ tanh(c) is nonzero from step 0 on
        assert it.count("weight_hh_l0", "x") == 0 and it.count("weight_hr_l0", "x") > 0
    for arch in ("edge-npu", "gpu-a100", "reram-isaac"):
        rep = simulate(tr, arch, iterations=[2]).to_frame()
        gemm = rep[rep["pass"] != "update"]
        assert set(names) <= set(gemm["layer"]), arch
        fwd = gemm[gemm["pass"] == "forward"]
        assert fwd[fwd["layer"].isin(names)]["algorithmic_macs"].sum() == total, arch
        updates = rep[(rep["pass"] == "update") & rep["layer"].isin(names)]
        assert sorted(updates["layer"]) == ["weight_hh_l0", "weight_hr_l0", "weight_ih_l0"], arch  # once each


def test_conv1d_records_as_a_conv2d_of_height_one(tmp_path):
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2)
    x = torch.relu(torch.randn(N, 4, 11))
    tr = record(conv, tmp_path / "t", lambda g: x)
    (s,) = tr.layers
    assert (s.kind, s.module_type, s.x_shape, s.w_shape, s.y_shape) == (
        "conv2d", "Conv1d", (4, 1, 11), (6, 2, 1, 3), (6, 1, 6))
    assert (s.stride, s.padding, s.dilation, s.groups) == ((1, 2), (0, 1), (1, 1), 2)
    with tr.iteration(0) as it:
        np.testing.assert_array_equal(it.mask(0, "x").reshape(N, 4, 11), x.numpy() != 0)
    # the conv2d replay's forward MACs: N·P·Q × C/g·R·S × K/g × g
    g = s.gemm("forward", N)
    assert g.macs == N * 6 * (4 // 2) * 3 * 6


def test_an_embedding_gradient_touches_exactly_the_rows_in_the_batch(tmp_path):
    torch.manual_seed(0)
    vocab, dim = 40, 5

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim, padding_idx=0)
            self.fc = nn.Linear(dim, 3)

        def forward(self, tokens):
            return self.fc(self.emb(tokens))

    batches = []

    def tokens(g):
        batches.append(torch.randint(0, 12, (N, T), generator=g))  # rows 12.. are never seen
        return batches[-1]

    tr = record(Model(), tmp_path / "t", tokens)
    emb = tr.layers[0]
    assert (emb.kind, emb.x_shape, emb.w_shape, emb.y_shape, emb.gemm_passes) == (
        "embedding", (T,), (vocab, dim), (T, dim), ())
    for i, idx in enumerate(batches):
        seen = set(idx.flatten().tolist()) - {0}  # padding_idx gets no gradient
        with tr.iteration(i) as it:
            need = it.mask("emb", "dw_needed").reshape(vocab, dim)
            assert set(np.flatnonzero(need.any(axis=1)).tolist()) == seen
            assert need[sorted(seen)].all()
            assert it.count("emb", "dw_needed") == len(seen) * dim
            assert it.count("emb", "dw") <= len(seen) * dim
            assert it.count("emb", "x") == int((idx != 0).sum())


class GPT2Conv1D(nn.Module):
    """Hugging Face GPT-2's Conv1D: ``addmm(bias, x.view(-1, in), W)`` with ``W`` (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.1)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        out = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return out.view(*x.size()[:-1], self.weight.shape[1])


class Products(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(F_IN, F_IN)
        self.c_attn = GPT2Conv1D(9, F_IN)
        self.w = nn.Parameter(torch.randn(4, 9))

    def forward(self, x):
        h = torch.relu(self.c_attn(torch.relu(self.first(x))))
        return F.linear(h, self.w) + (h @ self.w.T)


def test_products_with_a_parameter_record_as_linear_calls_naming_it(tmp_path):
    torch.manual_seed(0)
    tr = record(Products(), tmp_path / "t", lambda g: torch.randn(N, T, F_IN, generator=g))
    got = [(s.name, s.kind, s.module, s.module_type, s.x_shape, s.w_shape, s.y_shape, s.parameter, s.bias)
           for s in tr.layers]
    assert got == [
        ("first", "linear", "first", "Linear", (T, F_IN), (F_IN, F_IN), (T, F_IN), "first.weight", True),
        ("c_attn.weight", "linear", "c_attn", "GPT2Conv1D", (T, F_IN), (9, F_IN), (T, 9), "c_attn.weight",
         True),
        ("w", "linear", "", "Products", (T, 9), (4, 9), (T, 4), "w", False),
        ("w#1", "linear", "", "Products", (T, 9), (4, 9), (T, 4), "w", False),
    ]
    with tr.iteration(0) as it:  # the weight mask is in (out, in) layout: the stored Wᵀ
        w = it.weights("c_attn.weight")[0]
        assert w.shape == (9, F_IN)
    assert [s.weight_name for s in tr.layers].count("w") == 2  # one update for the two calls


def test_a_product_with_the_parameter_on_the_left_is_refused_naming_op_and_site(tmp_path):
    class Left(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(F_IN, F_IN)
            self.w = nn.Parameter(torch.randn(4, F_IN))

        def forward(self, x):
            return (self.w @ self.fc(x).T).T

    model = Left()
    with pytest.raises(RecorderError, match=r"aten\.mm at .*test_layer_kinds\.py:\d+ in forward: "
                                            r"`return \(self\.w @ self\.fc\(x\)\.T\)\.T`"):
        record(model, tmp_path / "t", lambda g: torch.randn(N, F_IN, generator=g))
