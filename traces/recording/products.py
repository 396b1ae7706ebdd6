"""Products of two activations in a training step, recorded as ``matmul`` layers (imports torch).

Attention multiplies activations by activations: ``Q·Kᵀ`` and ``P·V``, in hand-written code
(``q @ k.transpose(-2, -1)``, ``torch.bmm``, ``torch.baddbmm``, ``torch.einsum``), in
``nn.MultiheadAttention`` and in ``F.scaled_dot_product_attention`` (SDPA). During a recorded
training forward pass a torch-function mode (:class:`ActivationProducts`) sees these calls with
autograd's own tensors, before they decompose, and the recorder records each as a ``matmul``
layer (``traces.format.kinds.matmul``): both operands' masks per sample, the result's, and through
hooks on aliases of the operands and on the result, the three gradients.

- ``matmul``/``@``/``bmm``/``baddbmm``: ``A (*batch, M, K) · B (*batch, K, N)`` after torch's
  broadcasting; an operand without the sample dimension is expanded to it (its gradient is then
  taken per sample, before autograd sums it). ``einsum`` with two operands: the letters in both
  operands and the output are batch dimensions, those in both operands only the reduction ``K``,
  the others ``M`` (first operand) and ``N`` (second).
- The sample dimension is the leading one; a leading dimension of ``batch·r`` (the
  ``(N·heads, L, d)`` layout of ``nn.MultiheadAttention``) is split into ``(batch, r)``, sample
  major. The step's batch is the first recorded call's.
- SDPA, whatever backend would run (``torch._fused_sdp_choice``; a backend that cannot run still
  raises as it would), is run as its math decomposition — scores ``S = Q·Kᵀ``, scaled, masked,
  softmax, dropout, context ``O = P·V`` — so that the scores, the probabilities and their
  gradients exist to be recorded: two records named ``<module>.scores`` and ``<module>.context``
  sharing an ``attention`` field (``backend``: the backend that would have run). The structure
  (``is_causal``, a boolean ``attn_mask``, the ``-inf`` or ``finfo.min`` entries of a float one:
  :func:`masked_scores`) is the scores' ``y_sel``: the products a kernel has to compute. Values
  equal the fused kernels' up to rounding; dropout draws its own random numbers.
- ``nn.MultiheadAttention`` (``F.multi_head_attention_forward``, found among the Python frames):
  its two products (``bmm`` or ``baddbmm`` with the mask, whose masked entries are left out of
  ``y_sel``) are the scores and context of one attention call; with ``need_weights=False`` it runs
  SDPA (above). Its projections are parameter products
  (:mod:`traces.recording.functional`).

A product with a parameter operand is not one of these (it passes on, to be recorded as a linear
call or refused); one whose operands have no sample dimension in common (``h @ h.T`` across the
batch), a 1-D operand, or an ``einsum`` that is not one batched matrix product is refused naming
the operator and call site.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..format.errors import RecorderError
from ..format.layer import LayerSpec
from .capture import TO_NUMPY, in_bookkeeping, numpy_conversion
from .hooks import Hook
from .nonzero import count_nonzero

_MATMUL = frozenset({torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__})
_BMM = frozenset({torch.bmm, torch.Tensor.bmm})
_BADDBMM = frozenset({torch.baddbmm, torch.Tensor.baddbmm})
_EINSUM = frozenset({torch.einsum})
_SDPA = frozenset({F.scaled_dot_product_attention})
_MHA = frozenset({F.multi_head_attention_forward})
HANDLED = _MATMUL | _BMM | _BADDBMM | _EINSUM | _SDPA | _MHA
_MHA_CODE = F.multi_head_attention_forward.__code__  # nn.MultiheadAttention's products run in it
# torch._fused_sdp_choice's answer -> the trace's attention backend
_BACKENDS = {0: "math", 1: "flash", 2: "efficient", 3: "cudnn", 4: "overrideable"}
_MAX_PRODUCT_NODES = 64  # autograd nodes one product may create (expand, view, bmm, unsafe view)
# the recorder's own tensor work runs with Python-level dispatch off (as in traces.recording.recorder)
_NO_FUNCTION_MODES = torch._C.DisableTorchFunction
_NO_DISPATCH_MODES = torch._C._DisableTorchDispatch


def in_multi_head_attention() -> bool:
    """Whether ``F.multi_head_attention_forward`` (what ``nn.MultiheadAttention`` runs) is among the
    calling Python frames: its projections take sequence-major activations."""
    import sys

    frame = sys._getframe(1)
    while frame is not None and frame.f_code is not _MHA_CODE:
        frame = frame.f_back
    return frame is not None


class ActivationProducts(TorchFunctionMode):
    """Hands every call of :data:`HANDLED` to ``on_call(mode, func, args, kwargs)``, which runs it
    (recording it) or returns ``NotImplemented`` to let it run as it is."""

    def __init__(self, on_call: Callable[..., Any]) -> None:
        super().__init__()
        self.on_call = on_call

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in HANDLED:
            out = self.on_call(func, args, kwargs)
            if out is not NotImplemented:
                return out
        elif func in TO_NUMPY:  # inside a training forward pass
            numpy_conversion(args)
        return func(*args, **kwargs)


# the operands' keyword names, in positional order (``alibi.baddbmm(batch1=q, batch2=k)``: BLOOM)
_OPERAND_NAMES = {**dict.fromkeys(_MATMUL, ("input", "other")), **dict.fromkeys(_BMM, ("input", "mat2")),
                  **dict.fromkeys(_BADDBMM, ("input", "batch1", "batch2"))}


def _operands_positional(func: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``func``'s operands passed by keyword moved to their positions (the other keywords, such as
    ``beta``/``alpha``, stay): ``(args, kwargs)`` as the recorder reads them."""
    names = _OPERAND_NAMES.get(func, ())
    if not kwargs or not any(n in kwargs for n in names[len(args):]):
        return args, kwargs
    kwargs = dict(kwargs)
    args = list(args)
    for name in names[len(args):]:
        if name not in kwargs:
            break
        args.append(kwargs.pop(name))
    return tuple(args), kwargs


class NotAProduct(ValueError):
    """A product of two activations that has no per-sample ``matmul`` form: it runs unrecorded, and
    the GEMM watch refuses it naming the operator and call site."""


@dataclass
class ProductView:
    """How one product's tensors map to a ``matmul`` record: per-sample shapes and, for tensors
    shaped like A, B and C, a function giving their ``(batch, *batch_dims, rows, cols)`` view."""

    batch: int
    x_shape: tuple[int, ...]  # (*batch_dims, M, K)
    w_shape: tuple[int, ...]  # (*batch_dims, K, N)
    y_shape: tuple[int, ...]  # (*batch_dims, M, N)
    a: Callable[[torch.Tensor], torch.Tensor]
    b: Callable[[torch.Tensor], torch.Tensor]
    c: Callable[[torch.Tensor], torch.Tensor]
    full_a: tuple[int, ...] | None = None  # matmul: the broadcast shapes the operands are expanded to
    full_b: tuple[int, ...] | None = None


def _split_lead(lead: int, batch: int) -> tuple[int, ...]:
    """The per-sample dims a leading dimension of ``lead`` leaves: ``()`` or ``(lead // batch,)``."""
    if lead == batch:
        return ()
    if lead % batch:
        raise NotAProduct(f"leading dimension {lead} is not a multiple of the step's batch of {batch}")
    return (lead // batch,)


def matmul_view(a: tuple[int, ...], b: tuple[int, ...], batch: int) -> ProductView:
    """The view of ``torch.matmul`` of operands shaped ``a`` and ``b`` (also ``bmm``, ``baddbmm``)."""
    if len(a) < 2 or len(b) < 2:
        raise NotAProduct("a vector operand")
    bshape = tuple(torch.broadcast_shapes(a[:-2], b[:-2]))
    if not bshape:  # h @ h.T across the batch, or a computed weight shared by the samples
        raise NotAProduct("no batch dimension")
    m, k, n = a[-2], a[-1], b[-1]
    dims = (*_split_lead(bshape[0], batch), *bshape[1:])
    full_a, full_b = (*bshape, m, k), (*bshape, k, n)
    return ProductView(batch, (*dims, m, k), (*dims, k, n), (*dims, m, n),
                       lambda t: t.expand(full_a).reshape(batch, *dims, m, k),
                       lambda t: t.expand(full_b).reshape(batch, *dims, k, n),
                       lambda t: t.reshape(batch, *dims, m, n), full_a, full_b)


def einsum_view(equation: str, a: tuple[int, ...], b: tuple[int, ...], batch: int) -> ProductView:
    """The view of ``torch.einsum(equation, ...)`` of operands shaped ``a`` and ``b`` when it is one
    batched matrix product whose first operand leads with the samples."""
    eq = equation.replace(" ", "")
    if "->" not in eq or "." in eq or eq.count(",") != 1:
        raise NotAProduct("not a two-operand equation with an explicit output and no ellipsis")
    ins, out = eq.split("->")
    la, lb = ins.split(",")
    if len(set(la)) != len(la) or len(set(lb)) != len(lb) or len(la) != len(a) or len(lb) != len(b):
        raise NotAProduct("repeated letters or operands of other ranks")
    both = [c for c in la if c in lb]
    bat = [c for c in both if c in out]
    red = [c for c in both if c not in out]
    ms, ns = [c for c in la if c not in lb], [c for c in lb if c not in la]
    if any(c not in out for c in ms + ns) or sorted(out) != sorted(bat + ms + ns) or not red:
        raise NotAProduct("a letter summed in one operand only, or no reduction")
    if not bat or la[0] != bat[0]:
        raise NotAProduct("the first operand's first dimension is no batch dimension")
    size = {**dict(zip(la, a, strict=True)), **dict(zip(lb, b, strict=True))}
    m, k, n = (math.prod(size[c] for c in g) for g in (ms, red, ns))
    dims = (*_split_lead(size[bat[0]], batch), *(size[c] for c in bat[1:]))

    def view(letters: str, rows: list[str], cols: list[str], r: int, c: int) -> Callable:
        order = [letters.index(x) for x in bat + rows + cols]
        return lambda t: t.permute(order).reshape(batch, *dims, r, c)

    return ProductView(batch, (*dims, m, k), (*dims, k, n), (*dims, m, n),
                       view(la, ms, red, m, k), view(lb, red, ns, k, n), view(out, ms, ns, m, n))


@dataclass
class _Product:
    """One recorded product of the current iteration (what the recorder's ``_Call`` holds for a
    module call; no weight)."""

    module: nn.Module  # the innermost model module running it
    layer: int
    batch: int
    counts: dict[str, Any] = field(default_factory=dict)
    masks: dict[str, Any] = field(default_factory=dict)
    gemm: str | None = None
    x_node: Any = None
    b_node: Any = None
    backward_gemms: int = 0
    backward_limit: int = 0
    weight: Any = None  # no parameter
    qual: str = ""
    layout: Any = None
    x_shape: tuple[int, ...] | None = None
    y_shape: tuple[int, ...] | None = None
    w_before: Any = None
    w_version: int = 0


def masked_scores(mask: torch.Tensor) -> torch.Tensor:
    """Where an additive float attention mask removes a score: ``-inf`` (PyTorch's convention), or at
    most half the dtype's lowest finite value (Hugging Face's ``torch.finfo(dtype).min``, to which a
    position bias may have been added): ``exp`` of such a score is 0, so its product is not needed."""
    return mask <= torch.finfo(mask.dtype).min / 2


def _attention_structure(attn_mask: torch.Tensor | None, is_causal: bool, rows: int, cols: int,
                         device: torch.device) -> tuple[torch.Tensor | None, ...]:
    """``(sel, bias, blocked)``: the scores an SDPA call keeps (bool, broadcastable to ``(..., L, S)``;
    None: all), a float mask's additive bias (None without one), and the scores the math backend
    sets to ``-inf`` (``is_causal`` and a boolean mask; None: none; a float mask is only added)."""
    sel, bias, blocked = None, None, None
    if is_causal:
        sel = torch.ones(rows, cols, dtype=torch.bool, device=device).tril()
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        sel = attn_mask if sel is None else sel & attn_mask
    blocked = None if sel is None else ~sel
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        bias, keep = attn_mask, ~masked_scores(attn_mask)
        sel = keep if sel is None else sel & keep
    return sel, bias, blocked


class ProductCapture:
    """The recorder's capture of activation products (a mixin of
    :class:`~traces.recording.recorder.Recorder`)."""

    def _products_enter(self) -> None:
        """Hook the model's forward pass so that :class:`ActivationProducts` is on during training
        forward passes."""
        self._act_mode: ActivationProducts | None = None
        self._act_depth = 0
        self._module_names = {m: q for q, m in self.model.named_modules()}
        self._mha_current: tuple[Any, dict[str, Any]] | None = None  # (its frame, state): the last
        # F.multi_head_attention_forward call whose products were seen
        self._handles.append(self.model.register_forward_pre_hook(Hook(self._act_on)))
        self._handles.append(self.model.register_forward_hook(Hook(self._act_off), prepend=True,
                                                              always_call=True))

    def _products_exit(self) -> None:
        self._mha_current = None
        if self._act_mode is not None:
            self._act_mode.__exit__(None, None, None)
            self._act_mode, self._act_depth = None, 0

    def _act_on(self, module: nn.Module, args: tuple) -> None:
        self._act_depth += 1
        if self._act_depth == 1 and self._training_now():
            self._act_mode = ActivationProducts(self._on_activation_product)
            self._act_mode.__enter__()

    def _act_off(self, module: nn.Module, args: tuple, y: Any) -> None:
        self._act_depth = max(self._act_depth - 1, 0)
        if self._act_depth == 0 and self._act_mode is not None:
            mode, self._act_mode = self._act_mode, None
            mode.__exit__(None, None, None)

    # -- dispatch ---------------------------------------------------------------------------------
    def _on_activation_product(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Record ``func(*args, **kwargs)`` when it multiplies two activations; ``NotImplemented``
        to let it run unrecorded (a parameter operand, outside a training step)."""
        if in_bookkeeping() or not self._training_now():
            return NotImplemented
        if func in _SDPA:
            return self._sdpa(args, kwargs)
        if func in _MHA:
            return self._mha(func, args, kwargs)
        args, kwargs = _operands_positional(func, args, kwargs)
        if func in _EINSUM:
            if len(args) == 2 and isinstance(args[1], (list, tuple)):
                args = (args[0], *args[1])
            if len(args) != 3 or kwargs or not all(isinstance(t, torch.Tensor) for t in args[1:]):
                return NotImplemented
            a, b = args[1], args[2]
        elif func in _BADDBMM:
            if len(args) < 3:
                return NotImplemented
            a, b = args[1], args[2]
        else:
            if len(args) < 2:
                return NotImplemented
            a, b = args[0], args[1]
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or self._is_param(a) \
                or self._is_param(b):
            return NotImplemented
        try:
            batch = self._step_batch(a.shape[0] if a.dim() else 1)
            view = einsum_view(args[0], a.shape, b.shape, batch) if func in _EINSUM else \
                matmul_view(a.shape, b.shape, batch)
        except NotAProduct:
            return NotImplemented  # runs as it is: the GEMM watch refuses it with its call site
        attention = self._next_attention_role()
        sel = None
        if attention is not None and attention["role"] == "scores" and func in _BADDBMM:
            with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
                sel = ~masked_scores(args[0])  # MultiheadAttention's additive mask
        name = {**dict.fromkeys(_MATMUL, "matmul"), **dict.fromkeys(_BMM, "bmm"),
                **dict.fromkeys(_BADDBMM, "baddbmm"), **dict.fromkeys(_EINSUM, "einsum")}[func]
        return self._record_product(func, args, kwargs, a, b, name, view, attention, sel)

    def _is_param(self, t: torch.Tensor) -> bool:
        """A parameter of the model, or a view of one (``w.t()``)."""
        return isinstance(t, nn.Parameter) or isinstance(t._base, nn.Parameter)

    def _owner(self) -> nn.Module:
        """The innermost module of the recorded model whose forward is running (from the Python
        frames: the nearest ``self`` that is one of the model's modules)."""
        import sys

        frame = sys._getframe(1)
        while frame is not None:
            obj = frame.f_locals.get("self")
            if isinstance(obj, nn.Module) and obj in self._module_names:
                return obj
            frame = frame.f_back
        return self.model

    def _step_batch(self, lead: int) -> int:
        if self._calls:
            return self._calls[0].batch
        if self._products:
            return self._products[0].batch
        return lead

    # -- one product ------------------------------------------------------------------------------
    def _record_product(self, func: Any, args: tuple, kwargs: dict, a: torch.Tensor, b: torch.Tensor,
                        op: str, view: ProductView, attention: dict[str, Any] | None,
                        sel: torch.Tensor | None) -> Any:
        """Run one product with aliased operands, recording it as a ``matmul`` layer."""
        owner = self._owner()
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            if not self._started:
                self._begin_iteration()
            rec = self._product_begins(owner, op, view, attention)
            aa, ba = a, b
            if view.full_a is not None:  # the operands as broadcast: gradients per sample
                aa, ba = a.expand(view.full_a), b.expand(view.full_b)
            elif a.requires_grad or b.requires_grad:
                aa, ba = a.view_as(a), b.view_as(b)
            self._take(rec, "x", view.a(a), self.schedule.mask_samples)
            self._take(rec, "w", view.b(b), self.schedule.mask_samples)
            if aa.requires_grad:
                aa.register_hook(partial(self._product_grad, rec, "dx", view.a))
                rec.x_node = aa.grad_fn
            if ba.requires_grad:
                ba.register_hook(partial(self._product_grad, rec, "dw", view.b))
                rec.b_node = ba.grad_fn
        if op == "einsum":
            call_args = (args[0], aa, ba)
        elif op == "baddbmm":
            call_args = (args[0], aa, ba, *args[3:])
        else:
            call_args = (aa, ba, *args[2:])
        self._stack.append(rec)
        try:
            y = func(*call_args, **kwargs)
        finally:
            self._stack.pop()
        self._product_ends(rec, view, y, sel, [aa, ba])
        return y

    def _product_begins(self, owner: nn.Module, op: str, view: ProductView,
                        attention: dict[str, Any] | None) -> _Product:
        """A new record for one product, its layer index taken (the table grows in iteration 0)."""
        base = self._module_names[owner]
        leaf = attention["role"] if attention is not None else op
        qual = f"{base}.{leaf}" if base else leaf
        call = self._call_count[qual]
        self._call_count[qual] += 1
        rec = _Product(owner, self._layer_index(qual, call, None), view.batch, qual=qual)
        name = qual if call == 0 else f"{qual}#{call}"
        spec = LayerSpec(name=name, kind="matmul", module=self._module_names[owner], call=call,
                         module_type=op, x_shape=view.x_shape, w_shape=view.w_shape, y_shape=view.y_shape,
                         groups=math.prod(view.x_shape[:-2]), attention=attention)
        problems = spec.check()
        if problems:
            raise RecorderError(f"{name}: inconsistent geometry: {problems[0]}")
        self._add_spec(rec, spec)  # the recorder's (traces.recording.calls); a matmul owns no update
        return rec

    def _product_ends(self, rec: _Product, view: ProductView, y: torch.Tensor, sel: torch.Tensor | None,
                      operands: list[torch.Tensor]) -> None:
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            samples = self.schedule.mask_samples
            self._seen_dtypes.setdefault("activation", y.dtype)
            yv = view.c(y)
            if sel is not None:
                keep = view.c(sel.expand(y.shape))
                self._take(rec, "y_sel", keep, samples)
                yv = yv * keep  # results outside the structure are no results
            self._take(rec, "y", yv, samples)
            if y.requires_grad:
                y.register_hook(partial(self._product_grad, rec, "dy", view.c))
                if self._watched():
                    self._map_product_backward(rec, y, operands)
            self._products.append(rec)

    def _product_grad(self, rec: _Product, name: str, to_view: Callable, grad: torch.Tensor | None) -> None:
        """A gradient hook of a product: ``dx`` (A's), ``dw`` (B's: counted only) or ``dy``."""
        if grad is None:
            return
        self._seen_dtypes.setdefault("gradient", grad.dtype)
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():
            if name == "dw":  # the trace stores no dw mask
                rec.counts["dw"] = count_nonzero(to_view(grad))
            else:
                self._take(rec, name, to_view(grad), self.schedule.mask_samples)

    def _map_product_backward(self, rec: _Product, y: torch.Tensor, operands: list[torch.Tensor]) -> None:
        """Note the autograd nodes of one product (from its result back to its aliased operands),
        whose backward GEMMs are its backward-data (dA) and backward-weight (dB) passes."""
        stops = {t.grad_fn for t in operands if t.requires_grad}
        rec.backward_limit = sum(t.requires_grad for t in operands)
        todo, seen = [y.grad_fn], 0
        while todo and seen < _MAX_PRODUCT_NODES:
            node = todo.pop()
            if node is None or node in stops or node in self._node_calls \
                    or type(node).__name__ == "AccumulateGrad":
                continue
            self._node_calls[node] = rec
            seen += 1
            todo.extend(f for f, _ in node.next_functions)

    # -- attention --------------------------------------------------------------------------------
    def _mha_state(self) -> dict[str, Any] | None:
        """The ``F.multi_head_attention_forward`` call running now (found among the Python frames),
        as ``{"call", "causal", "backend", "done"}``: its products are one attention call's."""
        import sys

        frame = sys._getframe(1)
        while frame is not None and frame.f_code is not _MHA_CODE:
            frame = frame.f_back
        if frame is None:
            return None
        if self._mha_current is None or self._mha_current[0] is not frame:
            causal = bool(frame.f_locals.get("is_causal", False))
            self._mha_current = (frame, {"call": self._attention_call(self._owner()), "causal": causal,
                                         "backend": "explicit", "done": 0})
        return self._mha_current[1]

    def _next_attention_role(self) -> dict[str, Any] | None:
        """Inside an attention call (``nn.MultiheadAttention``), the role of its next product."""
        att = self._mha_state()
        if att is None or att["done"] >= 2:
            return None
        role = ("scores", "context")[att["done"]]
        att["done"] += 1
        return {"call": att["call"], "role": role, "causal": att["causal"], "backend": att["backend"]}

    def _attention_call(self, owner: nn.Module) -> str:
        base = self._module_names[owner] or "(model)"
        call = self._call_count[f"{base}.attention"]
        self._call_count[f"{base}.attention"] += 1
        return base if call == 0 else f"{base}#{call}"

    def _mha(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """``F.multi_head_attention_forward`` is Python code that hands itself to the torch-function
        modes, which then run it with themselves off the stack: its projections and products would
        run unseen (and be refused by the GEMM watch). It runs here with the recorder's modes back
        on the stack, its own first ``has_torch_function`` check answered False (so it does not hand
        itself over again); every call inside it is seen as in any forward code."""
        import contextlib

        import torch.nn.functional as nnf

        on_stack = {torch._C._get_function_stack_at(i) for i in range(torch._C._len_torch_function_stack())}
        modes = [m for m in (getattr(self, "_param_mode", None), self._act_mode) if m is not None
                 and m not in on_stack]
        original, asked = nnf.has_torch_function, []

        def first_false(ops: Any) -> bool:
            asked.append(1)
            return False if len(asked) == 1 else original(ops)

        nnf.has_torch_function = first_false
        try:
            with contextlib.ExitStack() as stack:
                for mode in modes:
                    stack.enter_context(mode)
                return func(*args, **kwargs)
        finally:
            nnf.has_torch_function = original

    def _sdpa(self, args: tuple, kwargs: dict) -> Any:
        """``F.scaled_dot_product_attention`` as its math decomposition, the two products recorded
        (``NotImplemented``: no per-sample form; it runs as it is and the GEMM watch refuses it)."""
        return self._sdpa_run(*args, **kwargs)

    def _sdpa_run(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0, is_causal: bool = False,
                  scale: float | None = None, enable_gqa: bool = False) -> Any:
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():  # the recorder's own questions, no model work
            choice = torch._fused_sdp_choice(query, key, value, attn_mask, dropout_p, is_causal, scale=scale,
                                             enable_gqa=enable_gqa)  # raises where no backend can run
        if enable_gqa and key.dim() >= 3 and key.shape[-3] != query.shape[-3]:
            rep = query.shape[-3] // key.shape[-3]
            key, value = key.repeat_interleave(rep, -3), value.repeat_interleave(rep, -3)
        rows, cols = query.shape[-2], key.shape[-2]
        kt = key.transpose(-2, -1)
        try:
            lead = tuple(torch.broadcast_shapes(query.shape[:-2], kt.shape[:-2]))
            batch = self._step_batch(lead[0] if lead else 1)
            views = (matmul_view(query.shape, kt.shape, batch),
                     matmul_view((*lead, rows, cols), value.shape, batch))
        except NotAProduct:
            return NotImplemented
        outer = self._mha_state()  # nn.MultiheadAttention(need_weights=False) runs SDPA: its call
        if outer is not None and outer["done"] == 0:
            outer["done"] = 2
            name = outer["call"]
        else:
            name = self._attention_call(self._owner())
        att = {"call": name, "causal": bool(is_causal), "backend": _BACKENDS.get(int(choice), "math")}
        with _NO_FUNCTION_MODES(), _NO_DISPATCH_MODES():  # the structure: what a kernel skips, not work
            sel, bias, blocked = _attention_structure(attn_mask, is_causal, rows, cols, query.device)
            full_sel = None if sel is None else sel.expand(*lead, rows, cols)
        scores = self._record_product(torch.matmul, (query, kt), {}, query, kt, "matmul", views[0],
                                      {**att, "role": "scores"}, full_sel)
        s = scores * (scale if scale is not None else 1 / math.sqrt(query.shape[-1]))
        if bias is not None:
            s = s + bias
        if blocked is not None:
            s = s.masked_fill(blocked, float("-inf"))
        p = torch._safe_softmax(s, -1)  # a row with every score masked: zeros, as the math backend
        if dropout_p > 0:
            p = torch.dropout(p, dropout_p, True)
        return self._record_product(torch.matmul, (p, value), {}, p, value, "matmul", views[1],
                                    {**att, "role": "context"}, None)
