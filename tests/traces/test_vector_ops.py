"""The manifest's ``vector_ops`` table: the non-GEMM operators of a step's forward pass, counted."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from traces import TraceFormatError

N, L, D = 3, 4, 8


class Block(nn.Module):
    """A transformer-style block: linear, LayerNorm, GELU, dropout, residual add, softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.ln = nn.LayerNorm(D)
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act(self.ln(self.fc(x))))
        return torch.softmax(self.out(h) + x, dim=-1)


def record(path, model: nn.Module, x: torch.Tensor, steps: int = 2) -> traces.Trace:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        for _ in range(steps):
            opt.zero_grad()
            F.mse_loss(model(x), torch.zeros_like(x)).backward()
            opt.step()
            rec.step()
    return traces.load(path)


def test_a_blocks_non_gemm_operators_are_counted_once_per_call(tmp_path):
    torch.manual_seed(0)
    tr = record(tmp_path / "t", Block(), torch.randn(N, L, D))
    rows = tr.manifest["vector_ops"]
    got = [(r["name"], r["kind"], r["module"], r["shape"], r["batched"], r["passes"]) for r in rows]
    both = ["forward", "backward_data"]
    assert got == [
        ("ln.layer_norm", "layer_norm", "ln", [L, D], True, both),
        ("act.gelu", "gelu", "act", [L, D], True, both),
        # nn.Dropout in training: a Bernoulli mask, its scaling, the product
        ("drop.dropout", "dropout", "drop", [L, D], True, ["forward"]),
        ("drop.div", "div", "drop", [L, D], True, ["forward"]),
        ("drop.mul", "mul", "drop", [L, D], True, both),
        ("add", "add", "", [L, D], True, both),  # the residual add
        ("softmax", "softmax", "", [L, D], True, both),
    ]
    # the recorded layers' own GEMMs (their biases fused into addmm) are not vector work
    assert [s.name for s in tr.layers] == ["fc", "out"]


def test_the_table_is_checked_when_a_trace_is_opened(tmp_path):
    torch.manual_seed(0)
    record(tmp_path / "t", Block(), torch.randn(N, L, D), steps=1)
    path = tmp_path / "t" / "manifest.json"
    doc = json.loads(path.read_text())
    doc["vector_ops"][1]["kind"] = "fft"
    path.write_text(json.dumps(doc))
    with pytest.raises(TraceFormatError, match=r"vector_ops\[1\]\.kind: found 'fft'"):
        traces.load(tmp_path / "t")


def test_each_micro_batch_of_an_accumulated_step_has_its_rows(tmp_path):
    torch.manual_seed(0)
    model = Block()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(N, L, D)
    with traces.record(model, tmp_path / "t", every=1, optimizer=opt) as rec:
        opt.zero_grad()
        for _ in range(2):  # two micro-batches, one optimizer step
            F.mse_loss(model(x), torch.zeros_like(x)).backward()
        opt.step()
        rec.step()
    names = [r["name"] for r in traces.load(tmp_path / "t").manifest["vector_ops"]]
    assert len(names) == 14 and names[7:] == [f"{n}#1" for n in names[:7]]
