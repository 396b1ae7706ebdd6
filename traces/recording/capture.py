"""What the recorder can capture: the modules it hooks, and a watch for the work it cannot see.

The recorder hooks ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d``, ``nn.Linear`` and
``nn.Embedding`` modules (subclasses included). Everything else
that does GEMM work in training would be missing from the trace, so it is refused (products of two
activations are recorded by :mod:`traces.recording.products`): compiled and recurrent modules and
non-zero padding up front (:func:`find_targets`), and any
matrix product that no recorded layer accounts for while it is executed (:class:`GemmWatch`).

The watch works at PyTorch's dispatch level: a ``TorchDispatchMode`` sees every ``aten`` operator
after Python-level functions (``F.linear``, ``torch.einsum``, ``torch.linalg.multi_dot``,
``nn.LSTMCell``, ``x @ w``, …) have decomposed into the operators the kernels run, so no list of
Python functions has to be kept. Which operators count as GEMMs is :data:`GEMM_OP_NAMES`. A
training method's own bookkeeping math (DSG's random projection) is marked with
:func:`bookkeeping` and not taken for model work.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..format.errors import RecorderError, RecorderWarning
from ..format.layer import LayerSpec
from .recurrent import recurrent_problem

_UNSUPPORTED = (nn.Bilinear,)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)

# aten operators that are GEMMs: a reduction over a dimension shared by two operands, what a GEMM
# engine (PE array, tensor cores, crossbar) would run. Composite operators (matmul, linear,
# einsum, tensordot, inner, conv2d, lstm_cell, ...) normally decompose before the dispatch mode
# sees them and are listed for backends that keep them whole. Not GEMMs: outer/ger/addr (rank-1,
# no reduction), element-wise products summed by hand, factorizations and solves (linalg.*),
# embedding lookups. Backward operators are listed for explicit calls in a forward pass; in the
# backward pass a GEMM run by the autograd nodes of a recorded layer's forward call is that
# layer's (the recorder's backward watch), any other is refused.
GEMM_OP_NAMES: tuple[str, ...] = (
    # matrix and vector products
    "mm", "addmm", "_addmm_activation", "bmm", "baddbmm", "addbmm", "matmul", "linear", "mv",
    "addmv", "dot", "vdot", "inner", "tensordot", "einsum", "chain_matmul", "bilinear", "_trilinear",
    "_scaled_mm", "_int_mm", "_sparse_mm", "_sparse_addmm", "sspaddmm", "hspmm", "smm",
    "mkldnn_linear", "_weight_int8pack_mm", "_weight_int4pack_mm", "_cdist_forward",
    "_weight_int4pack_mm_for_cpu", "_weight_int4pack_mm_with_scales_and_zeros", "_dyn_quant_matmul_4bit",
    "_scaled_mm_v2", "_grouped_mm", "_scaled_grouped_mm", "_foreach_mm", "_cslt_sparse_mm",
    "_sparse_semi_structured_mm", "_sparse_semi_structured_addmm", "_sparse_semi_structured_linear",
    "addmm_", "addbmm_", "baddbmm_", "addmv_", "linear_backward", "matmul_backward", "_scaled_grouped_mm_v2",
    "_mixed_dtypes_linear", "_sparse_sparse_matmul", "_sparse_mm_reduce_impl",
    "_sparse_mm_reduce_impl_backward", "sparse_sampled_addmm",
    "linalg_matmul", "linalg_multi_dot", "_wrapped_quantized_linear_prepacked", "fbgemm_linear_fp16_weight",
    "fbgemm_linear_fp16_weight_fp32_activation", "fbgemm_linear_int8_weight",
    "fbgemm_linear_int8_weight_fp32_activation", "mkldnn_linear_backward", "mkldnn_linear_backward_input",
    "mkldnn_linear_backward_weights", "_compute_linear_combination",
    # convolutions, every backend's variant
    "convolution", "_convolution", "convolution_overrideable", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv_tbc", "cudnn_convolution",
    "cudnn_convolution_transpose", "cudnn_convolution_relu", "cudnn_convolution_add_relu",
    "mkldnn_convolution", "miopen_convolution", "miopen_convolution_transpose",
    "miopen_depthwise_convolution", "_slow_conv2d_forward", "thnn_conv2d", "slow_conv3d",
    "slow_conv3d_forward", "slow_conv_dilated2d", "slow_conv_dilated3d", "slow_conv_transpose2d",
    "slow_conv_transpose3d", "_conv_depthwise2d", "conv_depthwise3d", "_nnpack_spatial_convolution",
    "_mps_convolution", "_mps_convolution_transpose", "convolution_backward",
    "_convolution_double_backward", "_convolution_mode", "_slow_conv2d_backward", "conv_tbc_backward",
    "convolution_backward_overrideable", "miopen_convolution_add_relu", "miopen_convolution_relu",
    "mps_convolution_backward", "mps_convolution_transpose_backward",
    # attention
    "scaled_dot_product_attention", "_scaled_dot_product_attention_math",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable", "_flash_attention_forward",
    "_efficient_attention_forward", "_flash_attention_forward_no_dropout_inplace",
    "_native_multi_head_attention", "_scaled_dot_product_attention_math_for_mps",
    "_scaled_dot_product_flash_attention_backward", "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_efficient_attention_backward", "_scaled_dot_product_cudnn_attention_backward",
    "_scaled_dot_product_fused_attention_overrideable_backward", "_flash_attention_backward",
    "_efficient_attention_backward", "_cudnn_attention_forward", "_cudnn_attention_backward",
    "_triton_multi_head_attention", "_triton_scaled_dot_attention",
    # fused recurrent layers and cells
    "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
    "_cudnn_rnn", "miopen_rnn", "mkldnn_rnn_layer",
)


# aten operators whose names read like GEMMs (see gemm_like_name) but do no product: weight
# packing, index conversion and layout reorders, and the cuSPARSELt algorithm search (it times
# candidate kernels, it is not the model's product).
NOT_GEMM_OP_NAMES: frozenset[str] = frozenset({
    "_convert_weight_to_int4pack", "_convert_weight_to_int4pack_for_cpu", "_convert_indices_from_coo_to_csr",
    "_convert_indices_from_csr_to_coo", "_cslt_sparse_mm_search",
    "_wrapped_linear_prepack", "fbgemm_linear_quantize_weight", "fbgemm_pack_gemm_matrix_fp16",
    "fbgemm_pack_quantized_matrix", "mkldnn_reorder_conv2d_weight", "mkldnn_reorder_conv3d_weight"})


def gemm_like_name(name: str) -> bool:
    """Whether an aten operator's name reads like a matrix product, convolution or attention (a
    ``_``-separated word ending in ``mm`` or starting with ``conv``, ``matmul``, ``linear``,
    ``attention``, ...). A test holds :data:`GEMM_OP_NAMES` to every such operator of the installed
    PyTorch but :data:`NOT_GEMM_OP_NAMES`, so a PyTorch upgrade's new GEMM kernels (``_grouped_mm``
    of mixture-of-experts layers came so) cannot run unwatched."""
    words = {"matmul", "linear", "einsum", "dot", "vdot", "bilinear", "trilinear", "mv", "addmv",
             "tensordot", "inner"}
    return any(w.endswith("mm") or w in words or w.startswith("conv") or w.endswith("attention")
               for w in name.split("_") if w)


def _packets(names: tuple[str, ...]) -> frozenset:
    found = set()
    for name in names:
        try:
            found.add(getattr(torch.ops.aten, name))
        except (AttributeError, RuntimeError):  # not in this PyTorch build
            continue
    return frozenset(found)


GEMM_OPS: frozenset = _packets(GEMM_OP_NAMES)  # the OpOverloadPackets, for a cheap membership test

# Python-level calls that run a backward pass: the gate runs them under the recorder's backward
# watch, which attributes each GEMM to the recorded layer whose autograd node runs it.
_BACKWARD = {torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad}
_ATTRIBUTE = frozenset({"__get__", "__set__", "__delete__"})  # tensor attribute access: no GEMM
TO_NUMPY = frozenset({torch.Tensor.numpy, torch.Tensor.__array__})  # x.numpy(), np.asarray(x)
_numpy_sites: set[str] = set()  # call sites already warned about

_bookkeeping_depth = 0
_grad_enabled = torch.is_grad_enabled


@contextmanager
def bookkeeping() -> Iterator[None]:
    """Mark a training method's own math (DSG's projection, scores): its matrix products are the
    method's overhead, which the method reports itself (``rec.log``), not unrecorded model GEMMs."""
    global _bookkeeping_depth
    _bookkeeping_depth += 1
    try:
        yield
    finally:
        _bookkeeping_depth -= 1


def in_bookkeeping() -> bool:
    """Whether a training method's own math is running (see :func:`bookkeeping`)."""
    return _bookkeeping_depth > 0


# frames that are not the user's: PyTorch's, the recorder's and the context managers it enters
_HERE = os.path.dirname(os.path.abspath(__file__))
_SKIP_FILES = (os.path.dirname(torch.__file__) + os.sep, os.path.abspath(__file__),
               os.path.join(_HERE, "recorder.py"), os.path.join(_HERE, "watching.py"),
               os.path.join(_HERE, "functional.py"), os.path.join(_HERE, "recurrent.py"),
               os.path.join(_HERE, "vector_ops.py"), os.path.join(_HERE, "products.py"),
               os.path.join(_HERE, "hooks.py"), os.path.join(_HERE, "recomputation.py"),
               os.path.abspath(contextlib.__file__))


def user_frame() -> FrameType | None:
    """The innermost Python frame outside PyTorch and the recorder: the user's (or a method's)
    code that led to the operator being dispatched (None: no such frame on this thread, as in an
    autograd worker thread running a C++ backward node)."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_SKIP_FILES[0]) and path not in _SKIP_FILES[1:]:
            return frame
        frame = frame.f_back
    return None


def call_site(frame: FrameType | None = None) -> str:
    """``file:line in function: source`` of ``frame`` (default: :func:`user_frame`)."""
    frame = frame or user_frame()
    if frame is None:
        return "(no Python call site)"
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    site = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
    return f"{site}: `{code}`" if code else site


def op_name(func: Any) -> str:
    """``aten.addmm`` for the operator overload ``aten.addmm.default``."""
    packet = getattr(func, "overloadpacket", func)
    return f"{getattr(func, 'namespace', 'aten')}.{getattr(packet, '__name__', str(func))}"


# operators that allocate, copy or alias without computing: not update work
NOT_WORK = frozenset({"clone", "copy_", "_to_copy", "detach", "lift_fresh", "zeros_like", "empty_like",
                      "ones_like", "full_like", "empty", "zeros", "ones", "full", "alias"})


class ElementwiseCount(TorchDispatchMode):
    """Counts the element operations of the ``aten`` operators it sees executed: per operator, the
    elements of the tensor it writes (``self`` of an in-place operator, the output otherwise; every
    tensor of a ``_foreach_`` list). Views, copies, allocations and operators on tensors of one
    element (step counters, scalars read back) are not counted. The optimizer step's update work
    per weight is ``elements / Σ weights stepped`` (SGD with momentum: 3, Adam: 7)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements = 0
        self.fused = False  # a fused step (one kernel, _fused_adam_ and the like) ran: not countable

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        self.fused = self.fused or name.startswith("_fused_")
        if func.namespace == "aten" and not func.is_view and name.lstrip("_") not in NOT_WORK:
            written = args[0] if name.endswith("_") and args else out
            tensors = written if isinstance(written, (list, tuple)) else [written]
            self.elements += sum(t.numel() for t in tensors if isinstance(t, torch.Tensor) and t.numel() > 1)
        return out


def unfused_ops_per_weight(optimizer: torch.optim.Optimizer) -> float:
    """The element work per weight of one step of ``optimizer`` on torch's single-tensor path, with
    its first parameter group's settings: what a fused step (``fused=True``: the whole update in one
    kernel per parameter list, which :class:`ElementwiseCount` sees as one write) computes. Counted
    on the second step of a copy of the optimizer over a 4×4 stand-in weight (the first creates
    the state); the caller keeps the global optimizer hooks from seeing that copy."""
    import inspect

    accepted = inspect.signature(type(optimizer).__init__).parameters
    group = optimizer.param_groups[0]
    settings = {k: v for k, v in group.items() if k in accepted and k not in ("params", "capturable")}
    settings.update({k: False for k in ("fused", "foreach") if k in accepted})
    weight = torch.zeros(4, 4, dtype=group["params"][0].dtype, requires_grad=True)
    weight.grad = torch.full_like(weight, 0.5)
    copy = type(optimizer)([weight], **settings)
    copy.step()
    with ElementwiseCount() as count:
        copy.step()
    return count.elements / weight.numel()


class GemmWatch(TorchDispatchMode):
    """Calls ``on_gemm(func)`` before every GEMM operator (:data:`GEMM_OPS`) it sees executed;
    every other operator passes through after one set lookup."""

    def __init__(self, on_gemm: Callable[[Any], None]) -> None:
        super().__init__()
        self.on_gemm = on_gemm  # raises RecorderError for a product no recorded layer accounts for

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func.overloadpacket in GEMM_OPS:
            self.on_gemm(func)
        return func(*args, **(kwargs or {}))


def _needs_grad(args: tuple, kwargs: dict) -> bool:
    flat = [*args, *kwargs.values()]
    flat += [t for a in flat if isinstance(a, (list, tuple)) for t in a]
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in flat)


class Gate(TorchFunctionMode):
    """Watches training computation *outside* the model's forward pass (a loss or head computed
    on the model's output, a recorded layer called on its own): every Python-level torch call
    that builds autograd graph while ``training()`` holds runs under a :class:`GemmWatch`.

    Inside the forward pass (``in_forward()``) the recorder's own watch is already on (the
    recorder takes the gate off the mode stack for the pass, :meth:`suspend`); backward calls
    run under ``backward()``, the recorder's backward watch; calls without grad-requiring
    tensors (data preparation, the optimizer, evaluation) pass through.
    """

    def __init__(self, training: Callable[[], bool], in_forward: Callable[[], bool],
                 on_gemm: Callable[[Any], None], backward: Callable[[], Any],
                 in_step: Callable[[], bool] = lambda: False,
                 on_side_gemm: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self.training = training  # whether a training step is being recorded now
        self.in_forward = in_forward  # whether the recorder's forward-pass watch is on
        self.on_gemm = on_gemm
        self.backward = backward  # a context manager watching one backward pass
        # whether a watched training step is under way (its first training forward has run and
        # rec.step() has not): calls without gradients are then side computations of the step
        self.in_step = in_step
        self.on_side_gemm = on_side_gemm or on_gemm

    def suspend(self) -> bool:
        """Take the gate off the torch-function mode stack while the recorder's own watch covers
        the computation (the model's forward pass), so the forward's torch calls do not pay for
        it. Returns False, and leaves the stack alone, when the gate is not on top of it."""
        n = torch._C._len_torch_function_stack()
        if n == 0 or torch._C._get_function_stack_at(n - 1) is not self:
            return False
        torch._C._pop_torch_function_stack()
        return True

    def resume(self) -> None:
        """Put the gate back on top of the stack after :meth:`suspend` returned True."""
        torch._C._push_on_torch_function_stack(self)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in _ATTRIBUTE or self.in_forward():
            return func(*args, **kwargs)
        if func in TO_NUMPY and self.in_step():
            numpy_conversion(args)
            return func(*args, **kwargs)
        if _grad_enabled() and func in _BACKWARD:
            if not self.training():
                return func(*args, **kwargs)
            with self.backward():
                return func(*args, **kwargs)
        if _grad_enabled() and self.training() and _needs_grad(args, kwargs):
            with GemmWatch(self.on_gemm):
                return func(*args, **kwargs)
        if self.in_step():  # no graph, inside a watched step: an EMA teacher, a statistic, pseudo-labels
            with GemmWatch(self.on_side_gemm):
                return func(*args, **kwargs)
        # data preparation, evaluation, the optimizer (the gate is off during its step): no GEMM to see
        return func(*args, **kwargs)


def numpy_conversion(args: tuple) -> None:
    """A tensor converted to numpy inside a recorded training step (``x.numpy()``,
    ``np.asarray(x)``): whatever numpy computes from it is invisible to the recorder, which sees
    torch operators only. A floating tensor of two or more dimensions (an activation, a weight
    matrix: what a GEMM takes) is warned about once per call site; a vector or integer tensor (a
    metric, predicted labels) and conversions inside :func:`bookkeeping` are not."""
    t = args[0] if args else None
    if in_bookkeeping() or not isinstance(t, torch.Tensor) or t.dim() < 2 or not t.is_floating_point():
        return
    site = call_site()
    if site in _numpy_sites:
        return
    _numpy_sites.add(site)
    warnings.warn(RecorderWarning(
        f"a {tuple(t.shape)} {str(t.dtype).removeprefix('torch.')} tensor was converted to numpy inside "
        f"a recorded training step at {site}: a GEMM numpy runs on it is not in the trace (the recorder "
        "sees torch operators only); run that work in torch, or wrap it in "
        "traces.recording.recorder.bookkeeping() if it is not training work"), stacklevel=3)


def find_targets(model: nn.Module) -> dict[nn.Module, str]:
    """The recordable conv, Linear and Embedding modules of ``model`` by qualified name; RecorderError naming
    every module that would make the trace wrong (compiled, recurrent, non-zero padding)."""
    problems, targets = [], {}
    for qual, m in model.named_modules():
        where = qual or "(model)"
        if hasattr(m, "_orig_mod") or type(m).__name__ == "OptimizedModule":
            problems.append(f"{where} is torch.compile'd (compiled code bypasses the hooks; "
                            "record the uncompiled model)")
        elif getattr(m, "_compiled_call_impl", None) is not None:
            problems.append(f"{where} was compiled in place by {where}.compile() (compiled code "
                            "bypasses the hooks; record a model that was not compiled)")
        elif isinstance(m, _UNSUPPORTED):
            problems.append(f"{where} ({type(m).__name__}) does GEMM work hwsim cannot record yet")
        elif isinstance(m, nn.RNNBase):
            problem = recurrent_problem(m)
            if problem:
                problems.append(f"{where} ({type(m).__name__}): {problem}")
        elif isinstance(m, nn.Embedding):
            if m.max_norm is not None:
                problems.append(f"{where}: Embedding(max_norm={m.max_norm}) rewrites weight rows in its "
                                "forward pass, work a trace does not describe; record it without max_norm")
            else:
                targets[m] = qual
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, *_TRANSPOSED)):
            if m.padding_mode != "zeros":
                problems.append(f"{where}: padding_mode={m.padding_mode!r}; only zero padding "
                                "keeps padded taps ineffectual")
            elif isinstance(m.padding, str) and m.padding == "same" and any(
                    (d * (k - 1)) % 2 for d, k in zip(m.dilation, m.kernel_size, strict=True)):
                problems.append(f"{where}: padding='same' with an even kernel pads asymmetrically")
            else:
                targets[m] = qual
        elif isinstance(m, nn.Linear):
            targets[m] = qual
    if problems:
        raise RecorderError("cannot record this model: " + "; ".join(problems))
    if not targets:
        # a model of recurrent layers or functional GEMMs only still records through them
        if not any(isinstance(m, nn.RNNBase) for m in model.modules()) and not any(
                p.dim() >= 2 for p in model.parameters()):
            raise RecorderError(f"{type(model).__name__} has no nn.Conv*/ConvTranspose*/Linear/Embedding or "
                                "recurrent layers and no matrix parameters to record")
    return targets


def layer_spec(module: nn.Module, qual: str, call: int, x_shape: tuple[int, ...],
               y_shape: tuple[int, ...], parameter: str) -> LayerSpec:
    """The LayerSpec of one call of a recorded module, from the module, its input and output per
    sample (in the layer's view: :mod:`traces.recording.modules`) and the name of its weight
    parameter (shared by the calls of a reused module and by tied modules)."""
    base = qual or "(model)"
    name = base if call == 0 else f"{base}#{call}"
    w_shape = tuple(module.weight.shape)
    if isinstance(module, nn.Conv1d):
        w_shape = (w_shape[0], w_shape[1], 1, w_shape[2])
    common = dict(name=name, module=qual, call=call, module_type=type(module).__name__, parameter=parameter,
                  x_shape=tuple(x_shape), w_shape=w_shape, y_shape=tuple(y_shape),
                  bias=getattr(module, "bias", None) is not None)
    if isinstance(module, nn.Linear):
        return LayerSpec(kind="linear", **common)
    if isinstance(module, nn.Embedding):
        spec = LayerSpec(kind="embedding", **common)
    elif isinstance(module, _TRANSPOSED):  # output_padding is what y_shape leaves over
        spec = LayerSpec(kind="conv_transpose", stride=tuple(module.stride), padding=tuple(module.padding),
                         dilation=tuple(module.dilation), groups=module.groups, **common)
    elif isinstance(module, nn.Conv3d):
        pad = module.padding
        if isinstance(pad, str):
            pad = (0,) * 3 if pad == "valid" else tuple(
                d * (k - 1) // 2 for d, k in zip(module.dilation, module.kernel_size, strict=True))
        spec = LayerSpec(kind="conv3d", stride=tuple(module.stride), padding=tuple(pad),
                         dilation=tuple(module.dilation), groups=module.groups, **common)
    else:
        pad = module.padding
        if isinstance(pad, str):
            pad = (0,) * len(module.kernel_size) if pad == "valid" else tuple(
                d * (k - 1) // 2 for d, k in zip(module.dilation, module.kernel_size, strict=True))
        one = (1,) if isinstance(module, nn.Conv1d) else ()  # a Conv1d is a conv2d of height 1
        spec = LayerSpec(kind="conv2d", stride=(*one, *module.stride), padding=(*(0,) * len(one), *pad),
                         dilation=(*one, *module.dilation), groups=module.groups, **common)
    problems = spec.check()
    if problems:
        raise RecorderError(f"{name}: inconsistent geometry: {problems[0]}")
    return spec
