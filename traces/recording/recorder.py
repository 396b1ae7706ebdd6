"""Record sparsity traces from PyTorch training (imports torch; everything else does not).

>>> with traces.record(model, "run.trace", every=10, optimizer=opt) as rec:
...     for xb, yb in loader:
...         opt.zero_grad()
...         loss = F.cross_entropy(model(xb), yb)
...         loss.backward()
...         opt.step()
...         rec.step(loss=loss.item())      # after optimizer.step(): ΔW is this step's update

Rules (DESIGN.md): forward hooks plus tensor hooks on outputs, never full backward module hooks
(in-place ops such as ``ReLU(inplace=True)`` break those); every layer's input is aliased so a
tensor shared by several layers (a residual shortcut) gives each layer its own gradient; each
call of a reused module is its own record (:mod:`traces.recording.calls`: the call record and the
module hooks); eval and ``no_grad`` passes are ignored. Products of
two activations (attention, ``bmm``/``einsum`` between activations, SDPA) are ``matmul`` layers
(:mod:`traces.recording.products`). Activation checkpointing's recomputation in backward is recorded
as forward calls once more (:mod:`traces.recording.recomputation`). GEMM work the hooks cannot see
raises :class:`RecorderError` instead of being lost: compiled modules and recurrent layers up front,
and, while a watched training step runs (iteration 0 and every mask iteration; every iteration with
``gemm_check="every"``), every matrix product that no recorded layer call accounts for, found where
it is executed (PyTorch's dispatch level, :mod:`traces.recording.capture`):
``F.linear``/``matmul``/``einsum``/``x @ w`` outside a recorded module, ``nn.LSTMCell``, a second
GEMM inside one layer call; in the backward pass every GEMM that is not a recorded layer call's
backward-data or backward-weight GEMM (a custom ``autograd.Function``'s backward, a gradient hook, a
double backward); GEMMs of modules outside the recorded model (a teacher under ``no_grad``); the
optimizer's GEMMs (``torch.optim.Muon``) and optimizers hwsim does not know
(:mod:`traces.format.optimizers`). Training methods mark their own math with :func:`bookkeeping`.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from ..format import bits, optimizers
from ..format.errors import RecorderError
from ..format.layer import LayerSpec
from ..format.manifest import TENSOR_INDEX, TENSORS, new_manifest
from ..format.schedule import Schedule
from ..format.writer import TraceWriter
from .background import BackgroundWriter
from .calls import _NO_DISPATCH_MODES, _NO_FUNCTION_MODES, ModuleCalls, _Call, _weights_in_layout
from .capture import (
    ElementwiseCount,
    Gate,
    GemmWatch,
    bookkeeping,
    find_targets,
    user_frame,
)
from .functional import FunctionalCalls
from .hooks import Hook
from .modules import (
    inner_lookups,
    own_forward_embedding,
)
from .nonzero import count_nonzero, host_mask
from .products import ProductCapture
from .recomputation import Recomputation
from .vector_ops import VectorOps
from .watching import StepWatch

METHOD_MASKS = ("y_sel", "w", "y_out", "dw_needed")
GEMM_CHECKS = ("masks", "every")  # which training iterations run under the GEMM watch and gate
_ACTIVE: list[Recorder] = []


def active_recorder() -> Recorder | None:
    """The innermost open recorder, for training methods that add their own masks."""
    return _ACTIVE[-1] if _ACTIVE else None


def record(model: nn.Module, path: str | Path, *, every: int = 10, **kwargs: Any) -> Recorder:
    """Open a recorder on ``model`` writing to ``path`` (use as a context manager).

    Args:
        model: any ``nn.Module``; its ``Conv2d`` and ``Linear`` submodules are recorded.
        path: trace directory to create.
        every: exact masks every ``every`` iterations (counts are kept for every iteration).
        **kwargs: see :class:`Recorder`.
    """
    return Recorder(model, path, every=every, **kwargs)


def _check_finite(iteration: int, values: dict[str, Any]) -> None:
    """The loss and metrics given to ``rec.step`` are finite (a trace's JSON holds no NaN): a NaN
    loss means training diverged, and the masks and weights of such steps describe nothing."""
    for name, value in values.items():
        if isinstance(value, (float, int)) and not isinstance(value, bool) and not np.isfinite(value):
            raise RecorderError(f"rec.step() at iteration {iteration}: the {name} is {value} (training "
                                "diverged?); a trace holds finite numbers only: lower the learning rate, "
                                "or stop recording before the run diverges")


def _weights_f16(before: np.ndarray | torch.Tensor, now: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, delta_weight)`` as float16 arrays: the weight before the update and the update,
    the difference taken in the weight's own precision. Converted by torch (vectorized: 0.26 ms
    for 2.4 M elements, where numpy's ``astype(float16)`` takes 4 ms)."""
    now = now.detach()
    if isinstance(before, np.ndarray):
        before = torch.from_numpy(before)
    return (before.to(torch.float16).cpu().numpy(), (now - before).to(torch.float16).cpu().numpy())


def _write(writer: TraceWriter, index: int, meta: dict[str, Any], counts: np.ndarray,
           masks: dict[tuple[int, str], np.ndarray] | None,
           weights: dict[int, tuple[np.ndarray, np.ndarray]] | None,
           arrays: dict[tuple[int, str], np.ndarray] | None) -> None:
    """One iteration's write job: pack the ``bool`` masks to bits and write (any thread)."""
    packed = None if masks is None else {k: bits.pack(v) for k, v in masks.items()}
    writer.write_iteration(index, meta, counts, packed, weights, arrays)


def _run_jobs(jobs: list[Any], writer: TraceWriter) -> None:
    """Several write jobs as one job of the background writer, in order."""
    for job in jobs:
        job(writer)


class Recorder(ModuleCalls, StepWatch, FunctionalCalls, ProductCapture, VectorOps, Recomputation):
    """Captures per-layer masks and counts of a training run into a trace directory.

    Args:
        model: the model being trained.
        path: the trace directory to create.
        every, iters_per_epoch, mask_samples, weights, weight_snapshot_every, lr_changes:
            the recording :class:`~traces.format.schedule.Schedule`.
        optimizer: the optimizer (for its name, hyperparameters, state dtypes and learning rate).
        model_name, method, method_params, dataset, seed: provenance written to the manifest.
        overwrite: replace an existing trace at ``path``.
        first: exact masks on iteration 0 (the schedule's ``first``).
        counts_batch: consecutive counts-only iterations written per file (1: one file each); a
            killed run loses at most the unfinished batch.
        background: pack and write on a worker thread (:class:`~traces.recording.background.BackgroundWriter`)
            instead of in :meth:`step`; the files are the same bytes either way.
        max_pending: jobs the worker may have queued before :meth:`step` waits for it (a job is
            one mask iteration, or a whole batch of counts-only iterations: those are handed
            to the worker ``counts_batch`` at a time, since each hand-over costs a thread switch).
        optimizer_state_tensors: declares an optimizer hwsim does not know (not one of
            :data:`traces.format.optimizers.ELEMENTWISE`) element-wise, keeping this many weight-shaped
            state tensors per weight; without it such an optimizer is refused, and so is one that
            runs matrix products in its step (``torch.optim.Muon``).
        gemm_check: which iterations run under the GEMM watch and gate that refuse unrecorded
            matrix products: ``"masks"`` (default) iteration 0 and every mask iteration, from the
            model's forward pass to :meth:`step`; ``"every"``: every iteration, from start to end.
            Their Python-level dispatch costs 0.3-0.6 ms per step (half a plain MLP step), so by
            default counts-only iterations run unwatched: work a model does on every step is
            refused at iteration 0, work done only on some steps is refused if one of them is a
            mask iteration; pass ``"every"`` to refuse it on any step.
    """

    def __init__(self, model: nn.Module, path: str | Path, *, every: int = 10,
                 iters_per_epoch: int | None = None, mask_samples: int | None = None,
                 weights: bool = True, weight_snapshot_every: int = 10, lr_changes: bool = True,
                 optimizer: torch.optim.Optimizer | None = None, model_name: str | None = None,
                 method: str = "dense", method_params: dict[str, Any] | None = None,
                 dataset: dict[str, Any] | None = None, seed: int | None = None,
                 overwrite: bool = False, first: bool = True, counts_batch: int = 64,
                 background: bool = True, max_pending: int = 2, gemm_check: str = "masks",
                 optimizer_state_tensors: int | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise RecorderError(f"record() needs a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.path = Path(path)
        self.schedule = Schedule(every=every, first=first, iters_per_epoch=iters_per_epoch,
                                 mask_samples=mask_samples, weights=weights,
                                 weight_snapshot_every=weight_snapshot_every, lr_changes=lr_changes)
        if gemm_check not in GEMM_CHECKS:
            raise RecorderError(f"gemm_check must be one of {GEMM_CHECKS}, got {gemm_check!r}")
        self._gemm_check = gemm_check
        if counts_batch < 1 or max_pending < 1:
            raise RecorderError(f"counts_batch and max_pending must be >= 1, got {counts_batch} and "
                                f"{max_pending}")
        self._counts_batch = counts_batch
        self._background = background
        self._max_pending = max_pending
        if optimizer_state_tensors is not None and (not isinstance(optimizer_state_tensors, int)
                                                    or optimizer_state_tensors < 0):
            raise RecorderError("optimizer_state_tensors must be an integer >= 0 (weight-shaped state "
                                f"tensors per weight), got {optimizer_state_tensors!r}")
        self._declared_state = optimizer_state_tensors
        if optimizer is not None:
            optimizers.check(optimizer, optimizer_state_tensors)
        self.optimizer = optimizer
        self._opt_watch: GemmWatch | None = None  # on during a declared optimizer's watched step
        self._opt_count: ElementwiseCount | None = None  # on during any optimizer's watched step
        self._shadow_step = False  # a stand-in optimizer step counting a fused step's work runs
        self._update_ops_per_weight: float | None = None  # the most a watched step did, per weight
        self._bwd_watch: GemmWatch | None = None  # on during a watched step's backward pass
        self._own_modules = set(model.modules())
        self._seen_dtypes: dict[str, torch.dtype] = {}  # activation, gradient, autocast: as first seen
        self._foreign: list[tuple[nn.Module, GemmWatch | None]] = []  # open calls of other modules
        self._foreign_handles: list[Any] = []  # the global module hooks, on for watched iterations
        self._backward_frame: Any = None  # the user's frame that started that backward pass
        self._nograd_pass: str | None = None  # call site of a no-grad training-mode pass of the model
        self._begin_site = ""  # file:line where the current iteration's first recorded call began
        self._provenance = {
            "model": {"name": model_name or type(model).__name__.lower(), "class": type(model).__name__,
                      "parameters": sum(p.numel() for p in model.parameters())},
            "method": {"name": method, "params": dict(method_params or {})},
            "dataset": dict(dataset or {"name": "unspecified"}),
            "seed": seed,
        }
        self._overwrite = overwrite
        self._targets = find_targets(model)
        # each parameter by its first name (named_parameters() lists a tied parameter once)
        self._param_names: dict[torch.Tensor, str] = {p: n for n, p in model.named_parameters()}
        self._owners: list[bool] = []  # per layer of the table: whether it carries its parameter's update
        self._method_masks: dict[nn.Module, dict[str, torch.Tensor]] = defaultdict(dict)
        self._layers: list[LayerSpec] = []
        self._layer_of: dict[tuple[str, int], int] = {}
        self._handles: list[Any] = []
        self._gate: Gate | None = None  # watches training computation outside the forward pass
        self._watch: GemmWatch | None = None  # on during a training forward pass of the model
        self._gate_off_for: str | None = None  # why the gate is off the mode stack (see _gate_off)
        self._forward_marks: list[bool] = []  # per open model forward: whether it turned the watch on
        self._writer: TraceWriter | None = None
        self._worker: BackgroundWriter | None = None  # with background=True: runs the writer's jobs
        self._held: list[Any] = []  # write jobs of counts-only iterations not yet handed to the worker
        self.iteration = 0
        self._batch0: int | None = None
        self._reset_iteration()
        self._last_lr: float | None = None
        self._force_next = False

    # -- setup ------------------------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        self._writer = TraceWriter(self.path, overwrite=self._overwrite,
                                   weight_snapshot_every=self.schedule.weight_snapshot_every,
                                   counts_batch=self._counts_batch)
        if self._background:
            self._worker = BackgroundWriter(self._writer, self._max_pending)
        self._handles.append(self.model.register_forward_pre_hook(Hook(self._forward_begins), prepend=True))
        self._handles.append(self.model.register_forward_hook(Hook(self._forward_ends), always_call=True))
        self._own_forwards: list[tuple[nn.Module, Any]] = []
        for m in self._targets:
            if own_forward_embedding(m):  # its lookups are recorded, not its call (modules.py)
                self._own_forwards.append((m, m.__dict__.get("forward")))
                m.forward = partial(inner_lookups, m, type(m).forward.__get__(m), Hook(self._pre_hook),
                                    Hook(self._post_hook))
                continue
            self._handles.append(m.register_forward_pre_hook(Hook(self._pre_hook)))
            self._handles.append(m.register_forward_hook(Hook(self._post_hook)))
        self._functional_enter()
        self._products_enter()  # products of two activations (traces.recording.products)
        self._vector_ops_enter()
        self._recompute_enter()  # activation checkpointing's forward run again in backward
        self._gate = Gate(self._training_now, lambda: self._watch is not None or self._recomputing > 0,
                          self._on_gemm,
                          self._backward_watch, self._in_watched_step, self._on_side_gemm)
        self._gate.__enter__()
        self._watch_foreign(True)  # iteration 0 is watched
        self._handles.append(register_optimizer_step_pre_hook(self._optimizer_begins))
        self._handles.append(register_optimizer_step_post_hook(self._optimizer_ends))
        _ACTIVE.append(self)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(complete=exc_type is None)

    def close(self, complete: bool = True) -> None:
        """Detach from the model, write what is queued and finalize the manifest.

        Raises an error of the background writer (a full disk), unless ``complete`` is False
        (closing because of another exception, which then goes on unmasked). Raises
        :class:`RecorderError`, leaving the trace marked incomplete, when work of the model ran
        after the last :meth:`step` and no step followed: a training-mode forward pass under
        ``no_grad`` (an evaluation left in training mode, a teacher pass of the model itself) or a
        training forward pass whose step never came; the trace would hold neither.
        """
        pending = self._unfinished_work() if complete and self._writer is not None else None
        self._close(complete and pending is None)
        if pending is not None:
            raise RecorderError(pending)

    def _unfinished_work(self) -> str | None:
        """Why closing now would drop work of the model without a word (None: nothing pending)."""
        way_out = ("put the model in eval mode (model.eval()) for evaluation, as eval passes are not "
                   "training steps; call rec.step() after each optimizer step")
        if self._nograd_pass is not None:
            return (f"the recorded model ran a forward pass in training mode without gradients at "
                    f"{self._nograd_pass} after the last training step, and no step followed: the "
                    f"trace holds none of its work (its GEMMs, its batch-norm statistics updates); "
                    f"{way_out}")
        if self._started and (self._calls or self._products):
            first = self._layers[(self._calls or self._products)[0].layer].name
            n_calls = len(self._calls) + len(self._products)
            return (f"a training forward pass of the recorded model ({n_calls} "
                    f"layer calls, the first {first!r}) began at {self._begin_site} after the last "
                    f"rec.step(), and no step followed: the trace holds none of its work; {way_out}, "
                    "or run it under torch.no_grad() in eval mode")
        return None

    def _close(self, complete: bool) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for m, own in getattr(self, "_own_forwards", ()):
            if own is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = own
        self._own_forwards = []
        self._functional_exit()
        self._products_exit()
        self._vector_exit()
        self._recompute_exit()
        self._watch_foreign(False)
        while self._foreign:
            watch = self._foreign.pop()[1]
            if watch is not None:
                watch.__exit__(None, None, None)
        self._stop_optimizer_watch()
        self._stop_watch()
        self._forward_marks.clear()
        if self._gate is not None:
            self._gate.__exit__(None, None, None)
            self._gate = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        writer, worker = self._writer, self._worker
        self._worker = None
        if worker is not None:
            if self._held and worker._error is None:
                worker.submit(partial(_run_jobs, self._held))
            self._held = []
            worker.close(raise_error=complete)  # everything queued is written first
            if worker._error is not None:  # the trace stops at the failure: leave it incomplete
                return
        if writer is not None and not complete and writer.iterations_written == 0:
            writer.discard()  # refused before any step: leave nothing that blocks a rerun
        elif writer is not None and self._layers:
            writer.write_manifest(self._manifest(complete=complete))

    def _submit(self, job: Any, counts_only: bool = False) -> None:
        """Run a write job now, or queue it for the background writer: a counts-only iteration's
        job waits until ``counts_batch`` of them (or another job) can go in one hand-over, which
        wakes the worker thread (about 0.3 ms of the training thread's time each)."""
        if self._worker is None:
            job(self._writer)
            return
        self._held.append(job)
        if counts_only and len(self._held) < self._counts_batch:
            return
        jobs, self._held = self._held, []
        self._worker.submit(partial(_run_jobs, jobs))

    # -- public API for training methods ---------------------------------------------------------
    def set_mask(self, module: nn.Module, name: str, mask: torch.Tensor | None) -> None:
        """Give a recorded module a method mask; it stays in effect until replaced or cleared.

        ``y_sel``: which outputs are computed (output shape; taken at the module's forward).
        ``w``: the weight mask actually used (weight shape; default ``weight != 0``).
        ``y_out``: what the layer's block forwards after ReLU/BN/masks (output shape; taken at
        :meth:`step`).
        ``dw_needed``: which weight-gradient entries are needed (weight shape; default all).
        """
        if module not in self._targets:
            raise RecorderError(f"set_mask: {type(module).__name__} is not a recorded Conv2d/Linear")
        if name not in METHOD_MASKS:
            raise RecorderError(f"set_mask: unknown mask {name!r}; choose one of {METHOD_MASKS}")
        if mask is None:
            self._method_masks[module].pop(name, None)
        else:
            self._method_masks[module][name] = mask.detach().clone()

    def log(self, module: nn.Module, **stats: float | int | str | bool) -> None:
        """Per-layer numbers a method reports for this iteration (``meta.layer_stats``)."""
        if module not in self._targets:
            raise RecorderError(f"log: {type(module).__name__} is not a recorded Conv2d/Linear")
        self._stats[module].update({k: (v.item() if isinstance(v, torch.Tensor) else v)
                                    for k, v in stats.items()})

    def save_array(self, module: nn.Module, name: str, array: torch.Tensor | np.ndarray) -> None:
        """A method's own per-layer array, stored on mask iterations as ``L{l}.m_{name}``."""
        if module not in self._targets:
            raise RecorderError(f"save_array: {type(module).__name__} is not a recorded Conv2d/Linear")
        if self._masks_now or not self._started:
            # copy now: parameters are updated in place by optimizer.step() before rec.step()
            arr = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
            self._arrays[module][name] = arr.copy()

    @property
    def recording_masks(self) -> bool:
        """Whether the current iteration stores exact masks (methods may skip work otherwise)."""
        return self._masks_now

    def set_results(self, results: dict[str, Any]) -> None:
        """A method's end-of-training evaluation, written to the manifest as ``method.results``."""
        self._provenance["method"]["results"] = results

    def force_next(self) -> None:
        """Record exact masks for the next iteration regardless of the schedule."""
        self._force_next = True

    # -- hooks ----------------------------------------------------------------------------------
    def _recording(self, module: nn.Module) -> bool:
        return self._grad_or_checkpointed() and module.training and self._writer is not None

    def _training_now(self) -> bool:
        """Whether computation now belongs to a recorded training step."""
        return self._writer is not None and self.model.training and self._grad_or_checkpointed()

    def _grad_or_checkpointed(self) -> bool:
        """Gradients are on, or a reentrant checkpoint's forward runs (under no_grad, recorded:
        :mod:`traces.recording.recomputation`)."""
        return torch.is_grad_enabled() or getattr(self, "_checkpointed_nograd", 0) > 0

    def _reset_iteration(self) -> None:
        self._node_calls: dict[Any, _Call] = {}  # autograd node -> the recorded layer call it belongs to
        self._calls: list[_Call] = []
        self._products: list[Any] = []  # this iteration's products of two activations (matmul layers)
        self._stack: list[_Call] = []
        self._call_count: dict[nn.Module, int] = defaultdict(int)
        self._stats: dict[nn.Module, dict[str, Any]] = defaultdict(dict)
        self._arrays: dict[nn.Module, dict[str, np.ndarray]] = defaultdict(dict)
        self._masks_now = False
        self._reasons: list[str] = []
        self._started = False
        self._optimizer_stepped = False  # an optimizer step ran since the last rec.step()
        self._stepping_optimizer: torch.optim.Optimizer | None = None  # the one stepping our weights

    def _begin_iteration(self) -> None:
        lr = self._lr()
        changed = self._last_lr is not None and lr is not None and lr != self._last_lr
        self._reasons = self.schedule.reasons(self.iteration, lr_changed=changed, forced=self._force_next)
        self._masks_now = bool(self._reasons)
        self._force_next = False
        self._last_lr = lr
        self._started = True
        frame = user_frame()  # where the step began, named if it never reaches rec.step()
        self._begin_site = "(no Python call site)" if frame is None else \
            f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        if self._watched() and self._writer is not None:
            self._watch_foreign(True)

    def _lr(self) -> float | None:
        if self.optimizer is None or not self.optimizer.param_groups:
            return None
        lr = self.optimizer.param_groups[0].get("lr")
        return float(lr) if isinstance(lr, (int, float, torch.Tensor)) else None

    def step(self, *, loss: float | None = None, **metrics: float | str) -> None:
        """End the current training iteration: write its counts (and masks, if scheduled).

        Call once per iteration after ``optimizer.step()``; extra keyword metrics (for example
        ``accuracy``) are stored in the iteration's metadata.
        """
        if self._writer is None:
            raise RecorderError("rec.step() outside the `with traces.record(...)` block")
        self._stop_optimizer_watch()  # after an optimizer step that raised
        self._gate_on("optimizer")
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            self._end_iteration(loss, metrics)
        if self._gemm_check == "masks" and self._watch is None:
            self._gate_off("unwatched")  # until a watched iteration's forward pass
        self._watch_foreign(self._watched_upcoming())

    def _end_iteration(self, loss: float | None, metrics: dict[str, float | str]) -> None:
        if self._worker is not None:
            self._worker.raise_error()  # a write that failed since the last step
        if not self._calls and not self._products:
            raise RecorderError("rec.step() but no training forward pass was recorded since the last "
                                "step (is the model in eval mode or under torch.no_grad()?)")
        if self._stack:
            raise RecorderError("rec.step() inside a forward pass")
        _check_finite(self.iteration, {"loss": loss, **{f"metric {k}": v for k, v in metrics.items()}})
        trainable = [c for c in self._calls
                     if c.weight is not None and c.weight.requires_grad and c.weight.grad is not None]
        # a weight's version counter says it was written in place, but foreach and fused optimizer
        # steps do not always bump it (fused: never; foreach: not under a dispatch mode)
        skipped = False  # the optimizer step was skipped: gradients not finite (AMP's GradScaler)
        if trainable and not self._optimizer_stepped \
                and all(c.weight._version == c.w_version for c in trainable):
            skipped = any(not bool(torch.isfinite(c.weight.grad).all()) for c in trainable)
            if not skipped:
                raise RecorderError("rec.step() before the weights were updated: call it after "
                                    "optimizer.step(), so the trace holds this step's weight update")
        missing = set(range(len(self._layers))) - {c.layer for c in [*self._calls, *self._products]}
        if missing:
            names = ", ".join(self._layers[i].name for i in sorted(missing))
            raise RecorderError(f"layers {names} were not called this iteration; a trace needs the "
                                "same layer calls every iteration")
        first = (self._calls or self._products)[0]
        if self.iteration == 0:
            self._batch0 = first.batch
            manifest = copy.deepcopy(self._manifest(complete=False))  # the worker's own copy
            self._submit(lambda w: w.write_manifest(manifest))
        counts, masks, weights = self._collect()
        for li, pair in (weights or {}).items():
            if not all(np.isfinite(a).all() for a in pair):
                raise RecorderError(
                    f"iteration {self.iteration}: the weights of layer {self._layers[li].name} or their "
                    "update are not finite in float16 after this step (training diverged, or |w| > 65504): "
                    "a trace of them would describe no cell writes; lower the learning rate")
        meta = {"batch": first.batch, "reasons": self._reasons, "lr": self._lr(),
                "loss": loss, "metrics": metrics or {},
                "layer_stats": {self._layers[c.layer].name: self._stats[c.module]
                                for c in self._calls if self._stats.get(c.module)}}
        if skipped:  # replay charges no update pass for it (hwsim.simulate)
            meta["update_skipped"] = True
        arrays = {(c.layer, k): v for c in self._calls for k, v in self._arrays.get(c.module, {}).items()}
        if self.schedule.iters_per_epoch:
            meta["epoch"] = self.iteration // self.schedule.iters_per_epoch
        if self._masks_now and self.schedule.mask_samples is not None:
            meta["mask_batch"] = min(self.schedule.mask_samples, meta["batch"])
        masks, arrays = (masks, arrays) if self._masks_now else (None, None)
        self._submit(partial(_write, index=self.iteration, meta=meta, counts=counts, masks=masks,
                             weights=weights or None, arrays=arrays),
                     counts_only=masks is None and not weights and not arrays)
        self.iteration += 1
        self._reset_iteration()

    def _collect(self) -> tuple[np.ndarray, dict, dict]:
        """This iteration's counts ``(n_layers, n_tensors)`` (counts still on an accelerator are
        read in one transfer), masks as bool arrays ``{(layer, tensor): mask}`` and weights."""
        counts = np.full((len(self._layers), len(TENSORS)), -1, dtype=np.int64)
        where: list[tuple[int, int]] = []  # (layer, tensor column) of each count still a tensor
        values: list[torch.Tensor] = []  # 0-d int64 counts on an accelerator
        masks: dict[tuple[int, str], np.ndarray] = {}
        weights: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def take_counts_and_masks(c: _Call) -> None:
            for name, value in c.counts.items():
                if isinstance(value, int):
                    counts[c.layer, TENSOR_INDEX[name]] = value
                else:
                    where.append((c.layer, TENSOR_INDEX[name]))
                    values.append(value)
            if self._masks_now:
                masks.update({(c.layer, k): host_mask(v) for k, v in c.masks.items()})

        for c in self._calls:
            grad = None if c.weight is None else c.weight.grad
            if grad is not None:  # counted only: the trace stores no dw mask
                if grad.is_sparse:
                    grad = grad.coalesce().values()
                elif c.layout is not None:  # in the layer's layout: a row block's own rows
                    grad = c.layout(grad)
                c.counts["dw"] = count_nonzero(grad)
            need = None if c.weight is None else self._method_mask(c.module, "dw_needed", c.weight.shape)
            if need is not None:
                self._take(c, "dw_needed", need)
            y_out = self._method_mask(c.module, "y_out", (c.batch, *self._layers[c.layer].y_shape))
            if y_out is not None:
                self._take(c, "y_out", y_out, self.schedule.mask_samples)
            take_counts_and_masks(c)
            if self._masks_now and c.w_before is not None and c.weight is not None:
                weights[c.layer] = _weights_f16(*_weights_in_layout(c))
        for c in self._products:  # products of two activations: no weight
            take_counts_and_masks(c)
        if values:
            rows, cols = zip(*where, strict=True)
            counts[list(rows), list(cols)] = torch.stack(values).tolist()
        return counts, masks, weights

    def _manifest(self, complete: bool) -> dict[str, Any]:
        m = new_manifest(self._layers, schedule=self.schedule.to_dict(), batch_size=self._batch0,
                         optimizer=self._optimizer_info(), dtypes=self._dtypes(),
                         vector_ops=self._vector_rows, **self._provenance)
        m["complete"] = complete
        m["iterations"] = self.iteration if complete else None
        return m

    def _dtypes(self) -> dict[str, str | None]:
        """The dtypes training used: the weights' (the parameters, the optimizer's master copy),
        and the activations' and gradients' as the first recorded layer call computed them (under
        ``torch.autocast``, the autocast dtype, also given as ``autocast``; null without one)."""
        w = next(iter(self._targets)).weight if self._targets else next(iter(self._param_names))
        name = str(w.dtype).replace("torch.", "")
        seen = {k: str(v).replace("torch.", "") for k, v in self._seen_dtypes.items()}
        return {"activation": seen.get("activation", name), "weight": name,
                "gradient": seen.get("gradient", seen.get("activation", name)),
                "autocast": seen.get("autocast"), "stored_weights": "float16"}

    def _optimizer_info(self) -> dict[str, Any] | None:
        opt = self.optimizer
        if opt is None:
            return None
        group = opt.param_groups[0] if opt.param_groups else {}
        params = {k: v for k, v in group.items()
                  if k != "params" and isinstance(v, (int, float, bool, str, type(None)))}
        params.update({k: list(v) for k, v in group.items() if isinstance(v, tuple)
                       and all(isinstance(e, (int, float)) for e in v)})
        state: dict[str, str] = {}
        for st in opt.state.values():
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and v.numel() > 1:
                    state[k] = str(v.dtype).replace("torch.", "")
        declared = self._declared_state is not None and not optimizers.is_known(opt)
        return {"name": type(opt).__name__, "params": params, "state_dtypes": state,
                "state_tensors": self._declared_state if declared else optimizers.state_tensors(opt),
                "update_ops_per_weight": self._update_ops_per_weight, "declared": declared}


__all__ = ["Recorder", "active_recorder", "bookkeeping", "record"]
