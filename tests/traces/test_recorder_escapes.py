"""GEMM work outside the recorded layers' forward passes is recorded or refused, never dropped.

Each case below ran on the recorder before without a word, leaving a trace without that work:
a matrix product in a custom ``autograd.Function.backward``, in a weight-gradient hook, in the
second backward of a gradient penalty, in a teacher model under ``no_grad``, in the optimizer's
step (``torch.optim.Muon``, an optimizer hwsim does not know), and a model compiled in place.
"""

from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from hwsim.simulate import simulate
from traces import RecorderError

TARGET = torch.tensor([0, 1, 2, 0, 1])


class Net(nn.Module):
    """Two Linear layers with an optional function applied between them."""

    def __init__(self, between=None) -> None:
        super().__init__()
        self.fc, self.out = nn.Linear(4, 4), nn.Linear(4, 3)
        self.between = between or (lambda h: h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.between(torch.relu(self.fc(x))))


def step(model: nn.Module, rec, opt: torch.optim.Optimizer, x: torch.Tensor | None = None) -> None:
    opt.zero_grad()
    x = torch.randn(5, 4) if x is None else x
    F.cross_entropy(model(x), TARGET).backward()
    opt.step()
    rec.step()


def line_of(fn, text: str) -> str:
    """``file:line`` of the line of ``fn``'s source holding ``text``."""
    fn = inspect.unwrap(fn)
    lines, first = inspect.getsourcelines(fn)
    offset = next(i for i, line in enumerate(lines) if text in line)
    return f"{fn.__code__.co_filename}:{first + offset}"


R = torch.randn(4, 4)


class Mix(torch.autograd.Function):
    """Identity in forward; its backward mixes the gradient with a matrix (a GEMM)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        return h.clone()

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        return g @ R


def test_gemm_in_a_custom_backward_is_refused_with_its_line(tmp_path):
    model = Net(Mix.apply)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    site = re.escape(line_of(Mix.backward, "g @ R"))
    with pytest.raises(RecorderError, match=rf"aten\.mm at {site} in backward: `return g @ R` is a matrix "
                                            r"product in the backward pass"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            step(model, rec, opt)


def test_gemm_in_a_weight_gradient_hook_is_refused_with_its_line(tmp_path):
    model = Net()

    def project(g: torch.Tensor) -> torch.Tensor:
        return g @ R

    model.fc.weight.register_hook(project)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    site = re.escape(line_of(project, "g @ R"))
    with pytest.raises(RecorderError, match=rf"aten\.mm at {site} in project"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            step(model, rec, opt)


def test_a_gradient_penalty_double_backward_is_refused(tmp_path):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"aten\.mm in the backward pass started at .*test_recorder_"
                                            r"escapes\.py:\d+ in test_a_gradient_penalty.*create_graph"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            x = torch.randn(5, 4, requires_grad=True)
            loss = F.cross_entropy(model(x), TARGET)
            (g,) = torch.autograd.grad(loss, x, create_graph=True)
            (loss + g.pow(2).sum()).backward()
            opt.step()
            rec.step()


def test_a_second_backward_through_the_same_graph_is_refused(tmp_path):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"one more backward GEMM of the recorded layer out"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            loss = F.cross_entropy(model(torch.randn(5, 4)), TARGET)
            loss.backward(retain_graph=True)
            loss.backward()
            opt.step()
            rec.step()


def test_a_teacher_under_no_grad_is_refused_naming_its_call(tmp_path):
    model, teacher = Net(), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def distill() -> None:
        x = torch.randn(5, 4)
        with torch.no_grad():
            soft = teacher(x).softmax(-1)
        loss = F.kl_div(model(x).log_softmax(-1), soft, reduction="batchmean")
        loss.backward()

    site = re.escape(line_of(distill, "soft = teacher(x)"))
    with pytest.raises(RecorderError, match=rf"aten\.addmm at {site} in distill: .* of a Sequential module "
                                            "outside the recorded model"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            opt.zero_grad()
            distill()
            opt.step()
            rec.step()


def test_the_recorded_model_in_eval_mode_may_run_other_models(tmp_path):
    """Evaluation between steps is not a training step: other models may run then."""
    model, other = Net(), nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, tmp_path / "t", optimizer=opt, gemm_check="every") as rec:
        step(model, rec, opt)
        model.eval()
        with torch.no_grad():
            other(torch.randn(2, 4))
            model(torch.randn(2, 4))
        model.train()
        step(model, rec, opt)
    assert traces.load(tmp_path / "t").iterations == [0, 1]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit, imported by torch.compile
def test_model_compile_in_place_is_refused_up_front(tmp_path):
    model = Net()
    model.compile()
    with pytest.raises(RecorderError, match=r"\(model\) was compiled in place by \(model\)\.compile\(\)"):
        traces.record(model, tmp_path / "t")


def test_muon_is_refused_for_its_newton_schulz_gemms(tmp_path):
    model = Net()
    muon = torch.optim.Muon([model.fc.weight, model.out.weight], lr=0.02)
    with pytest.raises(RecorderError, match=r"optimizer Muon runs matrix products in its step \(a Newton"):
        traces.record(model, tmp_path / "t", optimizer=muon)
    # not handed to record(): refused at its first step, and nothing is left behind
    with pytest.raises(RecorderError, match=r"optimizer Muon runs matrix products"):
        with traces.record(model, tmp_path / "t") as rec:
            step(model, rec, muon)
    assert not (tmp_path / "t").exists()


class Plain(torch.optim.Optimizer):
    """An element-wise optimizer hwsim does not know (sign descent with one state tensor)."""

    def __init__(self, params, lr: float = 0.01, mix: torch.Tensor | None = None) -> None:
        super().__init__(params, {"lr": lr})
        self.mix = mix

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad if self.mix is None or p.dim() != 2 else p.grad @ self.mix.expand(p.shape[1], -1)
                buf = self.state[p].setdefault("avg", torch.zeros_like(p))
                buf.mul_(0.9).add_(g)
                p.add_(buf.sign(), alpha=-group["lr"])


def test_an_unknown_optimizer_is_refused_unless_declared(tmp_path):
    model = Net()
    opt = Plain(model.parameters())
    with pytest.raises(RecorderError, match=r"optimizer Plain is not one hwsim knows .* "
                                            r"optimizer_state_tensors=N"):
        traces.record(model, tmp_path / "t", optimizer=opt)
    with traces.record(model, tmp_path / "t", optimizer=opt, optimizer_state_tensors=1) as rec:
        step(model, rec, opt)
    info = traces.load(tmp_path / "t").manifest["optimizer"]
    assert info["name"] == "Plain" and info["state_tensors"] == 1 and info["declared"] is True


def test_a_declared_optimizer_running_a_gemm_is_refused_with_its_line(tmp_path):
    model = Net()
    opt = Plain(model.parameters(), mix=torch.eye(4)[:1])
    site = re.escape(line_of(Plain.step, "p.grad @ self.mix"))
    with pytest.raises(RecorderError, match=rf"aten\.mm at {site} in step: .* in the step of optimizer Pl"):
        with traces.record(model, tmp_path / "t", optimizer=opt, optimizer_state_tensors=1) as rec:
            step(model, rec, opt)


class Symmetric(nn.Module):
    """A parametrization: the weight is ``W + Wᵀ`` of the stored parameter."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + w.transpose(0, 1)


@pytest.mark.parametrize("how", ["weight_norm", "parametrize", "fast_weights"])
def test_a_weight_computed_in_the_forward_pass_is_refused(tmp_path, how):
    """A parametrized layer's weight (or a functional_call's fast weight) is a tensor computed from
    the parameters: the recorder stored no weight-gradient count for it (-1) and an update ΔW of
    zero (it is never updated itself), so a ReRAM replay wrote no cells for the layer."""
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    forward = model
    if how == "weight_norm":
        nn.utils.parametrizations.weight_norm(model.fc)
    elif how == "parametrize":
        nn.utils.parametrize.register_parametrization(model.fc, "weight", Symmetric())
    else:
        def forward(x: torch.Tensor) -> torch.Tensor:
            fast = {k: v - 0.01 for k, v in model.named_parameters()}
            return torch.func.functional_call(model, fast, (x,))
    with pytest.raises(RecorderError, match=r"^fc: its weight is computed in the training forward pass .* "
                                            r"record the model without it"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            opt.zero_grad()
            F.cross_entropy(forward(torch.randn(5, 4)), TARGET).backward()
            opt.step()
            rec.step()


def test_a_second_optimizer_on_the_models_weights_is_refused(tmp_path):
    """SGD on one layer and Adam on the other: the manifest named SGD (no state) for both, so the
    update pass priced the Adam layer's two state tensors as none. A re-created optimizer (one per
    step) and an optimizer of parameters outside the model are not a second one."""
    model, other = Net(), nn.Parameter(torch.ones(3))
    sgd, adam = torch.optim.SGD(model.fc.parameters(), lr=0.1), torch.optim.Adam(model.out.parameters())
    side = torch.optim.Adam([other])

    def two_steps(rec, opts) -> None:
        for opt in opts:
            opt.zero_grad()
        F.cross_entropy(model(torch.randn(5, 4)), TARGET).backward()
        (other * other).sum().backward()
        for opt in opts:
            opt.step()
        rec.step()

    with pytest.raises(RecorderError, match=r"two optimizers step parameters of the recorded model in "
                                            r"one training step: SGD and Adam \(its parameters include "
                                            r"'out.weight'\)"):
        with traces.record(model, tmp_path / "t", optimizer=sgd) as rec:
            two_steps(rec, [sgd, side, adam])
    with traces.record(model, tmp_path / "u", every=1) as rec:
        for _ in range(2):
            two_steps(rec, [torch.optim.SGD(model.parameters(), lr=0.1), side])
    assert traces.load(tmp_path / "u").iterations == [0, 1]


@pytest.mark.parametrize(("make", "state"), [
    (lambda ps: torch.optim.SGD(ps, lr=0.1), 0),
    (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), 1),
    (lambda ps: torch.optim.Adam(ps), 2),
    (lambda ps: torch.optim.AdamW(ps, amsgrad=True), 3),
], ids=["sgd", "momentum", "adam", "amsgrad"])
def test_the_manifest_records_the_optimizers_state_tensors(tmp_path, make, state):
    model = Net()
    opt = make(model.parameters())
    with traces.record(model, tmp_path / "t") as rec:  # adopted at its first step
        step(model, rec, opt)
    tr = traces.load(tmp_path / "t")
    assert tr.manifest["optimizer"]["state_tensors"] == state
    assert tr.manifest["optimizer"]["name"] == type(opt).__name__
    row = simulate(tr, "edge-npu", passes=["update"]).to_frame().set_index("layer").loc["fc"]
    # read W, dW and the state; write W and the state: float32 state, the NPU's 8-bit W, 16-bit dW
    assert row["dram_b_read_bytes"] == 16 * (1 + 2 + 4 * state)
    assert row["dram_b_write_bytes"] == 16 * (1 + 4 * state)


def test_replay_refuses_a_trace_of_an_unknown_optimizer_without_its_state(tmp_path):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
        step(model, rec, opt)
    doc = json.loads((tmp_path / "t" / "manifest.json").read_text())
    doc["optimizer"] = {"name": "Lion", "params": {"lr": 0.1}, "state_dtypes": {}}  # as format 2 did
    (tmp_path / "t" / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"optimizer 'Lion' is not one hwsim knows .*\.state_tensors"):
        simulate(tmp_path / "t", "edge-npu")


def test_other_modules_are_watched_on_watched_iterations_only(tmp_path):
    """The global module hooks that watch other models cost every module call: only on iterations
    the GEMM watch covers (iteration 0 and mask iterations by default)."""
    from torch.nn.modules import module as torch_module

    def global_hooks() -> int:
        return len(torch_module._global_forward_pre_hooks)

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = global_hooks()
    with traces.record(model, tmp_path / "t", optimizer=opt, every=2) as rec:
        seen = [global_hooks() - before]
        for _ in range(3):
            step(model, rec, opt)
            seen.append(global_hooks() - before)
    assert seen == [1, 0, 1, 0] and global_hooks() == before  # iterations 0 and 2 watched


def _to_numpy_in_forward(h: torch.Tensor) -> torch.Tensor:
    mixed = h.detach().numpy() @ R.numpy()  # a GEMM numpy runs: invisible to torch
    return h + torch.from_numpy(mixed)


def test_a_tensor_handed_to_numpy_inside_the_step_is_warned_about_once_per_line(tmp_path):
    """A GEMM done in numpy recorded without a word (issue 22): the conversion is what torch sees.
    Converting an activation or a weight matrix inside the training forward pass or the loss warns,
    naming the line, once per line; predicted labels turned into numpy for a metric do not."""
    from traces.format.errors import RecorderWarning

    model = Net(_to_numpy_in_forward)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def loss_with_numpy(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        np.asarray(out.detach()) @ np.asarray(model.out.weight.detach())  # in the loss: also numpy
        (out.argmax(1).numpy() == TARGET.numpy()).mean()  # a metric on labels: no warning
        return F.cross_entropy(out, TARGET)

    with pytest.warns(RecorderWarning) as seen:
        with traces.record(model, tmp_path / "t", optimizer=opt, every=1) as rec:
            for _ in range(3):
                opt.zero_grad()
                loss_with_numpy(torch.randn(5, 4)).backward()
                opt.step()
                rec.step()
    texts = [str(w.message) for w in seen if issubclass(w.category, RecorderWarning)]
    forward = re.escape(line_of(_to_numpy_in_forward, "mixed = "))
    loss = re.escape(line_of(loss_with_numpy, "np.asarray(out.detach())"))
    assert len(texts) == 2, texts
    assert re.search(rf"a \(5, 4\) float32 tensor was converted to numpy .* at {forward}", texts[0]), texts
    assert re.search(rf"a \(5, 3\) float32 tensor .* at {loss}", texts[1]), texts
