"""Replay of the ``embedding`` kind on the three families: a gather and a scatter-add whose
bytes follow from the batch's indices (closed form: N·L·D gathered, U·D touched rows)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archs
import traces
from hwsim.simulate import simulate

N, L, V, D = 4, 6, 30, 8
PRESETS = {"edge-npu": lambda a: a.compute.precision.weight_bits / 8,
           "gpu-a100": lambda a: a.gpu.element_bits / 8,
           "reram-isaac": lambda a: a.reram.weight_bits / 8}


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.fc = nn.Linear(D, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(self.emb(tokens))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    torch.manual_seed(0)
    model = Tagger()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path_factory.mktemp("emb") / "t"
    tokens = torch.randint(0, 10, (N, L))  # rows 10.. never seen
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        opt.zero_grad()
        F.cross_entropy(model(tokens).reshape(-1, 3), torch.zeros(N * L, dtype=torch.long)).backward()
        opt.step()
        rec.step()
    return traces.load(path), len(set(tokens.flatten().tolist()))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_embedding_passes_move_the_rows_of_the_batch(recorded, preset):
    tr, touched = recorded
    arch = archs.load(preset)
    eb = PRESETS[preset](arch)
    off = arch.off_chip.name
    df = simulate(tr, arch).to_frame()
    emb = df[df["layer"] == "emb"].set_index("pass")
    assert sorted(emb.index) == ["backward_weight", "forward", "update"]  # no backward-data
    fwd, bwd = emb.loc["forward"], emb.loc["backward_weight"]
    assert fwd["actual_macs"] == 0 and fwd["algorithmic_macs"] == 0
    assert fwd[f"{off}_a_read_bytes"] == pytest.approx(N * L * D * eb)
    assert fwd[f"{off}_c_write_bytes"] == pytest.approx(N * L * D * eb)
    assert bwd["embedding_rows_touched"] == touched
    assert bwd[f"{off}_a_read_bytes"] == pytest.approx((N * L + touched) * D * eb)
    assert bwd[f"{off}_c_write_bytes"] == pytest.approx(touched * D * eb)
    assert bwd["vector_ops"] == N * L * D  # one addition per scattered element
    # the dense gradient zero-fills the whole table: never less work than the touched rows
    assert bwd["dense_cycles"] >= bwd["cycles"] and bwd["dense_energy_pj"] > bwd["energy_pj"]
