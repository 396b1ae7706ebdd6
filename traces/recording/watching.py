"""The recorder's watch over a training step: every GEMM it executes is a recorded layer's, or refused.

:class:`StepWatch` is the part of :class:`~traces.recording.recorder.Recorder` that decides, on the watched
iterations (``gemm_check``), whether each matrix product a training step executes is held by the
trace (DESIGN.md, recorder rules):

- the model's forward pass runs under a :class:`~traces.recording.capture.GemmWatch` that attributes each
  GEMM to the innermost recorded layer call (one per call), and the outside-forward
  :class:`~traces.recording.capture.Gate` watches training computation beyond it (a loss, a head);
- the backward pass runs under a GEMM watch: a GEMM must be run by an autograd node of a recorded
  layer call (its backward-data and backward-weight GEMMs, once each); GEMMs of custom
  ``autograd.Function`` backwards and gradient hooks (Python code autograd runs), of a backward
  through a gradient (a gradient penalty) and second backwards are refused;
- modules outside the recorded model (a teacher under ``no_grad``) run under a GEMM watch that
  refuses their GEMMs;
- the optimizer must be one whose update a trace describes (:mod:`traces.format.optimizers`); a declared
  optimizer's step runs under a GEMM watch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from ..format import optimizers
from ..format.errors import RecorderError
from .capture import (
    ElementwiseCount,
    GemmWatch,
    call_site,
    in_bookkeeping,
    op_name,
    unfused_ops_per_weight,
    user_frame,
)

if TYPE_CHECKING:
    from .calls import _Call

_MAX_LAYER_NODES = 64  # autograd nodes one layer call may create (its GEMM, views, a method's masks)


class StepWatch:
    """The GEMM watch of :class:`~traces.recording.recorder.Recorder` (a mixin: it uses the recorder's
    model, schedule, writer, layer stack and layer table)."""

    def _forward_begins(self, module: nn.Module, args: tuple) -> None:
        """The model's forward pre-hook: a training forward pass of a watched iteration turns the
        GEMM watch on (and the outside-forward gate off for the pass: the watch sees every
        operator the gate would)."""
        start = self._watch is None and self._training_now()
        if start:
            if not self._started:
                self._begin_iteration()
            start = self._watched()
            if self._nograd_pass is not None:  # on every iteration: noting it costs one call site
                site, self._nograd_pass = self._nograd_pass, None
                raise RecorderError(
                    f"the recorded model ran a forward pass in training mode without gradients at {site} "
                    "before this training step's forward pass (pseudo-labels, a teacher pass of the model "
                    "itself): its GEMMs are work of the step that no recorded layer holds, so the trace "
                    "would miss them; if it was evaluation, put the model in eval mode (model.eval()) "
                    "for it, as eval passes are not training steps")
        elif self._watch is None and not self._forward_marks and self._writer is not None \
                and self.model.training and not torch.is_grad_enabled():
            self._nograd_pass = self._nograd_pass or call_site()  # refused if a step follows, or at close
        if start:  # only watched training forward passes pay the dispatch mode's per-operator cost
            self._watch = GemmWatch(self._on_gemm)
            self._watch.__enter__()
            if self._gate_off_for == "unwatched":
                self._gate_off_for = "forward"  # back on when the pass ends, for the loss
            else:
                self._gate_off("forward")
        self._forward_marks.append(start)

    def _watched(self) -> bool:
        """Whether the current iteration runs under the GEMM watch and gate (``gemm_check``)."""
        return self._gemm_check == "every" or self.iteration == 0 or self._masks_now

    def _forward_ends(self, module: nn.Module, args: tuple, y: Any) -> None:
        """The model's forward hook (run even when the forward raised): the watch goes off again."""
        if self._forward_marks and self._forward_marks.pop():
            self._stop_watch()

    def _stop_watch(self) -> None:
        """Leave the GEMM watch's dispatch mode, if it is on, and put the gate back."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.__exit__(None, None, None)
        self._gate_on()

    def _gate_off(self, why: str) -> None:
        """Take the outside-forward gate off the mode stack: during a watched forward pass (the
        watch sees every operator), an optimizer step (no grad: nothing the gate watches) or,
        with ``gemm_check="masks"``, from :meth:`step` until a watched iteration's forward pass."""
        if self._gate_off_for is None and self._gate is not None and self._gate.suspend():
            self._gate_off_for = why

    def _gate_on(self, *whys: str) -> None:
        """Put the gate back if it is off (for one of ``whys``, when given)."""
        if self._gate_off_for is not None and (not whys or self._gate_off_for in whys):
            self._gate_off_for = None
            self._gate.resume()

    def _optimizer_begins(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        """Any optimizer's step pre-hook: refuses an optimizer whose update a trace cannot describe
        (:func:`traces.format.optimizers.check`), adopts the first one stepping when ``record`` was given
        none (the manifest names it), and watches the step of a declared one for matrix products.
        A step runs under ``torch.no_grad()`` (unless the optimizer is ``differentiable``), where
        the gate lets every call pass, so it goes off."""
        if self._writer is None or not self._training_now() or self._shadow_step:
            return
        optimizers.check(optimizer, self._declared_state)
        ours = [self._param_names[p] for g in optimizer.param_groups for p in g["params"]
                if p in self._param_names]
        if ours:
            self._one_optimizer(optimizer, ours[0])
        if self.optimizer is None:
            self.optimizer = optimizer
        if not optimizers.is_known(optimizer) and self._opt_watch is None and self._watched():
            name = type(optimizer).__name__
            self._opt_watch = GemmWatch(partial(self._on_optimizer_gemm, name))
            self._opt_watch.__enter__()
        if self._opt_count is None and self._watched():  # its element work, counted on watched steps
            self._opt_count = ElementwiseCount()
            self._opt_count.__enter__()
        if not optimizer.defaults.get("differentiable", False):
            self._gate_off("optimizer")

    def _one_optimizer(self, optimizer: torch.optim.Optimizer, param: str) -> None:
        """Refuse a second optimizer stepping parameters of the recorded model in the same training
        step (``param`` is one of them): the trace names one optimizer, whose state tensors and work
        the update pass charges to every weight, so the other's weights would be priced wrongly."""
        first = self._stepping_optimizer
        if first is not None and first is not optimizer:
            raise RecorderError(
                f"two optimizers step parameters of the recorded model in one training step: "
                f"{type(first).__name__} and {type(optimizer).__name__} (its parameters include "
                f"{param!r}); a trace names one optimizer, whose state and work the update pass "
                "charges to every weight, so the other's weights would be priced wrongly: use one "
                "optimizer with parameter groups while recording")
        self._stepping_optimizer = optimizer

    def _optimizer_ends(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        """Any optimizer's step post-hook (not run when the step raised: :meth:`step`, the next
        watched forward pass or :meth:`close` puts the gate back then)."""
        if self._shadow_step:  # the stand-in step of unfused_ops_per_weight
            return
        count = self._opt_count
        self._optimizer_stepped = True
        self._stop_optimizer_watch()
        if count is not None:
            stepped = sum(p.numel() for g in optimizer.param_groups for p in g["params"]
                          if p.grad is not None and p.numel() > 1)
            if stepped:
                per_weight = count.elements / stepped
                if count.fused:  # one kernel: count what it computes on the single-tensor path
                    self._shadow_step = True
                    try:
                        per_weight = unfused_ops_per_weight(optimizer)
                    finally:
                        self._shadow_step = False
                self._update_ops_per_weight = max(self._update_ops_per_weight or 0.0, per_weight)
        self._gate_on("optimizer")

    def _watch_foreign(self, on: bool) -> None:
        """Register the global module forward hooks that watch modules outside the recorded model
        (``on``), or remove them: they are on from the end of the step before a watched iteration
        (or its start, for an iteration that takes masks for a learning-rate change) to the end of
        the watched iteration, so that unwatched steps do not pay for the hooks on every module."""
        if on and not self._foreign_handles:
            self._foreign_handles = [
                register_module_forward_pre_hook(self._foreign_begins),
                register_module_forward_hook(self._foreign_ends, always_call=True)]
        elif not on:
            for h in self._foreign_handles:
                h.remove()
            self._foreign_handles = []

    def _foreign_begins(self, module: nn.Module, args: tuple) -> None:
        """Any module's forward pre-hook: a module outside the recorded model (a distillation
        teacher, a frozen feature extractor) called during a watched training step, gradients
        or not, runs under a GEMM watch that refuses its matrix products: their work is not in
        the trace. So does a submodule of the recorded model called on its own, outside the
        model's forward pass, without gradients (an EMA copy kept inside the model, a frozen
        head): its layers are not recorded then. Nested calls share the outermost call's watch."""
        if getattr(module, "_orig_mod", None) in self._own_modules and self._writer is not None:
            raise RecorderError(
                f"the recorded model runs through torch.compile ({type(module).__name__} wrapping "
                f"{type(module._orig_mod).__name__}): compiled code bypasses the recorder's hooks, so "
                "the trace would miss or misattribute work; train the uncompiled model while recording")
        own = module in self._own_modules
        if own and (module is self.model or self._forward_marks or torch.is_grad_enabled()):
            return  # the model's own forward, or a training call whose layers are recorded
        watch = None
        if not self._foreign and self._writer is not None and self.model.training \
                and self._watched_upcoming():
            name = type(module).__name__
            watch = GemmWatch(partial(self._on_own_nograd_gemm if own else self._on_foreign_gemm,
                                      self._module_name(module) if own else name))
            watch.__enter__()
        self._foreign.append((module, watch))

    def _module_name(self, module: nn.Module) -> str:
        return next((q for q, m in self.model.named_modules() if m is module), type(module).__name__)

    def _foreign_ends(self, module: nn.Module, args: tuple, y: Any) -> None:
        if not self._foreign or self._foreign[-1][0] is not module:
            return
        watch = self._foreign.pop()[1]
        if watch is not None:
            watch.__exit__(None, None, None)

    def _watched_upcoming(self) -> bool:
        """:meth:`_watched` for the iteration running now or, before its forward pass, the next one."""
        if self._started:
            return self._watched()
        return self._gemm_check == "every" or self.iteration == 0 or bool(
            self.schedule.reasons(self.iteration, forced=self._force_next))

    def _on_foreign_gemm(self, name: str, func: Any) -> None:
        """A matrix product in a module outside the recorded model during a training step: refused."""
        if in_bookkeeping():
            return
        raise RecorderError(
            f"{op_name(func)} at {call_site()} is a matrix product of a {name} module outside the "
            "recorded model, run during a training step (a distillation teacher, a frozen feature "
            "extractor; under torch.no_grad() or not): the trace holds the recorded model's layers "
            "only, so this work would be missing; record that model in a trace of its own, or put "
            "the recorded model in eval mode while other models evaluate")

    def _on_own_nograd_gemm(self, name: str, func: Any) -> None:
        """A matrix product of a submodule of the recorded model called without gradients outside
        the model's forward pass while the model trains: refused."""
        if in_bookkeeping():
            return
        raise RecorderError(
            f"{op_name(func)} at {call_site()} is a matrix product of submodule {name} of the recorded "
            "model, called on its own without gradients while the model trains (an EMA or teacher "
            "copy, a frozen head): layers run without gradients are not recorded, so this work would "
            "be missing; keep such a copy outside the model and record it in a trace of its own, or "
            "put the recorded model in eval mode (model.eval()) while it evaluates")

    def _in_watched_step(self) -> bool:
        """Whether a watched training step is under way: its first training forward pass has run,
        :meth:`step` has not, and the model is in training mode (the outside-forward gate then
        watches computation without gradients too)."""
        return self._started and self._writer is not None and self.model.training and self._watched()

    def _on_side_gemm(self, func: Any) -> None:
        """A matrix product without gradients inside a watched training step, outside the model's
        forward pass and the optimizer's step: refused."""
        if in_bookkeeping():
            return
        raise RecorderError(
            f"{op_name(func)} at {call_site()} is a matrix product run during a training step without "
            "gradients (under torch.no_grad(), or on tensors that need none: an EMA teacher, "
            "pseudo-labels, a statistic, a hand-written update) outside the recorded layers and the "
            "optimizer step, so the trace would not contain its work; if it is evaluation, run it "
            "after rec.step() with the model in eval mode; if it is deliberately left out of the "
            "simulation, run it under traces.recording.recorder.bookkeeping()")

    def _stop_optimizer_watch(self) -> None:
        watch, self._opt_watch = self._opt_watch, None
        count, self._opt_count = self._opt_count, None
        for mode in (count, watch):  # the last entered leaves first
            if mode is not None:
                mode.__exit__(None, None, None)

    def _on_optimizer_gemm(self, name: str, func: Any) -> None:
        """A matrix product in the step of an optimizer declared element-wise: refused."""
        raise RecorderError(
            f"{op_name(func)} at {call_site()} is a matrix product in the step of optimizer {name}, "
            "declared element-wise (optimizer_state_tensors): hwsim's update pass has no GEMMs, so "
            "the trace would miss this work; record with an element-wise optimizer")

    def _on_gemm(self, func: Any) -> None:
        """Attribute a GEMM operator being executed to the innermost recorded layer call, or refuse."""
        if in_bookkeeping():
            return
        if self._stack:
            rec = self._stack[-1]
            if rec.gemm is None:
                rec.gemm = op_name(func)
                return
            raise RecorderError(
                f"{op_name(func)} at {call_site()} is a second matrix product in one call of the "
                f"recorded layer {rec.qual or '(model)'} (its own GEMM was {rec.gemm}); "
                "a trace holds one GEMM per layer call, so this work would be missing: move it into a "
                "Conv2d/Linear module of its own (a training method's own math: wrap it in "
                "traces.recording.recorder.bookkeeping())")
        raise RecorderError(
            f"{op_name(func)} at {call_site()} is a matrix product that no recorded layer accounts "
            "for: it runs outside every recorded layer call during a training step, so the trace "
            "would not contain its work; hwsim records nn.Conv1d/2d/3d, nn.ConvTranspose1d/2d/3d, "
            "nn.Linear/Embedding and "
            "recurrent modules (subclasses included), and F.linear/mm/addmm/matmul with a parameter "
            "as right operand inside the model's forward, not other GEMM modules or products of "
            "computed weights: wrap the computation in such a module (a layer run under "
            "torch.no_grad() or in eval mode inside a training step is not recorded either, "
            "except inside torch.utils.checkpoint)")

    def _map_backward(self, rec: _Call, y: torch.Tensor) -> None:
        """Note the autograd nodes the layer call created (from its output back to its input and
        parameters), whose backward GEMMs are the layer's: backward-data (when the input needs a
        gradient) and backward-weight (when the weight does); one convolution_backward does both;
        an embedding's backward (a scatter-add) runs none."""
        weight = rec.weight is not None and rec.weight.requires_grad
        kind = self._layers[rec.layer].kind  # a product with an embedding's weight (a tied head) is linear
        if kind == "embedding":
            rec.backward_limit = 0
        elif kind != "linear" and isinstance(rec.module, nn.modules.conv._ConvNd) \
                and rec.module in self._targets:
            rec.backward_limit = int(rec.x_node is not None or weight)
        else:
            rec.backward_limit = int(rec.x_node is not None) + int(weight)
        todo, seen = [y.grad_fn], 0
        while todo and seen < _MAX_LAYER_NODES:
            node = todo.pop()
            if node is None or node is rec.x_node or node in self._node_calls \
                    or type(node).__name__ == "AccumulateGrad":
                continue
            self._node_calls[node] = rec
            seen += 1
            todo.extend(f for f, _ in node.next_functions)

    @contextlib.contextmanager
    def _backward_watch(self) -> Iterator[None]:
        """Run one backward pass (``loss.backward()``, ``torch.autograd.grad``) of a watched
        training step under a GEMM watch: every GEMM operator must be a recorded layer's
        backward-data or backward-weight GEMM (run by one of its autograd nodes, at most once
        each), else it is refused."""
        if not self._watched() or self._bwd_watch is not None:
            yield
            return
        self._backward_frame = user_frame()
        self._bwd_watch = GemmWatch(self._on_backward_gemm)
        try:
            with self._bwd_watch:
                yield
        finally:
            self._bwd_watch = None

    def _on_backward_gemm(self, func: Any) -> None:
        """Attribute a GEMM operator run in the backward pass to a recorded layer call, or refuse."""
        if in_bookkeeping():
            return
        if self._stack or self._recomputing:  # a forward run again in backward (activation checkpointing)
            self._on_gemm(func)
            return
        op, frame = op_name(func), user_frame()
        if frame is not None and frame is not self._backward_frame:
            raise RecorderError(
                f"{op} at {call_site(frame)} is a matrix product in the backward pass, in Python code "
                "run by autograd (a custom torch.autograd.Function's backward, a gradient hook, a "
                "recomputation other than torch.utils.checkpoint's): it is "
                "not a recorded layer's backward-data or backward-weight GEMM, so the trace would not "
                "contain its work; do it in a recorded nn.Conv2d/nn.Linear forward instead, or record "
                "without it")
        node = torch._C._current_autograd_node()
        rec = self._node_calls.get(node) if node is not None else None
        where = f"in the backward pass started at {call_site(self._backward_frame)}"
        if rec is None:
            raise RecorderError(
                f"{op} {where} runs in autograd node {type(node).__name__}, which belongs to no "
                "recorded layer call: a backward through a gradient (create_graph=True: a gradient "
                "penalty, a double backward) or through work outside the recorded layers; a trace "
                "holds each recorded layer's backward-data and backward-weight GEMMs only, so this "
                "work would be missing")
        rec.backward_gemms += 1
        if rec.backward_gemms > rec.backward_limit:
            raise RecorderError(
                f"{op} {where} is one more backward GEMM of the recorded layer "
                f"{self._layers[rec.layer].name} than its backward-data and backward-weight passes "
                "(a second backward through the same graph: retain_graph=True, or a double backward); "
                "a trace holds one backward per layer call, so this work would be missing")

