"""Matrix products with a parameter operand that no hooked module accounts for (imports torch).

Models do GEMM work on their parameters outside ``nn.Linear``: Hugging Face GPT-2's
``transformers.pytorch_utils.Conv1D`` runs ``torch.addmm(bias, x, W)`` with ``W`` stored
``(in, out)``; a tied output head runs ``F.linear(h, wte.weight)``; a hand-written layer runs
``x @ self.W``; the recorder's decomposed recurrent layers run ``F.linear`` on their gate weights
(:mod:`traces.recording.recurrent`). During a recorded training forward pass a torch-function
mode (:class:`ParameterGemms`) sees these calls with autograd's own tensors, before they
decompose, and the recorder records each as a ``linear`` call:

- the layer is named by the parameter (``transformer.h.0.attn.c_attn.weight``, then ``#1``, ``#2``
  for its further calls) and names it as its ``parameter`` (one update per parameter);
- its weight is the product's right operand in ``(out, in)`` layout: ``W`` of ``F.linear(x, W)``
  or of ``x @ W.T``, and ``Wᵀ`` of ``x @ W``/``addmm(b, x, W)`` (masks and stored weights are
  taken of that transposed view);
- its input is the left operand per sample: ``(N, ..., in)`` as recorded, and a flattened
  ``(N·L, in)`` (GPT-2's ``x.view(-1, in)``) as ``(L, in)``, the step's batch ``N`` being the
  first recorded call's.

Handled: ``F.linear``, ``torch.addmm``, ``torch.mm``, ``torch.matmul`` and ``@`` (``Tensor.mm``,
``Tensor.addmm``, ``Tensor.matmul``, ``Tensor.__matmul__``) with a 2-D parameter (or its
transpose) on the right; and ``F.linear`` with a block of rows of a 2-D parameter
(``nn.MultiheadAttention``'s packed ``in_proj_weight`` split into its query rows and its key and
value rows for cross-attention: ``w.split``/``w.chunk``). Such a call names the block as its
parameter, ``<parameter>[r0:r1]`` (rows ``r0`` to ``r1 - 1``), with the block as its weight: the
blocks a step uses partition the parameter, so each is updated once and together they are the
parameter's update. A parameter used whole and by blocks, or by overlapping blocks, in one step is
refused (its rows would be updated twice). Anything else (a parameter on the left, ``einsum``/``bmm`` with a
parameter, a product outside the model's forward pass) still meets the GEMM watch, which refuses
it naming the operator and call site.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..format.errors import RecorderError
from ..format.layer import LayerSpec, update_owners
from . import recurrent
from .capture import in_bookkeeping
from .hooks import Hook
from .products import in_multi_head_attention
from .vector_ops import step_batch

_LINEAR = {F.linear, torch._C._nn.linear}
_MM = {torch.mm, torch.Tensor.mm, torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__}
_ADDMM = {torch.addmm, torch.Tensor.addmm}
PRODUCTS = frozenset(_LINEAR | _MM | _ADDMM)


class ParameterGemms(TorchFunctionMode):
    """Hands every call of :data:`PRODUCTS` to ``on_product(func, args, kwargs)``, which runs it
    (recording it) or returns ``NotImplemented`` to let it run as it is."""

    def __init__(self, on_product: Any) -> None:
        super().__init__()
        self.on_product = on_product

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in PRODUCTS:
            out = self.on_product(func, args, kwargs)
            if out is not NotImplemented:
                return out
        return func(*args, **kwargs)


def _transpose_of(w: torch.Tensor, params: dict[torch.Tensor, str]) -> torch.Tensor | None:
    """The 2-D parameter ``P`` when ``w`` is exactly ``P.t()`` (a view), else None."""
    base = w._base
    if base is None or base.dim() != 2 or w.dim() != 2 or base not in params:
        return None
    if tuple(w.shape) == tuple(base.shape[::-1]) and tuple(w.stride()) == tuple(base.stride()[::-1]) \
            and w.storage_offset() == base.storage_offset():
        return base
    return None


def _row_block_of(w: torch.Tensor, params: dict[torch.Tensor, str]) -> tuple[torch.Tensor, int, int] | None:
    """``(P, r0, r1)`` when ``w`` is exactly the rows ``r0:r1`` of a 2-D parameter ``P`` (a view, as
    ``P.split``/``P.chunk`` along dim 0 make), else None."""
    base = w._base
    if base is None or base.dim() != 2 or w.dim() != 2 or base not in params:
        return None
    offset = w.storage_offset() - base.storage_offset()
    if w.shape[1] != base.shape[1] or tuple(w.stride()) != tuple(base.stride()) or base.stride(0) <= 0 \
            or offset % base.stride(0) or (w.shape[1] > 1 and base.stride(1) != 1):
        return None
    r0 = offset // base.stride(0)
    r1 = r0 + w.shape[0]
    return (base, r0, r1) if 0 <= r0 < r1 <= base.shape[0] else None


def parameter_operand(func: Any, args: tuple, kwargs: dict, params: dict[torch.Tensor, str]
                      ) -> tuple[int, torch.Tensor, bool, bool, tuple[int, int] | None] | None:
    """``(position of x in args, parameter, transposed, bias, rows)`` when ``func(*args)`` multiplies a
    positional input ``x`` by a 2-D parameter on the right; ``transposed``: the parameter is
    stored ``(in, out)`` (the layer's weight is its transpose); ``rows``: ``(r0, r1)`` when the
    weight is only those rows of the parameter (``F.linear`` with ``P.split(...)[i]``), else None.
    None: not such a product."""
    if func in _LINEAR:
        if len(args) < 2 or not isinstance(args[1], torch.Tensor):
            return None
        w, bias = args[1], (args[2] if len(args) > 2 else kwargs.get("bias")) is not None
        pos, plain = 0, w
    elif func in _ADDMM:
        if len(args) < 3:
            return None
        pos, plain, bias = 1, args[2], True
    elif func in _MM:
        if len(args) < 2:
            return None
        pos, plain, bias = 0, args[1], False
    else:
        return None
    if not isinstance(args[pos], torch.Tensor) or not isinstance(plain, torch.Tensor) or plain.dim() != 2:
        return None
    if func in _LINEAR:
        if w in params:
            return pos, w, False, bias, None
        block = _row_block_of(w, params)
        return (pos, block[0], False, bias, block[1:]) if block is not None else None
    if plain in params:
        return pos, plain, True, bias, None
    base = _transpose_of(plain, params)
    return (pos, base, False, bias, None) if base is not None else None


def _transposed(t: torch.Tensor) -> torch.Tensor:
    return t.t()


def _rows(r0: int, r1: int, t: torch.Tensor) -> torch.Tensor:
    return t[r0:r1]


class FunctionalCalls:
    """The recorder's capture of parameter GEMMs outside hooked modules and of recurrent layers
    (a mixin of :class:`~traces.recording.recorder.Recorder`)."""

    def _functional_enter(self) -> None:
        """Route recurrent modules through their gate GEMMs and hook the model's forward pass so
        that :class:`ParameterGemms` is on during training forward passes."""
        self._param_mode: ParameterGemms | None = None
        self._param_depth = 0
        self._patched: list[tuple[nn.Module, Any]] = []
        for m in self.model.modules():
            if isinstance(m, nn.RNNBase):
                self._patched.append((m, m.__dict__.get("forward")))
                m.forward = partial(recurrent.forward, m, type(m).forward.__get__(m),
                                    Hook(self._training_now))
        self._model_batch: int | None = None  # the leading dimension of the model's first input
        self._param_products_seen = False  # whether iteration 0 recorded a parameter product
        self._param_rows: dict[str, tuple[int, int]] = {}  # the rows each recorded call's weight spans
        self._handles.append(self.model.register_forward_pre_hook(Hook(self._param_products_on),
                                                                  with_kwargs=True))
        self._handles.append(self.model.register_forward_hook(Hook(self._param_products_off), prepend=True,
                                                              always_call=True))

    def _functional_exit(self) -> None:
        for m, own in self._patched:
            if own is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = own
        self._patched = []
        if self._param_mode is not None:
            self._param_mode.__exit__(None, None, None)
            self._param_mode, self._param_depth = None, 0

    def _param_products_on(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self._param_depth += 1
        if self._param_depth == 1:
            self._model_batch = step_batch(args, kwargs)
        # on in iteration 0 and, after it, only for a model that did such products then (the mode
        # costs Python-level dispatch per torch call; a product first seen later still meets the
        # GEMM watch on watched iterations, which refuses it)
        wanted = self.iteration == 0 or self._param_products_seen
        if self._param_depth == 1 and wanted and self._training_now():
            self._param_mode = ParameterGemms(self._on_param_product)
            self._param_mode.__enter__()

    def _param_products_off(self, module: nn.Module, args: tuple, y: Any) -> None:
        self._param_depth = max(self._param_depth - 1, 0)
        if self._param_depth == 0 and self._param_mode is not None:
            mode, self._param_mode = self._param_mode, None
            mode.__exit__(None, None, None)

    def _on_param_product(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Record ``func(*args, **kwargs)`` as a linear call when it multiplies by a parameter
        outside every recorded call; ``NotImplemented`` otherwise."""
        if self._stack or in_bookkeeping() or not self._training_now():
            return NotImplemented
        found = parameter_operand(func, args, kwargs, self._param_names)
        if found is None:
            return NotImplemented
        from .calls import _NO_DISPATCH_MODES, _NO_FUNCTION_MODES, _Call

        pos, param, transposed, bias, rows = found
        x = args[pos]
        self._param_products_seen = True
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            if not self._started:
                self._begin_iteration()
            rec = self._param_product_begins(_Call, param, transposed, x, rows)
            if x.requires_grad:  # alias: this call's own input gradient
                xa = x.view_as(x)
                xa.register_hook(partial(self._grad_hook, rec, "dx"))
                rec.x_node = xa.grad_fn
                args = (*args[:pos], xa, *args[pos + 1:])
        self._stack.append(rec)
        try:
            y = func(*args, **kwargs)
        finally:
            self._stack.pop()
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            out_f = rec.layout(rec.weight).shape[0] if rec.layout is not None else rec.weight.shape[0]
            rec.y_shape = (*rec.x_shape[:-1], out_f)
            qual = rec.qual
            owner = qual.rsplit(".", 1)[0] if "." in qual else ""
            owner_mod = self.model.get_submodule(owner) if owner else self.model
            spec = LayerSpec(kind="linear", name=self._param_call_name(rec), module=owner,
                             call=self._call_count[qual] - 1, module_type=type(owner_mod).__name__,
                             parameter=qual, x_shape=rec.x_shape, y_shape=rec.y_shape,
                             w_shape=(out_f, rec.x_shape[-1]), bias=bias)
            problems = spec.check()
            if problems:
                raise RecorderError(f"{spec.name}: inconsistent geometry: {problems[0]}")
            self._add_spec(rec, spec)
            self._owners = update_owners(self._layers)
            self._call_ends(rec, y)
        return y

    def _param_block(self, param: torch.Tensor, rows: tuple[int, int] | None) -> str:
        """The name a call multiplying by ``param`` (or by its ``rows``) records as its parameter:
        the parameter's, or ``<name>[r0:r1]`` for a block of its rows. A block that overlaps another
        block or the whole parameter in one step is refused (its rows would be updated twice)."""
        name = self._param_names[param]
        span = rows if rows is not None else (0, param.shape[0])
        qual = name if rows is None else f"{name}[{span[0]}:{span[1]}]"
        for other, (r0, r1) in self._param_rows.items():
            if other != qual and other.split("[", 1)[0] == name and r0 < span[1] and span[0] < r1:
                raise RecorderError(f"{name}: rows {span[0]}:{span[1]} and {r0}:{r1} of this parameter are "
                                    "multiplied by separate calls in one step, so their update would be "
                                    "counted twice; use the parameter whole, or in disjoint blocks of rows")
        self._param_rows[qual] = span
        return qual

    def _param_call_name(self, rec: Any) -> str:
        call = self._call_count[rec.qual] - 1
        return rec.qual if call == 0 else f"{rec.qual}#{call}"

    def _param_product_begins(self, call_type: type, param: torch.Tensor, transposed: bool,
                              x: torch.Tensor, rows: tuple[int, int] | None = None) -> Any:
        qual = self._param_block(param, rows)
        n_in = param.shape[0] if transposed else param.shape[1]
        mha = in_multi_head_attention()
        # the step's batch: the first recorded call's, else this input's batch dimension: the
        # second of nn.MultiheadAttention's sequence-major (L, N, E), else the leading one (the
        # model's own input may lead with time: a sequence-first recurrent layer)
        first = self._calls[0] if self._calls else (self._products[0] if self._products else None)
        batch = first.batch if first is not None else int(x.shape[1] if mha and x.dim() == 3 else x.shape[0])
        if x.dim() < 1 or x.shape[-1] != n_in or x.numel() % (batch * n_in):
            raise RecorderError(f"{qual}: a product of an input {tuple(x.shape)} with this parameter "
                                f"cannot be split into the step's batch of {batch} samples")
        seq_first = None
        if mha and x.dim() in (2, 3) and (x.dim() == 2 or x.shape[1] == batch):
            # nn.MultiheadAttention's projections: (L, N, E) and (L·N, E), sequence-major
            seq_first = x.shape[0] if x.dim() == 3 else x.shape[0] // batch
            x_shape = (seq_first, n_in)
        elif x.dim() >= 2 and x.shape[0] == batch:
            x_shape = tuple(x.shape[1:])
        elif x.dim() == 2:  # (N·L, in), batch-major: GPT-2's x.view(-1, in)
            tokens = x.shape[0] // batch
            x_shape = (tokens, n_in) if tokens > 1 else (n_in,)
        else:
            raise RecorderError(f"{qual}: the input {tuple(x.shape)} of a product with this parameter "
                                f"does not lead with the step's batch ({batch} samples)")
        call = self._call_count[qual]
        self._call_count[qual] += 1
        owner = qual.rsplit(".", 1)[0] if "." in qual else ""
        layout = _transposed if transposed else (partial(_rows, *rows) if rows is not None else None)
        rec = call_type(self.model.get_submodule(owner) if owner else self.model,
                        self._layer_index(qual, call, None), batch, weight=param, qual=qual,
                        layout=layout, x_shape=x_shape, seq_first=seq_first)
        self._take(rec, "x", x, self.schedule.mask_samples)
        return rec
