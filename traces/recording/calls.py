"""One recorded layer call: its record (:class:`_Call`) and how the recorder takes it from a
hooked module's call (imports torch).

:class:`ModuleCalls` is the part of :class:`~traces.recording.recorder.Recorder` that runs in the
module hooks: the forward pre-hook opens a call record and takes the input, the forward hook takes
the output, the weight and the method's masks and hooks the gradients, and the layer table grows in
the first iteration. The other captures (parameter products, activation products, recurrent gate
GEMMs) reuse its record type and its ``_take``/``_call_ends``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from ..format.errors import RecorderError
from ..format.layer import LayerSpec, update_owners
from .capture import layer_spec
from .modules import (
    flattened_rows,
    module_input_dims,
    module_views,
    output_view,
    recorded_input,
    touched_rows,
)
from .nonzero import count_mask, count_nonzero, nonzero_mask

# The recorder's own tensor work runs with PyTorch's Python-level dispatch switched off
# (``with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():``): the recording's Gate and GemmWatch (and
# any other torch-function or dispatch mode) neither see nor pay for it; it is never model work.
_NO_FUNCTION_MODES = torch._C.DisableTorchFunction
_NO_DISPATCH_MODES = torch._C._DisableTorchDispatch


def _transformed(t: torch.Tensor) -> bool:
    """Whether ``t`` is a torch.func (functorch) wrapper: a vmap batch or a grad-tracking tensor."""
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(t))


def _weight_copy(w: torch.Tensor) -> np.ndarray | torch.Tensor:
    """A copy of a weight before the optimizer updates it in place (numpy on the CPU: a fresh
    torch tensor of a large layer pays first-touch page faults, numpy reuses freed memory)."""
    w = w.detach()
    if w.device.type == "cpu" and w.dtype in (torch.float32, torch.float64):
        return w.numpy().copy()
    return w.clone()


def _in_layout(rec: _Call, name: str, t: torch.Tensor) -> torch.Tensor:
    """``t`` (a tensor of ``rec``'s call named ``name``) viewed as the layer's trace tensor: inputs
    and outputs per sample (``rec.x_shape``/``rec.y_shape``), weight-shaped ones in ``w_shape``."""
    if getattr(rec, "broadcast", False) and name in ("x", "dx", "y", "dy", "y_sel", "y_out"):
        t = t.expand(rec.batch, *t.shape[1:])
    if getattr(rec, "unbatched", False) and name in ("x", "dx", "y", "dy", "y_sel", "y_out"):
        t = t.unsqueeze(0).expand(rec.batch, *t.shape)
    if getattr(rec, "seq_first", None) and name in ("x", "dx", "y", "dy", "y_sel", "y_out"):
        t = t.reshape(rec.seq_first, rec.batch, -1).transpose(0, 1)  # (N, L, features)
    if name in ("x", "dx") and rec.x_shape is not None:
        return t.reshape(rec.batch, *rec.x_shape)
    if name in ("y", "dy", "y_sel", "y_out") and rec.y_shape is not None:
        return t.reshape(rec.batch, *rec.y_shape)
    if name in ("w", "dw_needed") and rec.layout is not None:
        return rec.layout(t)
    return t


def _weights_in_layout(c: _Call) -> tuple[np.ndarray | torch.Tensor, torch.Tensor]:
    """The weight before the update and now, in the layer's ``w_shape`` layout."""
    before, now = c.w_before, c.weight.detach()
    if c.layout is None:
        return before, now
    if isinstance(before, np.ndarray):
        before = torch.from_numpy(before)
    return c.layout(before), c.layout(now)


@dataclass
class _Call:
    """What one call of one recorded module produced during the current iteration."""

    module: nn.Module
    layer: int
    batch: int
    weight: torch.Tensor | None = None  # the parameter the call multiplies by (a module's weight)
    qual: str = ""  # the recorded call's base name: the module's path, or the parameter's name
    layout: Any = None  # weight-shaped tensor -> the layer's w_shape layout (None: as it is)
    x_shape: tuple[int, ...] | None = None  # per-sample views of x and dx (None: as they are)
    y_shape: tuple[int, ...] | None = None  # per-sample views of y and dy (None: as they are)
    flat_rows: int | None = None  # a Linear's (N·L, in) input: L rows per sample (modules.py)
    broadcast: bool = False  # its activations lead with 1 and are shared by the step's batch
    unbatched: bool = False  # its activations are one sample's, without a batch dim, shared by the batch
    seq_first: int | None = None  # its activations are sequence-major ((L, N, ...) or (L·N, ...)), L rows
    counts: dict[str, int | torch.Tensor] = field(default_factory=dict)  # int, or 0-d off the CPU
    masks: dict[str, np.ndarray | torch.Tensor] = field(default_factory=dict)  # nonzero_mask copies
    w_before: np.ndarray | torch.Tensor | None = None
    w_version: int = 0
    gemm: str | None = None  # the operator of the layer's own GEMM in this call, once executed
    x_node: Any = None  # the autograd node of the layer's aliased input (where its backward ends)
    backward_gemms: int = 0  # GEMM operators its autograd nodes ran in backward (watched steps)
    backward_limit: int = 0  # how many its backward-data and backward-weight passes run


class ModuleCalls:
    """The recorder's capture of hooked module calls (a mixin of
    :class:`~traces.recording.recorder.Recorder`, whose state it uses)."""

    def _take(self, rec: _Call, name: str, t: torch.Tensor, samples: int | None = None) -> None:
        """Count ``t``'s non-zeros into ``rec.counts[name]``; on a mask iteration also stage its
        mask (the first ``samples`` samples), from which the count is read when it covers all of ``t``.
        ``t`` is first viewed in the layer's layout (a Conv1d's as a conv2d's, a flat input per sample)."""
        t = _in_layout(rec, name, t)
        if not self._masks_now:
            rec.counts[name] = count_nonzero(t)
            return
        mask = rec.masks[name] = nonzero_mask(t, samples)
        rec.counts[name] = count_mask(mask) if mask.shape == t.shape else count_nonzero(t)

    def _pre_hook(self, module: nn.Module, args: tuple) -> tuple | None:
        if not self._recording(module):
            return None
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            return self._layer_begins(module, args)

    def _layer_begins(self, module: nn.Module, args: tuple) -> tuple | None:
        if not self._started:
            self._begin_iteration()
        x = args[0]
        if any(isinstance(t, torch.Tensor) and _transformed(t) for t in (x, module.weight)):
            raise RecorderError(
                f"{self._targets[module] or '(model)'} was called inside a torch.func transform "
                "(vmap, grad, jacrev: per-sample gradients, a Hessian) during training: a trace holds "
                "one batched forward and backward per layer call, so the transform's GEMM work would "
                "be missing or wrong; run the transform in eval mode (model.eval()) or record without it")
        weight = module.weight
        if isinstance(weight, torch.Tensor) and weight.grad_fn is not None:
            raise RecorderError(
                f"{self._targets[module] or '(model)'}: its weight is computed in the training forward "
                f"pass ({type(weight.grad_fn).__name__}: a parametrization such as weight_norm, "
                "spectral_norm or orthogonal, or weights given to torch.func.functional_call that are "
                "not the module's parameters), not a parameter: the trace's weight gradient and update "
                "(ΔW, the ReRAM cell writes) would describe a tensor that is never updated; record the "
                "model without it (torch.nn.utils.parametrize.remove_parametrizations)")
        min_dims = module_input_dims(module)
        if not isinstance(x, torch.Tensor) or x.dim() < min_dims:
            raise RecorderError(f"{self._targets[module] or '(model)'}: input must be a batched tensor "
                                f"with >= {min_dims} dims, got {getattr(x, 'shape', type(x).__name__)}")
        qual = self._targets[module]
        call = self._call_count[module]
        self._call_count[module] += 1
        batch = int(x.shape[0])
        step = self._step_batch_of()
        emb = isinstance(module, nn.Embedding)
        shared = emb and batch == 1 and (step or 1) > 1  # position ids (1, L)
        # indices without a batch dimension (T5's relative position buckets, (Lq, Lk))
        unbatched = emb and x.dim() >= 2 and step is not None and batch not in (1, step)
        if shared or unbatched:  # indices shared by the batch: recorded as every sample's
            batch = step
        views = {"x_shape": tuple(x.shape)} if unbatched else module_views(module, x)
        rows = flattened_rows(module, x, step)
        if rows is not None:  # (N·L, in): the step's N samples of L tokens each
            batch, views = step, {"x_shape": (rows, int(x.shape[1]))}
        if self._calls and batch != self._calls[0].batch:
            raise RecorderError(
                f"{qual or '(model)'}: called on a batch of {batch} where this step's batch is "
                f"{self._calls[0].batch} ({self._calls[0].qual or '(model)'}'s): a trace holds one batch "
                "per step, so a layer run on folded or split samples (frames folded into the batch, "
                "(N·D, C, H, W); a subset of the samples) would be counted at the wrong density; reshape "
                "so that the samples lead, or record that part as a model of its own")
        rec = _Call(module, self._layer_index(qual, call, module), batch, weight=module.weight,
                    qual=qual, broadcast=shared, unbatched=unbatched, flat_rows=rows, **views)
        if "activation" not in self._seen_dtypes and torch.is_autocast_enabled(x.device.type):
            self._seen_dtypes["autocast"] = torch.get_autocast_dtype(x.device.type)
        self._take(rec, "x", recorded_input(module, x), self.schedule.mask_samples)
        if isinstance(module, nn.Embedding):
            try:
                touched = touched_rows(module, x)
            except ValueError as e:
                raise RecorderError(f"{qual or '(model)'} (an nn.Embedding): {e}; an embedding's "
                                    "input must be integer indices") from None
            self._take(rec, "dw_needed", touched)
        self._stack.append(rec)
        if x.requires_grad:  # alias: this layer's own input gradient, even when x is shared
            x = x.view_as(x)
            x.register_hook(partial(self._grad_hook, rec, "dx"))
            rec.x_node = x.grad_fn
            return (x, *args[1:])
        return None

    def _post_hook(self, module: nn.Module, args: tuple, y: Any) -> None:
        if not self._stack or self._stack[-1].module is not module:
            return
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            self._layer_ends(module, args, y)

    def _step_batch_of(self) -> int | None:
        """The step's batch: the first recorded call's, else the model input's leading dimension."""
        return self._calls[0].batch if self._calls else self._model_batch

    def _layer_ends(self, module: nn.Module, args: tuple, y: Any) -> None:
        rec = self._stack.pop()
        qual = self._targets[module] or "(model)"
        if not isinstance(y, torch.Tensor):
            raise RecorderError(f"{qual}: output is {type(y).__name__}, expected a tensor")
        rec.y_shape = tuple(y.shape) if rec.unbatched else output_view(module, y, rec.flat_rows)
        self._check_or_add_spec(rec, module, args[0], y)
        self._call_ends(rec, y)

    def _call_ends(self, rec: _Call, y: torch.Tensor) -> None:
        """The output side of a recorded call (a module's, or a functional GEMM's): y, w, method
        masks, the weight before its update, and the hooks that take dy."""
        self._seen_dtypes.setdefault("activation", y.dtype)
        b = self.schedule.mask_samples
        module, weight = rec.module, rec.weight
        self._take(rec, "y", y, b)
        if weight is not None:  # a product of two activations (weight None) takes its B elsewhere
            w_mask = self._method_mask(module, "w", weight.shape)
            self._take(rec, "w", weight if w_mask is None else w_mask)
        sel = self._method_mask(module, "y_sel", y.shape)
        if sel is not None:
            self._take(rec, "y_sel", sel, b)
        if weight is not None and self._masks_now and self.schedule.weights and self._owns_update(rec.layer):
            rec.w_before = _weight_copy(weight)  # once per parameter: its update's layer
        rec.w_version = 0 if weight is None else weight._version
        if y.requires_grad:
            y.register_hook(partial(self._grad_hook, rec, "dy"))
            if self._watched():
                self._map_backward(rec, y)
        self._calls.append(rec)

    def _grad_hook(self, rec: _Call, name: str, grad: torch.Tensor) -> None:
        if grad is None:
            return
        self._seen_dtypes.setdefault("gradient", grad.dtype)
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            self._take(rec, name, grad, self.schedule.mask_samples)

    def _method_mask(self, module: nn.Module, name: str, shape: torch.Size) -> torch.Tensor | None:
        if module not in self._targets:  # a functional call's module: no method masks
            return None
        mask = self._method_masks.get(module, {}).get(name)
        if mask is not None and tuple(mask.shape) != tuple(shape):
            raise RecorderError(f"{self._targets[module] or '(model)'}: {name} mask has shape "
                                f"{tuple(mask.shape)}, expected {tuple(shape)}")
        return mask

    # -- layer table -------------------------------------------------------------------------------
    def _owns_update(self, layer: int) -> bool:
        """Whether ``layer`` is the first layer of its weight parameter, which carries the
        parameter's update (one per optimizer step, whatever the number of calls)."""
        return self._owners[layer]

    def _layer_index(self, qual: str, call: int, module: nn.Module) -> int:
        key = (qual, call)
        if key in self._layer_of:
            return self._layer_of[key]
        if self.iteration > 0:
            raise RecorderError(f"{qual or '(model)'} call #{call} did not happen in the first "
                                "iteration; a trace needs the same layer calls every iteration")
        self._layer_of[key] = len(self._layer_of)
        return self._layer_of[key]

    def _check_or_add_spec(self, rec: _Call, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        if rec.layer < len(self._layers):  # a known layer: only its per-sample shapes can change
            old = self._layers[rec.layer]
            shapes = (rec.x_shape or tuple(x.shape[1:]), rec.y_shape or tuple(y.shape[1:]))
            if (old.x_shape, old.y_shape) != shapes:
                raise RecorderError(f"{old.name}: per-sample shapes changed from {old.x_shape}->"
                                    f"{old.y_shape} to {shapes[0]}->{shapes[1]}")
        elif rec.layer == len(self._layers):
            qual = self._targets[module]
            param = self._param_names.get(module.weight, f"{qual}.weight" if qual else "weight")
            self._layers.append(layer_spec(module, qual, self._call_count[module] - 1,
                                           rec.x_shape or tuple(x.shape[1:]),
                                           rec.y_shape or tuple(y.shape[1:]), param))
            self._owners = update_owners(self._layers)

    def _add_spec(self, rec: _Call, spec: LayerSpec) -> None:
        """Add a functional call's or a product's spec to the table (first iteration), or check its
        shapes."""
        if rec.layer < len(self._layers):
            old = self._layers[rec.layer]
            if (old.x_shape, old.w_shape, old.y_shape) != (spec.x_shape, spec.w_shape, spec.y_shape):
                raise RecorderError(f"{old.name}: per-sample shapes changed from {old.x_shape}·{old.w_shape}"
                                    f"->{old.y_shape} to {spec.x_shape}·{spec.w_shape}->{spec.y_shape}")
        elif rec.layer == len(self._layers):
            self._layers.append(spec)
            self._owners = update_owners(self._layers)

    # -- iteration end ----------------------------------------------------------------------------
