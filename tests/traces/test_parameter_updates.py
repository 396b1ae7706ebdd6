"""Updates belong to parameters, not calls: one update per parameter per optimizer step.

A module called several times in a step (gradient accumulation, a module reused in the forward
pass) and weight-tied modules do their forward and backward work per call, but the optimizer
updates each weight once: the trace names every call's weight parameter, replay charges the
update (and on ReRAM the cell writes) to the parameter's first call only.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from hwsim.simulate import simulate
from tests.traces.helpers import write_trace
from traces import LayerSpec, TraceFormatError

FAMILIES = ["edge-npu", "gpu-a100", "reram-isaac"]


class SmallCNN(nn.Module):
    """Two convs and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        return self.fc(x.flatten(1))


class Thrice(nn.Module):
    """One Linear applied three times (a shared block)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = torch.relu(self.fc(x))
        return self.out(x)


class Tied(nn.Module):
    """An encoder and a decoder Linear sharing one weight, then a head."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(6, 6)
        self.dec = nn.Linear(6, 6)
        self.dec.weight = self.enc.weight
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.dec(torch.relu(self.enc(x)))))


class TiedEmbedding(nn.Module):
    """A language-model head tied to its input embedding (an embedding layer: a gather)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.hidden = nn.Linear(6, 6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.hidden(self.emb(tokens))))


class TiedFunctionalHead(nn.Module):
    """The same tie written as ``F.linear(h, emb.weight)`` (no head module: a product with the
    embedding's weight parameter)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.hidden = nn.Linear(6, 6)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.relu(self.hidden(self.emb(tokens))), self.emb.weight)


def record_run(model: nn.Module, path, inputs, accumulate: int = 1, steps: int = 2) -> traces.Trace:
    """``steps`` optimizer steps (SGD with momentum), each over ``accumulate`` micro-batches."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        for _ in range(steps):
            opt.zero_grad()
            for _ in range(accumulate):
                x = inputs(g)
                F.cross_entropy(model(x), torch.randint(0, 3, (4,), generator=g)).backward()
            opt.step()
            rec.step()
    return traces.load(path)


def image(g: torch.Generator) -> torch.Tensor:
    return torch.randn(4, 1, 8, 8, generator=g)


def vector(g: torch.Generator) -> torch.Tensor:
    return torch.randn(4, 6, generator=g)


def update_rows(tr: traces.Trace, arch: str):
    df = simulate(tr, arch).to_frame()
    return df[df["pass"] == "update"]


def layer_rows(tr: traces.Trace, arch: str):
    """The report's rows of the trace's layers (not its vector_ops rows: ReLU, pooling)."""
    df = simulate(tr, arch).to_frame()
    return df[df["layer"].isin({s.name for s in tr.layers})]


@pytest.mark.parametrize("arch", FAMILIES)
def test_gradient_accumulation_updates_each_parameter_once_per_step(tmp_path, arch):
    torch.manual_seed(0)
    plain = record_run(SmallCNN(), tmp_path / "plain", image)
    torch.manual_seed(0)
    accum = record_run(SmallCNN(), tmp_path / "accum", image, accumulate=2)
    assert [s.name for s in accum.layers] == ["c1", "c2", "fc", "c1#1", "c2#1", "fc#1"]
    assert [s.parameter for s in accum.layers] == ["c1.weight", "c2.weight", "fc.weight"] * 2
    u_plain, u_accum = update_rows(plain, arch), update_rows(accum, arch)
    assert sorted(u_accum["layer"]) == ["c1", "c1", "c2", "c2", "fc", "fc"]  # 2 steps

    def optimizer_cycles(u):  # without ReRAM cell writes, which follow the (different) values of ΔW
        writes = u["reram_write_cycles"] if "reram_write_cycles" in u else 0
        return (u["cycles"] - writes).groupby(u["iteration"]).sum().tolist()

    # the same weights and optimizer: the same update work per step, whatever the micro-batches
    assert optimizer_cycles(u_accum) == optimizer_cycles(u_plain) and optimizer_cycles(u_plain)[0] > 0
    if arch.startswith("reram"):
        assert u_accum["reram_writes_recorded"].all()
    df = layer_rows(accum, arch)
    # ... while each micro-batch keeps its own forward and backward work
    assert set(df[df["pass"] == "forward"]["layer"]) == {s.name for s in accum.layers}


@pytest.mark.parametrize("arch", FAMILIES)
def test_a_module_reused_three_times_carries_one_update(tmp_path, arch):
    torch.manual_seed(0)
    tr = record_run(Thrice(), tmp_path / "t", vector)
    assert [s.name for s in tr.layers] == ["fc", "fc#1", "fc#2", "out"]
    assert {s.weight_name for s in tr.layers[:3]} == {"fc.weight"}
    u = update_rows(tr, arch)
    assert sorted(u["layer"]) == ["fc", "fc", "out", "out"]  # one per parameter, each of 2 steps
    with tr.iteration(0) as it:
        assert it.weights("fc") is not None and it.weights("fc#1") is None and it.weights("fc#2") is None
    if arch.startswith("reram"):  # the cell writes of fc's update happen once
        fc = u[u["layer"] == "fc"]
        assert fc["reram_writes_recorded"].all() and (fc["reram_cell_writes"] > 0).all()


@pytest.mark.parametrize("arch", FAMILIES)
def test_tied_weights_update_once_in_total(tmp_path, arch):
    torch.manual_seed(0)
    tr = record_run(Tied(), tmp_path / "t", vector)
    assert [(s.name, s.parameter) for s in tr.layers] == [
        ("enc", "enc.weight"), ("dec", "enc.weight"), ("head", "head.weight")]
    u = update_rows(tr, arch)
    assert sorted(u["layer"]) == ["enc", "enc", "head", "head"]
    with tr.iteration(0) as it:  # the update's values are stored once, with the parameter's first call
        assert it.weights("enc") is not None and it.weights("dec") is None


def test_a_head_tied_to_an_embedding_names_the_embedding_weight(tmp_path):
    torch.manual_seed(0)
    tr = record_run(TiedEmbedding(), tmp_path / "t", lambda g: torch.randint(0, 10, (4,), generator=g))
    assert [(s.name, s.parameter) for s in tr.layers] == [("emb", "emb.weight"), ("hidden", "hidden.weight"),
                                                          ("head", "emb.weight")]
    # the embedding, the first layer naming emb.weight, carries its one update per step
    assert sorted(update_rows(tr, "edge-npu")["layer"]) == ["emb", "emb", "hidden", "hidden"]


def test_a_functional_head_on_an_embeddings_weight_records_its_gemms(tmp_path):
    """Its backward-data and backward-weight GEMMs are the product's own, not one more backward of
    the embedding (a gather with no backward GEMM): recorded as a linear call, one update in total."""
    torch.manual_seed(0)
    tr = record_run(TiedFunctionalHead(), tmp_path / "t", lambda g: torch.randint(0, 10, (4,), generator=g))
    assert [(s.name, s.kind, s.parameter) for s in tr.layers] == [
        ("emb", "embedding", "emb.weight"), ("hidden", "linear", "hidden.weight"),
        ("emb.weight", "linear", "emb.weight")]
    assert tr.layers[2].gemm("forward", 4).macs == 4 * 6 * 10
    assert sorted(update_rows(tr, "edge-npu")["layer"]) == ["emb", "emb", "hidden", "hidden"]


def test_old_traces_share_a_reused_modules_update(tmp_path):
    """A format-2 trace names no parameter: the calls of one module share its weight."""
    torch.manual_seed(0)
    path = tmp_path / "t"
    record_run(Thrice(), path, vector)
    doc = json.loads((path / "manifest.json").read_text())
    doc["format_version"] = 2
    del doc["layout"]["matmul_operands"], doc["vector_ops"], doc["files"]  # format 4's and 5's
    for entry in doc["layers"]:
        del entry["parameter"], entry["attention"]
    (path / "manifest.json").write_text(json.dumps(doc))
    tr = traces.load(path)
    assert [s.parameter for s in tr.layers] == [None] * 4
    assert [s.weight_name for s in tr.layers] == ["fc.weight"] * 3 + ["out.weight"]
    assert sorted(update_rows(tr, "edge-npu")["layer"]) == ["fc", "fc", "out", "out"]


def test_layers_naming_one_parameter_must_share_its_shape(tmp_path):
    layers = [LayerSpec("a", "linear", "a", 0, "Linear", (16,), (16, 16), (16,), parameter="p"),
              LayerSpec("b", "linear", "b", 0, "Linear", (16,), (8, 16), (8,), parameter="p")]
    path = tmp_path / "t"
    with pytest.raises(TraceFormatError, match=r"layers\[1\]\.w_shape: found \[8, 16\]; expected \[16, 16\]"):
        write_trace(path, n_iter=1, mask_every=1, layers=layers)
        traces.load(path)


class Checkpointed(nn.Module):
    """A block under activation checkpointing: its forward runs again in the backward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        h = checkpoint(lambda t: torch.relu(self.fc(t)), x, use_reentrant=False)
        return self.out(h)


def test_activation_checkpointing_records_the_recomputation_and_one_update(tmp_path):
    torch.manual_seed(0)
    tr = record_run(Checkpointed(), tmp_path / "t", vector)
    assert [s.name for s in tr.layers] == ["fc", "out", "fc#1"]  # fc#1: recomputed in backward
    df = layer_rows(tr, "edge-npu")
    assert sorted(df[df["pass"] == "forward"]["layer"]) == ["fc", "fc", "fc#1", "fc#1", "out", "out"]
    assert sorted(df[df["pass"] == "update"]["layer"]) == ["fc", "fc", "out", "out"]
    # the recomputation's output gets no gradient of its own: the backward is the first call's
    assert set(df[df["pass"] == "backward_weight"]["layer"]) == {"fc", "out"}


def _amp_run(path, init_scale: float, inputs_scale: float) -> traces.Trace:
    """Two fp16-autocast steps through a GradScaler, which skips optimizer.step() when the scaled
    gradients overflow (found inf): a large scale and large inputs overflow on every step."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    g = torch.Generator().manual_seed(0)
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        for _ in range(2):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16):
                loss = F.cross_entropy(model(torch.randn(4, 6, generator=g) * inputs_scale),
                                       torch.randint(0, 3, (4,), generator=g))
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            rec.step()
    return traces.load(path)


def test_a_step_skipped_by_the_grad_scaler_records_no_update(tmp_path):
    """The skipped step was refused as 'rec.step() before the weights were updated' (AMP training
    could not be recorded past its first overflow); now it records its forward and backward work,
    is marked ``update_skipped`` and replays without an update pass. Calling rec.step() before
    optimizer.step() with finite gradients is still refused."""
    skipped = _amp_run(tmp_path / "skipped", 2.0**40, 1e3)
    with skipped.iteration(0) as it:
        assert it.meta["update_skipped"] is True
    assert update_rows(skipped, "edge-npu").empty
    assert len(layer_rows(skipped, "edge-npu").query("`pass` == 'forward'")) == 2 * 2
    stepped = _amp_run(tmp_path / "stepped", 1.0, 1.0)
    with stepped.iteration(0) as it:
        assert "update_skipped" not in it.meta
    assert sorted(update_rows(stepped, "edge-npu")["layer"]) == ["0", "0", "2", "2"]
    model = nn.Linear(6, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(traces.RecorderError, match=r"rec\.step\(\) before the weights were updated"):
        with traces.record(model, tmp_path / "early", optimizer=opt) as rec:
            F.cross_entropy(model(torch.randn(4, 6)), torch.tensor([0, 1, 2, 0])).backward()
            rec.step()
