"""What the recorder can capture: the modules it hooks, and a guard for the work it cannot see.

The recorder hooks ``nn.Conv2d`` and ``nn.Linear`` modules (subclasses included). Everything else
that does GEMM work in training would be missing from the trace, so it is refused: compiled,
recurrent and attention modules and non-zero padding up front (:func:`find_targets`), and
functional calls outside any recorded module while they happen (:class:`Guard`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import RecorderError
from .layer import LayerSpec

_UNSUPPORTED = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                nn.Bilinear, nn.MultiheadAttention, nn.RNNBase, nn.Transformer)
_GEMM_FUNCS = {
    F.linear, F.bilinear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d,
    F.conv_transpose3d, F.scaled_dot_product_attention, torch.matmul, torch.mm, torch.bmm,
    torch.mv, torch.addmm, torch.addbmm, torch.baddbmm, torch.addmv, torch.einsum, torch.tensordot,
    torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__, torch.Tensor.mm,
    torch.Tensor.bmm, torch.Tensor.mv,
}


def find_targets(model: nn.Module) -> dict[nn.Module, str]:
    """The recordable Conv2d/Linear modules of ``model`` by qualified name; RecorderError naming
    every module that would make the trace wrong (compiled, recurrent, attention, non-zero padding)."""
    problems, targets = [], {}
    for qual, m in model.named_modules():
        where = qual or "(model)"
        if hasattr(m, "_orig_mod") or type(m).__name__ == "OptimizedModule":
            problems.append(f"{where} is torch.compile'd (compiled code bypasses the hooks; "
                            "record the uncompiled model)")
        elif isinstance(m, _UNSUPPORTED):
            problems.append(f"{where} ({type(m).__name__}) does GEMM work hwsim cannot record yet")
        elif isinstance(m, nn.Conv2d):
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
        raise RecorderError(f"{type(model).__name__} has no nn.Conv2d or nn.Linear layers to record")
    return targets


class Guard(TorchFunctionMode):
    """Raises on GEMM-like calls that happen outside every recorded module during training."""

    def __init__(self, unseen: Callable[[tuple, dict], bool]) -> None:
        super().__init__()
        self.unseen = unseen  # whether a GEMM call with these arguments escapes every recorded module

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _GEMM_FUNCS and self.unseen(args, kwargs):
            name = getattr(func, "__name__", str(func))
            raise RecorderError(
                f"a {name}() call outside any recorded Conv2d/Linear module does training work the "
                "trace would not contain; hwsim records nn.Conv2d and nn.Linear modules (subclasses "
                "included), not functional calls: wrap the computation in such a module")
        return func(*args, **kwargs)


def layer_spec(module: nn.Module, qual: str, call: int, x: torch.Tensor, y: torch.Tensor) -> LayerSpec:
    """The LayerSpec of one call of a recorded module, from the module and its input and output."""
    base = qual or "(model)"
    name = base if call == 0 else f"{base}#{call}"
    common = dict(name=name, module=qual, call=call, module_type=type(module).__name__,
                  x_shape=tuple(x.shape[1:]), w_shape=tuple(module.weight.shape),
                  y_shape=tuple(y.shape[1:]), bias=module.bias is not None)
    if isinstance(module, nn.Linear):
        return LayerSpec(kind="linear", **common)
    pad = module.padding
    if isinstance(pad, str):
        pad = (0, 0) if pad == "valid" else tuple(
            d * (k - 1) // 2 for d, k in zip(module.dilation, module.kernel_size, strict=True))
    spec = LayerSpec(kind="conv2d", stride=tuple(module.stride), padding=tuple(pad),
                     dilation=tuple(module.dilation), groups=module.groups, **common)
    problems = spec.check()
    if problems:
        raise RecorderError(f"{name}: inconsistent geometry: {problems[0]}")
    return spec
