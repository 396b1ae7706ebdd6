"""The non-GEMM work of a training step, counted: the manifest's ``vector_ops`` table (imports torch).

During the first recorded training forward pass a dispatch mode (:class:`VectorOpCapture`) sees
every ``aten`` operator the model executes outside its recorded GEMM calls and keeps one row per
operator call that computes: softmax, normalisations, activations, dropout's random mask,
element-wise arithmetic, reductions, pooling. Each row is

``{"name", "kind", "op", "module", "shape", "batched", "passes"}``:

- ``kind``: one of :data:`KINDS` (what ``hwsim.vector`` prices), ``op`` the ``aten`` operator;
- ``module``: the innermost module of the model running it (``""``: the model itself);
- ``shape``: the elements it processes per sample (the largest of its tensors: a reduction's
  input, an element-wise op's output), ``batched``: whether that shape is per sample (the tensor
  leads with the step's batch, or a flattened ``N·L`` rows) — else it is the whole step's
  (work on parameters, position tables);
- ``passes``: ``["forward", "backward_data"]`` when an input needs a gradient (its backward runs
  too), else ``["forward"]``.

Not counted: views, copies and allocations (``view``, ``clone``, ``cat``, ``empty``, …: memory
traffic, not arithmetic), the recorded layers' own GEMMs (a bias fused into ``addmm`` included),
a training method's bookkeeping, and work outside the model's forward pass (a loss computed on
its output). The table is the same every step (the recorder requires the same layer calls every
iteration), so it is taken once, in iteration 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..format.vector_ops import KINDS
from .capture import GEMM_OPS, in_bookkeeping
from .hooks import Hook

# aten operator (without a trailing "_" of its in-place form) -> kind
KIND_OF_OP: dict[str, str] = {
    "_softmax": "softmax", "softmax": "softmax", "_safe_softmax": "softmax",
    "_log_softmax": "log_softmax", "log_softmax": "log_softmax",
    "nll_loss_forward": "reduce", "nll_loss2d_forward": "reduce", "mse_loss": "reduce",
    "binary_cross_entropy": "reduce",
    "native_layer_norm": "layer_norm", "layer_norm": "layer_norm", "_fused_rms_norm": "rms_norm",
    "rms_norm": "rms_norm", "native_batch_norm": "batch_norm", "_native_batch_norm_legit": "batch_norm",
    "_native_batch_norm_legit_functional": "batch_norm", "native_group_norm": "layer_norm",
    "gelu": "gelu", "silu": "silu", "tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu",
    "hardtanh": "relu", "leaky_relu": "relu", "threshold": "relu", "elu": "silu", "mish": "silu",
    "softplus": "silu", "hardswish": "relu", "hardsigmoid": "relu",
    "native_dropout": "dropout", "bernoulli": "dropout", "rand": "dropout", "rand_like": "dropout",
    "add": "add", "sub": "add", "rsub": "add", "neg": "add", "abs": "add", "clamp": "add", "clamp_min": "add",
    "clamp_max": "add", "maximum": "add", "minimum": "add", "lerp": "mul", "addcmul": "mul", "addcdiv": "div",
    "mul": "mul", "div": "div", "reciprocal": "div", "pow": "pow", "square": "mul",
    "exp": "exp", "log": "log", "sqrt": "sqrt", "rsqrt": "rsqrt", "erf": "exp", "cos": "exp", "sin": "exp",
    "where": "select", "masked_fill": "select", "eq": "select", "ne": "select", "lt": "select",
    "gt": "select", "le": "select", "ge": "select", "logical_not": "select", "bitwise_not": "select",
    "sum": "reduce", "mean": "reduce", "amax": "reduce", "max": "reduce", "min": "reduce", "amin": "reduce",
    "var": "reduce", "var_mean": "reduce", "std": "reduce", "norm": "reduce", "linalg_vector_norm": "reduce",
    "cumsum": "reduce", "logsumexp": "log_softmax", "argmax": "reduce",
    "max_pool2d_with_indices": "pool", "avg_pool2d": "pool", "_adaptive_avg_pool2d": "pool",
    "max_pool1d": "pool", "avg_pool1d": "pool", "adaptive_max_pool2d": "pool",
}
assert set(KIND_OF_OP.values()) <= set(KINDS), "every kind the capture writes is one the format knows"
# moving, viewing or allocating data (no arithmetic), and operators counted elsewhere (GEMMs,
# embedding gathers); everything else is counted, as "elementwise" when not in KIND_OF_OP
NOT_COUNTED = frozenset({
    "view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "unsqueeze", "squeeze",
    "slice", "select", "split", "split_with_sizes", "chunk", "unbind", "as_strided", "alias", "detach",
    "clone", "copy", "_to_copy", "contiguous", "cat", "stack", "empty", "empty_like", "empty_strided",
    "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "new_zeros", "new_ones", "new_empty",
    "new_full", "arange", "lift_fresh", "scalar_tensor", "_local_scalar_dense", "embedding", "index",
    "index_select", "gather", "flip", "roll", "repeat", "unfold", "tril", "triu", "fill", "zero",
    "masked_select", "nonzero", "item", "_reshape_alias", "unsafe_split", "narrow", "diagonal",
    "pad", "constant_pad_nd", "im2col", "col2im", "movedim", "to", "type_as", "set_", "resize",
    "sort", "topk", "argsort", "randperm", "randint", "multinomial", "normal", "uniform",
    "_fused_sdp_choice", "is_nonzero", "equal", "_assert_async", "sym_size", "sym_numel",
})


def _elements(t: Any) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 0


class VectorOpCapture(TorchDispatchMode):
    """Appends a row to ``rows`` for every counted operator executed while it is on, outside
    recorded GEMM calls (``in_gemm_call()``) and training methods' bookkeeping."""

    def __init__(self, rows: list[dict[str, Any]], names: dict[str, int], batch: Callable[[], int],
                 module_of: Callable[[], str], in_gemm_call: Callable[[], bool]) -> None:
        super().__init__()
        self.rows, self.names, self.batch = rows, names, batch
        self.module_of, self.in_gemm_call = module_of, in_gemm_call

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        base = name[:-1] if name.endswith("_") and not name.startswith("__") else name
        if func.namespace != "aten" or func.is_view or base.lstrip("_") in NOT_COUNTED \
                or base in NOT_COUNTED or func.overloadpacket in GEMM_OPS or self.in_gemm_call() \
                or in_bookkeeping():
            return out
        self._add(base, args, kwargs or {}, out)
        return out

    def _add(self, op: str, args: tuple, kwargs: dict, out: Any) -> None:
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        biggest = max([*tensors, *outs], key=_elements, default=None)
        if biggest is None or biggest.numel() <= 1:
            return
        if not biggest.is_floating_point() and op not in KIND_OF_OP:  # index arithmetic
            return
        shape, batched = per_sample(tuple(biggest.shape), self.batch())
        kind = KIND_OF_OP.get(op, "elementwise")
        module = self.module_of()
        base = f"{module}.{kind}" if module else kind
        k = self.names.get(base, 0)
        self.names[base] = k + 1
        grad = any(t.requires_grad for t in tensors)
        self.rows.append({"name": base if k == 0 else f"{base}#{k}", "kind": kind, "op": op, "module": module,
                          "shape": list(shape), "batched": batched,
                          "passes": ["forward", "backward_data"] if grad else ["forward"]})


def per_sample(shape: tuple[int, ...], batch: int) -> tuple[tuple[int, ...], bool]:
    """``(shape, batched)``: the per-sample shape of a tensor of the step (leading with ``batch``,
    or its flattened ``batch·L`` rows), else the whole shape and False."""
    if shape and shape[0] == batch:
        return shape[1:] or (1,), True
    if shape and batch > 1 and shape[0] % batch == 0:
        return (shape[0] // batch, *shape[1:]), True
    return shape or (1,), False


def step_batch(args: tuple, kwargs: dict) -> int | None:
    """The batch of a model call: the leading dimension of its first tensor argument."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor) and a.dim() >= 1:
            return int(a.shape[0])
    return None


class VectorOps:
    """The recorder's capture of the ``vector_ops`` table (a mixin of
    :class:`~traces.recording.recorder.Recorder`): on during iteration 0's training forward passes
    (several with gradient accumulation: each micro-batch's work is rows of its own)."""

    def _vector_ops_enter(self) -> None:
        self._vector_rows: list[dict[str, Any]] | None = None  # the table, once taken
        self._vector_names: dict[str, int] = {}  # rows per base name so far (for "#k")
        self._vector_mode: VectorOpCapture | None = None
        self._module_stack: list[str] = []
        self._module_quals = {m: q for q, m in self.model.named_modules()}
        self._handles.append(self.model.register_forward_pre_hook(Hook(self._vector_begins),
                                                                  with_kwargs=True))
        self._handles.append(self.model.register_forward_hook(Hook(self._vector_ends), prepend=True,
                                                              always_call=True))
        self._vector_handles: list[Any] = []

    def _vector_begins(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self._vector_mode is not None or not self._training_now() or self.iteration != 0:
            return
        hint = step_batch(args, kwargs)
        if hint is None:
            return
        if self._vector_rows is None:
            self._vector_rows = []
        for m in self._module_quals:
            if m is self.model:  # its own hooks are being run: the model's work is module ""
                continue
            self._vector_handles.append(m.register_forward_pre_hook(Hook(self._enter_module)))
            self._vector_handles.append(m.register_forward_hook(Hook(self._leave_module), always_call=True))
        # the step's batch: the recorded calls' (a sequence-first input leads with time), else the input's
        self._vector_mode = VectorOpCapture(self._vector_rows, self._vector_names,
                                            lambda: (self._calls[0].batch if self._calls else hint),
                                            lambda: self._module_stack[-1] if self._module_stack else "",
                                            lambda: bool(self._stack))
        self._vector_mode.__enter__()

    def _vector_ends(self, module: nn.Module, args: tuple, y: Any) -> None:
        if self._vector_mode is None or self._module_stack:
            return
        self._vector_exit()

    def _vector_exit(self) -> None:
        mode, self._vector_mode = self._vector_mode, None
        if mode is not None:
            mode.__exit__(None, None, None)
        for h in self._vector_handles:
            h.remove()
        self._vector_handles = []

    def _enter_module(self, module: nn.Module, args: tuple) -> None:
        if module is not self.model:
            self._module_stack.append(self._module_quals[module])

    def _leave_module(self, module: nn.Module, args: tuple, y: Any) -> None:
        if module is not self.model and self._module_stack:
            self._module_stack.pop()
