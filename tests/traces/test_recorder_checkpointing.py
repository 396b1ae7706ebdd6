"""Activation checkpointing (``torch.utils.checkpoint``) of functional products: the recomputation
in the backward pass is recorded as forward work, like a hooked layer's.

A block multiplies by a parameter (``x @ W``, a parameter product) and runs causal SDPA (two
activation products) under ``checkpoint(block, h)``. With checkpointing the step's forward MACs
are those without it plus the block's forward once more (closed form below), the backward passes
are the same, and each parameter is updated once per step; in both checkpoint modes.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

import traces
from hwsim.simulate import simulate
from traces.format.validate import validate

N, L, D, H, OUT = 3, 5, 8, 2, 3
FAMILIES = ["edge-npu", "gpu-a100", "reram-isaac"]
# the block's forward GEMMs: x·W (N·L × D × 3D), Q·Kᵀ and P·V per head (L × D/H × L, L × L × D/H)
BLOCK_MACS = N * L * D * 3 * D + 2 * N * H * L * L * (D // H)


class Block(nn.Module):
    """A parameter product and causal attention: no hooked module inside."""

    def __init__(self) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(D, 3 * D) / D ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (x @ self.W).split(D, -1)
        q, k, v = (t.reshape(N, L, H, D // H).transpose(1, 2) for t in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return torch.tanh(o.transpose(1, 2).reshape(N, L, D)) + x


class Net(nn.Module):
    def __init__(self, mode: str | None) -> None:
        super().__init__()
        self.mode = mode  # None: no checkpointing; "reentrant" or "non-reentrant"
        self.inp = nn.Linear(4, D)
        self.block = Block()
        self.head = nn.Linear(D, OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        if self.mode is None:
            h = self.block(h)
        else:
            h = checkpoint(self.block, h, use_reentrant=self.mode == "reentrant")
        return self.head(h).mean(1)


def run(path, mode: str | None, arch: str = "edge-npu"):
    torch.manual_seed(0)
    model = Net(mode)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    with traces.record(model, path, every=2, optimizer=opt) as rec:  # iteration 1: unwatched
        for _ in range(3):
            opt.zero_grad()
            x = torch.randn(N, L, 4, generator=g)
            F.cross_entropy(model(x), torch.randint(0, OUT, (N,), generator=g)).backward()
            opt.step()
            rec.step()
    tr = traces.load(path)
    validate(tr)
    return tr, simulate(tr, arch).to_frame()


def macs(df, pass_: str) -> float:
    rows = df[(df["pass"] == pass_) & (df["iteration"] == 0)]
    return float(rows["algorithmic_macs"].sum())


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return run(tmp_path_factory.mktemp("plain") / "t", None)


@pytest.mark.parametrize("mode", ["non-reentrant", "reentrant"])
def test_the_recomputation_is_forward_work_once_more_and_backward_unchanged(tmp_path, plain, mode):
    tr0, df0 = plain
    tr, df = run(tmp_path / "t", mode)
    names = [s.name for s in tr.layers]
    assert {"block.W", "block.W#1", "block.scores", "block.scores#1", "block.context",
            "block.context#1"} <= set(names)
    assert len(names) == len(tr0.layers) + 3  # the block's three GEMMs, recorded again
    assert macs(df, "forward") == macs(df0, "forward") + BLOCK_MACS
    for p in ("backward_data", "backward_weight"):
        assert macs(df, p) == macs(df0, p) > 0
    # one update per parameter per step, whatever the number of calls
    assert sorted(df[df["pass"] == "update"]["layer"]) == sorted(df0[df0["pass"] == "update"]["layer"])
    # the backward of the block is one call's: the recomputation's (reentrant) or the forward's
    bwd = set(df[(df["pass"] == "backward_weight") & df["layer"].str.startswith("block.")]["layer"])
    assert bwd == ({"block.W#1", "block.scores#1", "block.context#1"} if mode == "reentrant"
                   else {"block.W", "block.scores", "block.context"})
    # vector work: the block's once more, forward only
    rows0, rows = tr0.manifest["vector_ops"], tr.manifest["vector_ops"]
    block0 = [r for r in rows0 if r["module"] == "block"]
    again = [r for r in rows if r["module"] == "block"]
    assert len(again) == 2 * len(block0) > 0
    assert sum(r["passes"] == ["forward"] for r in again) == \
        sum(r["passes"] == ["forward"] for r in block0) + len(block0)


@pytest.mark.parametrize("arch", FAMILIES)
def test_a_checkpointed_trace_replays_on_every_family(tmp_path, arch):
    _, df = run(tmp_path / "t", "non-reentrant", arch)
    assert (df["cycles"] >= 0).all() and (df["energy_pj"] >= 0).all()
    assert set(df[df["layer"] == "block.W#1"]["pass"]) == {"forward"}


def gram(t: torch.Tensor) -> torch.Tensor:
    return t @ t.T @ t


def gram_in_backward_only(t: torch.Tensor) -> torch.Tensor:
    in_backward = torch._C._current_graph_task_id() != -1  # sin saves its input: recomputed
    return torch.sin(t + gram(t.detach()) if in_backward else t)  # the same tensors saved


@pytest.mark.parametrize("fn", [gram, gram_in_backward_only], ids=["forward", "recomputation"])
def test_an_unrecordable_gemm_in_a_checkpointed_function_is_still_refused(tmp_path, fn):
    """A product across the batch (no per-sample form) in a checkpointed function is refused
    naming its line: in the forward pass as before, and in the recomputation."""

    class Gram(Net):
        def forward(self, x):
            h = self.inp(x).flatten(1)
            h = checkpoint(fn, h, use_reentrant=False)
            return self.head(h.reshape(N, L, D)).mean(1)

    model = Gram("non-reentrant")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(traces.RecorderError, match=r"aten\.mm at .*test_recorder_checkpointing\.py"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            opt.zero_grad()
            F.cross_entropy(model(torch.randn(N, L, 4)), torch.zeros(N, dtype=torch.long)).backward()
            opt.step()
            rec.step()


def test_checkpoint_is_restored_when_the_recorder_closes(tmp_path):
    import torch.utils.checkpoint as tuc

    before = (tuc._checkpoint_without_reentrant_generator, tuc.CheckpointFunction)
    run(tmp_path / "t", "reentrant")
    assert (tuc._checkpoint_without_reentrant_generator, tuc.CheckpointFunction) == before


def test_selective_activation_checkpointing_is_refused_naming_its_line(tmp_path):
    """With a ``context_fn`` (selective activation checkpointing) the recomputation may take a
    GEMM's result from what the forward saved instead of running it: which GEMMs run again is
    unknown to the recorder, so it refuses rather than overstate the recomputation."""
    import functools

    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    def save_products(ctx, op, *args, **kwargs):
        return CheckpointPolicy.MUST_SAVE if op == torch.ops.aten.mm.default else \
            CheckpointPolicy.PREFER_RECOMPUTE

    class Selective(Net):
        def forward(self, x):
            context = functools.partial(create_selective_checkpoint_contexts, save_products)
            h = checkpoint(self.block, self.inp(x), use_reentrant=False, context_fn=context)
            return self.head(h).mean(1)

    model = Selective("non-reentrant")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(traces.RecorderError, match=r"checkpoint at .*test_recorder_checkpointing\.py:\d+ in "
                       r"forward.* context_fn=create_selective_checkpoint_contexts \(selective"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            opt.zero_grad()
            F.cross_entropy(model(torch.randn(N, L, 4)), torch.zeros(N, dtype=torch.long)).backward()
            opt.step()
            rec.step()
