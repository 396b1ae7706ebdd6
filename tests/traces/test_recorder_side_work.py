"""GEMM work without gradients inside a training step is refused, never dropped.

Each case below recorded on main before without a word, leaving a trace without that work: an EMA
copy kept inside the recorded model and run under ``no_grad`` (in the loss, after the optimizer
step, after ``rec.step()``), the recorded model itself run under ``no_grad`` inside the step, a
functional product on the model's parameters or on detached tensors, a hand-written update with a
GEMM; and a recorded layer called inside a ``torch.func`` transform died with a RuntimeError.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from traces import RecorderError
from traces.recording.recorder import bookkeeping

TARGET = torch.tensor([0, 1, 2, 0, 1])


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.out = nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(x)))


class WithEMA(nn.Module):
    """A model keeping an exponential-moving-average copy of itself as a submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.body = Net()
        self.ema = copy.deepcopy(self.body).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def ema_in_loss(model, x, out):
    with torch.no_grad():
        soft = model.ema(x).softmax(-1)
    return F.kl_div(out.log_softmax(-1), soft, reduction="batchmean")


def model_again_in_loss(model, x, out):
    with torch.no_grad():
        target = model(x).argmax(-1)
    return F.cross_entropy(out, target)


def functional_on_weight(model, x, out):
    with torch.no_grad():
        F.linear(x, model.fc.weight)
    return out.sum()


def detached_product(model, x, out):
    return out.sum() + (x @ model.fc.weight.detach().T).sum() * 0


def inference_mode_ema(model, x, out):
    with torch.inference_mode():
        model.ema(x)
    return out.sum()


CASES = {"ema_in_loss": (ema_in_loss, WithEMA), "model_again_in_loss": (model_again_in_loss, Net),
         "functional_on_weight": (functional_on_weight, Net), "detached_product": (detached_product, Net),
         "inference_mode_ema": (inference_mode_ema, WithEMA)}


@pytest.mark.parametrize("case", list(CASES))
def test_a_gemm_without_gradients_inside_the_step_is_refused(tmp_path, case):
    loss_of, make = CASES[case]
    model = make()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with pytest.raises(RecorderError, match=r"aten\.\w+ at .*test_recorder_side_work\.py:\d+ .*"
                                            r"(without gradients|submodule ema)"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            x = torch.randn(5, 4)
            opt.zero_grad()
            loss_of(model, x, model(x)).backward()
            opt.step()
            rec.step()


def test_a_hand_written_update_with_a_gemm_is_refused(tmp_path):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"aten\.mm at .*w\.sub_.*without gradients"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            opt.zero_grad()
            model(torch.randn(5, 4)).sum().backward()
            with torch.no_grad():
                w = model.fc.weight
                w.sub_(0.01 * (w.grad @ (w.T @ w)))
            opt.step()
            rec.step()


def test_an_ema_submodule_after_rec_step_is_refused_unless_the_model_evaluates(tmp_path):
    def run(path, evaluate: bool) -> None:
        model = WithEMA()
        opt = torch.optim.SGD(model.body.parameters(), lr=0.1)
        with traces.record(model, path, optimizer=opt, every=1) as rec:
            for _ in range(2):
                model.train()
                x = torch.randn(5, 4)
                opt.zero_grad()
                F.cross_entropy(model(x), TARGET).backward()
                opt.step()
                rec.step()
                if evaluate:
                    model.eval()
                with torch.no_grad():
                    model.ema(x)

    with pytest.raises(RecorderError, match=r"submodule ema of the recorded model, called on its own "
                                            "without gradients"):
        run(tmp_path / "a", evaluate=False)
    run(tmp_path / "b", evaluate=True)
    assert traces.load(tmp_path / "b").iterations == [0, 1]


def test_side_work_marked_as_bookkeeping_records(tmp_path):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
        x = torch.randn(5, 4)
        opt.zero_grad()
        model(x).sum().backward()
        with torch.no_grad(), bookkeeping():
            F.linear(x, model.fc.weight)
        opt.step()
        rec.step()
    assert [s.name for s in traces.load(tmp_path / "t").layers] == ["fc", "out"]


def test_a_recorded_layer_inside_vmap_is_refused(tmp_path):
    from torch.func import functional_call, grad, vmap

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def per_sample(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),)).sum()

    with pytest.raises(RecorderError, match=r"fc was called inside a torch\.func transform"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            x = torch.randn(5, 4)
            opt.zero_grad()
            model(x).sum().backward()
            vmap(grad(per_sample), in_dims=(None, 0))(params, x)
            opt.step()
            rec.step()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit, imported by torch.compile
def test_a_compiled_wrapper_of_the_recorded_model_is_refused_as_such(tmp_path):
    """``torch.compile(model)`` made after the model was handed to ``record`` was refused as "a
    matrix product of a OptimizedModule module outside the recorded model"; it is the model itself."""
    model = Net()
    compiled = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"the recorded model runs through torch\.compile"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            opt.zero_grad()
            compiled(torch.randn(5, 4)).sum().backward()
            opt.step()
            rec.step()


def test_the_model_without_gradients_before_its_training_forward_is_refused(tmp_path):
    """Pseudo-labels from the recorded model itself in training mode under ``no_grad``, then the
    training step: that pass's GEMMs are the step's work (on main it recorded without a word)."""
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"ran a forward pass in training mode without gradients at "
                                            r".*test_recorder_side_work\.py:\d+ .*`target = model\(x\)"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            x = torch.randn(5, 4)
            with torch.no_grad():
                target = model(x).argmax(-1)
            opt.zero_grad()
            F.cross_entropy(model(x), target).backward()
            opt.step()
            rec.step()


def test_reentrant_checkpointing_records_its_no_grad_forward(tmp_path):
    """``checkpoint(use_reentrant=True)`` runs its forward under no_grad: recorded (forward work
    only), and the recomputation in backward carries the backward passes
    (tests/traces/test_recorder_checkpointing.py)."""
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(Net):
        def forward(self, x):
            h = checkpoint(lambda t: torch.relu(self.fc(t)), x.requires_grad_(), use_reentrant=True)
            return self.out(h)

    model = Checkpointed()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
        opt.zero_grad()
        model(torch.randn(5, 4)).sum().backward()
        opt.step()
        rec.step()
    assert [s.name for s in traces.load(tmp_path / "t").layers] == ["fc", "out", "fc#1"]


def test_a_diverged_run_is_refused_at_its_step_not_written_as_a_trace_replay_refuses(tmp_path):
    """A learning rate of 1e30 made ``hwsim train`` write a trace with NaN weights and a NaN loss in
    its JSON, which ``trace validate`` and ``replay`` then refused: the recorder refuses at the step."""
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=1e30)
    with pytest.raises(RecorderError, match=r"iteration \d+: .*(not finite|the loss is nan)"):
        with traces.record(model, tmp_path / "t", optimizer=opt, every=1) as rec:
            for _ in range(4):
                x = torch.randn(5, 4)
                opt.zero_grad()
                loss = F.cross_entropy(model(x), TARGET)
                loss.backward()
                opt.step()
                rec.step(loss=loss.item())
    # refused at the first step: nothing is left that a rerun would have to remove
    assert not (tmp_path / "t").exists()


def test_a_non_finite_loss_is_refused(tmp_path):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"iteration 0: the loss is nan"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            opt.zero_grad()
            model(torch.randn(5, 4)).sum().backward()
            opt.step()
            rec.step(loss=float("nan"))


def _train_step(model, opt, rec) -> None:
    opt.zero_grad()
    F.cross_entropy(model(torch.randn(5, 4)), TARGET).backward()
    opt.step()
    rec.step()


def test_an_evaluation_left_in_training_mode_after_the_last_step_is_refused_at_close(tmp_path):
    """A forward pass of the model in training mode under ``no_grad`` after the last step (an
    evaluation without ``model.eval()``), with no step after it, was dropped without a word: the
    trace closed complete. Refused when recording closes, naming the call; the trace is incomplete."""
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"training mode without gradients at .*test_recorder_side_work"
                                            r"\.py:\d+ .*`model\(torch\.randn\(7, 4\)\)` after the last "
                                            r"training step, and no step followed.*model\.eval\(\)"):
        with traces.record(model, tmp_path / "t", optimizer=opt, every=1) as rec:
            _train_step(model, opt, rec)
            _train_step(model, opt, rec)
            with torch.no_grad():
                model(torch.randn(7, 4))
    tr = traces.load(tmp_path / "t")
    assert tr.iterations == [0, 1] and not tr.complete


def test_a_forward_pass_whose_step_never_came_is_refused_at_close(tmp_path):
    """A training forward pass (gradients on) after the last ``rec.step()``, with no backward or
    step after it, was dropped without a word; refused at close naming where it began."""
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def validation_loss() -> float:
        return F.cross_entropy(model(torch.randn(5, 4)), TARGET).item()

    site = f"{__file__}:{validation_loss.__code__.co_firstlineno + 1} in validation_loss"
    with pytest.raises(RecorderError, match=rf"\(2 layer calls, the first 'fc'\) began at {site} after the "
                                            "last rec.step"):
        with traces.record(model, tmp_path / "t", optimizer=opt) as rec:
            _train_step(model, opt, rec)
            validation_loss()
    assert not traces.load(tmp_path / "t").complete


def test_the_model_without_gradients_on_an_unwatched_iteration_is_refused(tmp_path):
    """The no-grad training-mode pass before a step was refused only on watched iterations (the first
    and mask iterations, by default): on iteration 1 of ``every=5`` it recorded without a word."""
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"ran a forward pass in training mode without gradients at "
                                            r".*`target = model\(x\)"):
        with traces.record(model, tmp_path / "t", optimizer=opt, every=5) as rec:
            _train_step(model, opt, rec)
            x = torch.randn(5, 4)
            with torch.no_grad():
                target = model(x).argmax(-1)
            opt.zero_grad()
            F.cross_entropy(model(x), target).backward()
            opt.step()
            rec.step()


def test_a_copy_of_the_recorded_model_is_a_module_outside_it(tmp_path):
    """``copy.deepcopy(model)`` during recording (an EMA or distillation teacher) and ``torch.save(model)``
    died with ``TypeError: cannot pickle '_thread.lock' object`` (the recorder's hooks were copied with
    it). The copy is a plain module: in eval mode between steps it runs; its GEMMs inside a training
    step are refused as a teacher's are."""
    import io

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"of a Net module outside the recorded model"):
        with traces.record(model, tmp_path / "t", optimizer=opt, every=1) as rec:
            _train_step(model, opt, rec)
            teacher = copy.deepcopy(model).eval()
            torch.save(model, io.BytesIO())
            model.eval()
            with torch.no_grad():
                teacher(torch.randn(3, 4))
                model(torch.randn(3, 4))
            model.train()
            _train_step(model, opt, rec)
            x = torch.randn(5, 4)
            with torch.no_grad():
                soft = teacher(x).softmax(-1)
            F.kl_div(model(x).log_softmax(-1), soft, reduction="batchmean").backward()
    assert traces.load(tmp_path / "t", check=False).iterations == [0, 1]
