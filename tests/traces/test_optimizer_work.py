"""The optimizer step's element work, counted by the recorder and charged by the update pass.

Hand counts from each optimizer's algorithm as torch.optim runs it per weight (single-tensor path):
SGD ``w -= lr·g`` (1); with momentum ``b = μ·b`` , ``b += g``, ``w -= lr·b`` (3); with weight
decay also ``g + λ·w`` (4); Adam ``m.lerp_(g)``, ``v *= β2``, ``v += (1-β2)·g²``, ``sqrt(v)``,
``/ √bc2``, ``+ ε``, ``w -= lr·m/denom`` (7); AdamW also ``w *= 1 - lr·λ`` (8)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from hwsim.simulate import simulate

OPTIMIZERS = {
    "sgd": (lambda p: torch.optim.SGD(p, lr=0.05), 1),
    "sgd-momentum": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), 3),
    "sgd-momentum-decay": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4), 4),
    "adam": (lambda p: torch.optim.Adam(p, lr=1e-3), 7),
    "adamw": (lambda p: torch.optim.AdamW(p, lr=1e-3), 8),
    # the multi-tensor and fused paths do the same work per weight (GPU runs default to foreach;
    # neither bumps a weight's version counter under the recorder's dispatch modes, and a fused
    # step is one kernel: its work is the single-tensor path's)
    "sgd-momentum-foreach": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, foreach=True), 3),
    "sgd-momentum-fused": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, fused=True), 3),
    "adam-foreach": (lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True), 7),
    "adam-fused": (lambda p: torch.optim.Adam(p, lr=1e-3, fused=True), 7),
    "adamw-fused": (lambda p: torch.optim.AdamW(p, lr=1e-3, fused=True), 8),
}


def _record(path, make):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = make(model.parameters())
    g = torch.Generator().manual_seed(0)
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        for _ in range(3):
            opt.zero_grad()
            x = torch.randn(4, 6, generator=g)
            F.cross_entropy(model(x), torch.randint(0, 3, (4,), generator=g)).backward()
            opt.step()
            rec.step()
    return traces.load(path)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_recorder_counts_each_optimizers_element_work_per_weight(tmp_path, name):
    make, ops = OPTIMIZERS[name]
    tr = _record(tmp_path / "t.trace", make)
    assert tr.manifest["optimizer"]["update_ops_per_weight"] == ops


@pytest.mark.parametrize("name", ["sgd", "adam", "adam-fused"])
def test_the_update_pass_charges_the_counted_work(tmp_path, name):
    make, ops = OPTIMIZERS[name]
    df = simulate(_record(tmp_path / "t.trace", make), "edge-npu").to_frame()
    upd = df[df["pass"] == "update"]
    weights = {"0": 6 * 8, "2": 8 * 3}  # the update rows are the layers' weights
    assert len(upd) == 3 * len(weights)
    for _, row in upd.iterrows():
        n = next(v for k, v in weights.items() if row["layer"].endswith(k))
        assert row["vector_ops"] == ops * n
