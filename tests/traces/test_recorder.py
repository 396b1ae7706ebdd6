"""The recorder captures exactly what the tensors hold, on models with the awkward features."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from traces import RecorderError
from traces.format.manifest import TENSOR_INDEX


class Awkward(nn.Module):
    """Strided padded conv, grouped conv, in-place ReLU, a shared input (shortcut), a linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.gconv = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4, bias=False)
        self.short = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.stem(x))
        a = self.relu(self.gconv(h))  # h feeds gconv and short: each needs its own gradient
        return self.fc((a + self.short(h)).flatten(1))


def independent_tensors(model: Awkward, x: torch.Tensor, target: torch.Tensor) -> dict:
    """Every recorded tensor, recomputed out of place with functional calls and autograd."""
    m = model
    y_stem = F.conv2d(x, m.stem.weight, m.stem.bias, stride=2, padding=1)
    h = F.relu(y_stem)
    y_g = F.conv2d(h, m.gconv.weight, None, padding=2, dilation=2, groups=4)
    a = F.relu(y_g)
    y_s = F.conv2d(h, m.short.weight, m.short.bias)
    flat = (a + y_s).flatten(1)
    y_fc = F.linear(flat, m.fc.weight, m.fc.bias)
    loss = F.cross_entropy(y_fc, target)
    outs = [y_stem, y_g, y_s, y_fc]
    grads = torch.autograd.grad(loss, [*outs, m.stem.weight, m.gconv.weight, m.short.weight, m.fc.weight])
    dy = dict(zip(["stem", "gconv", "short", "fc"], grads[:4], strict=True))
    dw = dict(zip(["stem", "gconv", "short", "fc"], grads[4:], strict=True))
    ig = torch.nn.grad
    dx = {
        "gconv": ig.conv2d_input(h.shape, m.gconv.weight, dy["gconv"], padding=2, dilation=2, groups=4),
        "short": ig.conv2d_input(h.shape, m.short.weight, dy["short"]),
        "fc": dy["fc"] @ m.fc.weight,
    }
    return {
        "stem": {"x": x, "y": y_stem, "dy": dy["stem"], "w": m.stem.weight, "dw": dw["stem"]},
        "gconv": {"x": h, "y": y_g, "dy": dy["gconv"], "dx": dx["gconv"], "w": m.gconv.weight,
                  "dw": dw["gconv"]},
        "short": {"x": h, "y": y_s, "dy": dy["short"], "dx": dx["short"], "w": m.short.weight,
                  "dw": dw["short"]},
        "fc": {"x": flat, "y": y_fc, "dy": dy["fc"], "dx": dx["fc"], "w": m.fc.weight,
               "dw": dw["fc"]},
    }


def run_steps(model, path, batches, **kwargs):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, path, optimizer=opt, **kwargs) as rec:
        for x, t in batches:
            opt.zero_grad()
            F.cross_entropy(model(x), t).backward()
            opt.step()
            rec.step()
    return traces.load(path)


def make_batches(n_batches=2, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.relu(torch.randn(n, 3, 8, 8, generator=g)), torch.randint(0, 5, (n,), generator=g))
            for _ in range(n_batches)]


# a mask iteration (counts read off the masks), a counts-only one (counted on their own), and a
# mask iteration whose masks hold 2 of the 6 samples (counts of the whole batch on their own)
OPTIONS = [{"every": 1}, {"every": 0, "first": False}, {"every": 1, "mask_samples": 2}]


@pytest.mark.parametrize("options", OPTIONS, ids=["masks", "counts_only", "mask_samples"])
def test_counts_and_masks_equal_independent_computation(tmp_path, options):
    torch.manual_seed(0)
    model = Awkward()
    before = copy.deepcopy(model)
    batches = make_batches(1)
    tr = run_steps(model, tmp_path / "t", batches, **options)
    assert [s.name for s in tr.layers] == ["stem", "gconv", "short", "fc"]
    assert tr.layers[1].groups == 4 and tr.layers[1].dilation == (2, 2)
    assert tr.layers[0].stride == (2, 2) and tr.layers[0].padding == (1, 1)
    ref = independent_tensors(before, *batches[0])
    with tr.iteration(0) as it:
        for name, tensors in ref.items():
            for t, value in tensors.items():
                expected = int((value != 0).sum())
                assert it.count(name, t) == expected, (name, t)
                if t != "dw" and options["every"]:
                    mask = it.mask(name, t)
                    rows = value if t == "w" else value[:options.get("mask_samples")]
                    np.testing.assert_array_equal(mask, (rows != 0).numpy().reshape(mask.shape))
            assert it.count(name, "y_sel") is None and it.count(name, "dw_needed") is None
        assert it.count("stem", "dx") is None  # the data needs no gradient: no backward-data pass
        if not options["every"]:
            return
        w, dw = it.weights("fc")
        np.testing.assert_array_equal(w, before.fc.weight.detach().half().numpy())
        np.testing.assert_array_equal(
            dw, (model.fc.weight.detach() - before.fc.weight.detach()).half().numpy())


def test_shared_input_gives_each_layer_its_own_gradient(tmp_path):
    torch.manual_seed(1)
    model = Awkward()
    with torch.no_grad():
        model.short.weight[:, :4] = 0  # the shortcut reads only channels 4..7 of h
    tr = run_steps(model, tmp_path / "t", make_batches(1), every=1)
    with tr.iteration(0) as it:
        g, s = it.mask("gconv", "dx"), it.mask("short", "dx")
    assert not s[:, :4].any() and s[:, 4:].all()  # its own gradient: zero where it reads nothing
    assert g[:, :4].any()  # the total gradient of h is not zero there


def test_reused_module_gives_one_record_per_call(tmp_path):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(torch.relu(self.fc(x)))

    torch.manual_seed(0)
    model = Twice()
    x = torch.randn(3, 4)
    tr = run_steps(model, tmp_path / "t", [(x, torch.tensor([0, 1, 2]))] * 2, every=1)
    assert [s.name for s in tr.layers] == ["fc", "fc#1"]
    with tr.iteration(0) as it:
        assert it.count("fc", "x") == int((x != 0).sum())
        h = torch.relu(F.linear(x, *[p.detach() for p in Twice().fc.parameters()]))  # shape only
        assert it.mask("fc#1", "x").shape == h.shape


def test_eval_and_no_grad_passes_are_not_training_steps(tmp_path):
    torch.manual_seed(0)
    model = Awkward()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, t = make_batches(1)[0]
    with traces.record(model, tmp_path / "t", optimizer=opt, every=1) as rec:
        model.eval()
        with torch.no_grad():
            model(x)
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), t).backward()
        opt.step()
        rec.step()
        model.eval()
        model(x)  # eval mode with grad enabled: still not a training step
        model.train()
    tr = traces.load(tmp_path / "t")
    assert tr.iterations == [0] and tr.complete
    with tr.iteration(0) as it:
        assert it.count("stem", "x") == int((x != 0).sum())


def test_a_no_grad_pass_in_training_mode_with_no_step_after_it_is_refused_at_close(tmp_path):
    """Training mode without gradients and no training step after it was allowed (dropped without a
    word); issue 22 asks for it to be recorded or refused naming its line: refused when recording
    closes (tests/traces/test_recorder_side_work.py has the variants)."""
    model = Awkward()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, t = make_batches(1)[0]
    with pytest.raises(traces.RecorderError, match=r"training mode without gradients at .*`model\(x\)"):
        with traces.record(model, tmp_path / "t", optimizer=opt, every=1) as rec:
            opt.zero_grad()
            F.cross_entropy(model(x), t).backward()
            opt.step()
            rec.step()
            with torch.no_grad():
                model(x)  # training mode without gradients, and no training step follows
    assert not traces.load(tmp_path / "t").complete


def test_functional_gemm_outside_modules_is_refused(tmp_path):
    """A product with a computed weight (no parameter operand) is refused; the same product with
    the parameter itself is recorded (tests/traces/test_functional_gemms.py)."""
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.w2 = nn.Parameter(torch.randn(3, 4))

        def forward(self, x):
            return F.linear(self.fc(x), self.w2 * 2)

    model = Functional()
    refusal = (r"aten\.mm at .*test_recorder\.py:\d+ in forward: "
               r"`return F\.linear\(self\.fc\(x\), self\.w2 \* 2\)`")
    with pytest.raises(RecorderError, match=refusal):
        with traces.record(model, tmp_path / "t"):
            model(torch.randn(2, 4))
    assert not (tmp_path / "t").exists()  # a refused recording leaves nothing that blocks a rerun
    with pytest.raises(RecorderError, match=refusal):
        with traces.record(model, tmp_path / "t"):  # the same path again: the same refusal
            model(torch.randn(2, 4))
    model.eval()  # evaluation is not recorded, so it is not refused either
    with traces.record(model, tmp_path / "u"):
        model(torch.randn(2, 4))


def test_compiled_and_unsupported_modules_are_refused(tmp_path):
    class Wrapper(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

    fake_compiled = Wrapper(nn.Linear(2, 2))
    fake_compiled._orig_mod = nn.Linear(2, 2)  # what torch.compile's wrapper carries
    with pytest.raises(RecorderError, match=r"torch\.compile"):
        traces.record(fake_compiled, tmp_path / "a")
    with pytest.raises(RecorderError, match=r"bil \(Bilinear\) does GEMM work hwsim cannot record yet"):
        traces.record(nn.ModuleDict({"bil": nn.Bilinear(2, 2, 1)}), tmp_path / "b")
    with pytest.raises(RecorderError, match="padding_mode='reflect'"):
        traces.record(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), tmp_path / "c")
    with pytest.raises(RecorderError, match=r"no nn\.Conv\*/ConvTranspose\*/Linear/Embedding"):
        traces.record(nn.ReLU(), tmp_path / "d")


def test_step_before_optimizer_step_is_refused(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"after optimizer\.step"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            model(torch.randn(4, 3)).sum().backward()
            rec.step()


def test_method_masks_are_recorded(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(6, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w_mask = torch.rand(4, 6) > 0.5
    need = torch.rand(4, 6) > 0.3
    sel = torch.rand(5, 4) > 0.5
    with traces.record(model, tmp_path / "t", optimizer=opt, every=1) as rec:
        assert traces.active_recorder() is rec
        rec.set_mask(model, "w", w_mask)
        rec.set_mask(model, "dw_needed", need)
        rec.set_mask(model, "y_sel", sel)
        model(torch.randn(5, 6)).sum().backward()
        opt.step()
        rec.step()
        with pytest.raises(RecorderError, match="unknown mask"):
            rec.set_mask(model, "bogus", w_mask)
    assert traces.active_recorder() is None
    tr = traces.load(tmp_path / "t")
    with tr.iteration(0) as it:
        for name, mask in (("w", w_mask), ("dw_needed", need), ("y_sel", sel)):
            np.testing.assert_array_equal(it.mask(0, name), mask.numpy())
            assert it.counts[0, TENSOR_INDEX[name]] == int(mask.sum())


def test_schedule_and_mask_samples(tmp_path):
    torch.manual_seed(0)
    model = Awkward()
    tr = run_steps(model, tmp_path / "t", make_batches(7), every=3, mask_samples=2,
                   iters_per_epoch=5)
    # every 3rd (0, 3, 6), epoch starts (0, 5) and ends (4)
    assert tr.mask_iterations == [0, 3, 4, 5, 6]
    assert tr.iterations == list(range(7))
    with tr.iteration(3) as it:
        assert it.mask_batch == 2 and it.batch == 6
        assert it.mask("stem", "x").shape == (2, 3, 8, 8)
        assert it.meta["reasons"] == ["every"]
    with tr.iteration(5) as it:
        assert it.meta["epoch"] == 1 and "epoch_start" in it.meta["reasons"]


def test_force_next_records_masks_off_schedule(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(5, 4)
    with traces.record(model, tmp_path / "t", every=0, optimizer=opt) as rec:
        for i in range(4):
            if i == 2:
                rec.force_next()
            model(x).sum().backward()
            assert rec.recording_masks == (i in (0, 2))
            opt.step()
            rec.step()
    tr = traces.load(tmp_path / "t")
    assert tr.mask_iterations == [0, 2]
    with tr.iteration(2) as it:
        assert it.meta["reasons"] == ["forced"]


@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
def test_manifest_records_the_autocast_dtype(tmp_path, autocast):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            loss = F.cross_entropy(model(torch.randn(4, 6)), torch.tensor([0, 1, 2, 0]))
        loss.backward()
        opt.step()
        rec.step()
    dtypes = traces.load(tmp_path / "t").manifest["dtypes"]
    compute = "bfloat16" if autocast else "float32"
    assert dtypes == {"activation": compute, "weight": "float32", "gradient": compute,
                      "autocast": autocast and "bfloat16", "stored_weights": "float16"}
