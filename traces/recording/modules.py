"""How each hooked module type is seen as a trace layer (imports torch).

The recorder hooks ``nn.Conv2d``, ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv3d``,
``nn.ConvTranspose1d/2d/3d`` and ``nn.Embedding`` modules. Conv2d, Conv3d, transposed conv and
Linear tensors are recorded as they are (``conv2d``, ``conv3d``, ``conv_transpose``, ``linear``).
A ``Conv1d`` is recorded as a ``conv2d`` layer of height 1: input ``(N, C, L)`` as
``(N, C, 1, L)``, weight ``(K, C/g, k)`` as ``(K, C/g, 1, k)``, output ``(N, K, P)`` as
``(N, K, 1, P)`` (the same elements in the same C order, so every mask is the module's own,
reshaped). An ``Embedding`` is an ``embedding`` layer: its input is the indices
``(N, L)`` (recorded as a mask of the positions that are not ``padding_idx``), its output
``(N, L, D)``, and its weight gradient touches only the rows of the indices seen, which the
``dw_needed`` mask holds (every column of a touched row; ``padding_idx`` rows get no gradient).

An ``nn.Embedding`` subclass with its own ``forward`` (OPT's learned positions take the attention
mask and compute the indices themselves; a scaled word embedding multiplies the rows) is not
hooked at its call, whose arguments need not be indices: :func:`inner_lookups` runs its forward
and records the lookup it makes of its own weight (``F.embedding(indices, module.weight)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


def module_input_dims(module: nn.Module) -> int:
    """The fewest dimensions a batched input of ``module`` has."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                           nn.ConvTranspose3d)):
        return 2 + len(module.kernel_size)
    return 1 if isinstance(module, nn.Embedding) else 2


def _conv1d_weight(w: torch.Tensor) -> torch.Tensor:
    return w.unsqueeze(2)  # (K, C/g, k) -> (K, C/g, 1, k)


def module_views(module: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """The ``_Call`` fields that view ``module``'s input and weight as the trace layer's."""
    if isinstance(module, nn.Conv1d):
        return {"x_shape": (x.shape[1], 1, x.shape[2]), "layout": _conv1d_weight}
    if isinstance(module, nn.Embedding) and x.dim() == 1:
        return {"x_shape": (1,)}  # one index per sample: a sequence of one
    return {}


def flattened_rows(module: nn.Module, x: torch.Tensor, step_batch: int | None) -> int | None:
    """Rows per sample when a ``Linear``'s 2-D input is the step's ``N`` samples' tokens flattened
    batch-major, ``(N·L, in)`` (OPT's and others' ``h.reshape(-1, d)`` before the MLP); None when
    the input leads with its samples. The layer is then recorded per sample as ``(L, in)``."""
    if not isinstance(module, nn.Linear) or x.dim() != 2 or not step_batch:
        return None
    rows, rest = divmod(int(x.shape[0]), step_batch)
    return rows if rows > 1 and rest == 0 else None


def output_view(module: nn.Module, y: torch.Tensor, rows: int | None = None) -> tuple[int, ...] | None:
    """The per-sample shape ``module``'s output is recorded in (None: its own); ``rows``: the
    input's :func:`flattened_rows`."""
    if rows is not None and isinstance(y, torch.Tensor) and y.dim() == 2:
        return (rows, y.shape[1])
    if isinstance(module, nn.Conv1d) and isinstance(y, torch.Tensor):
        return (y.shape[1], 1, y.shape[2])
    if isinstance(module, nn.Embedding) and isinstance(y, torch.Tensor) and y.dim() == 2:
        return (1, y.shape[1])
    return None


def recorded_input(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The tensor whose non-zeros are the layer's ``x``: an embedding's positions that do work
    (every index but ``padding_idx``), any other module's input itself."""
    if isinstance(module, nn.Embedding):
        if module.padding_idx is None:
            return torch.ones_like(x, dtype=torch.bool)
        return x != module.padding_idx
    return x


def touched_rows(module: nn.Embedding, x: torch.Tensor) -> torch.Tensor:
    """``(V, D)`` bool: the weight entries an embedding call's gradient touches, every column of
    each row whose index occurs in ``x`` (``padding_idx``'s row gets no gradient)."""
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise ValueError(f"its input holds {x.dtype} values, not indices")
    rows = torch.zeros(module.num_embeddings, dtype=torch.bool, device=x.device)
    rows[x.reshape(-1)] = True
    if module.padding_idx is not None:
        rows[module.padding_idx] = False
    return rows[:, None].expand(module.num_embeddings, module.embedding_dim)


def own_forward_embedding(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.Embedding`` whose class overrides ``forward`` (its call's
    arguments are then not necessarily the indices)."""
    return isinstance(module, nn.Embedding) and type(module).forward is not nn.Embedding.forward


class _OwnLookup(TorchFunctionMode):
    """Hands ``F.embedding(indices, module.weight, ...)`` to ``lookup(indices, run)``; every other
    call runs as it is."""

    def __init__(self, module: nn.Embedding, lookup: Callable[..., Any]) -> None:
        super().__init__()
        self.module, self.lookup = module, lookup

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func is F.embedding and len(args) > 1 and args[1] is self.module.weight:
            return self.lookup(args[0], lambda idx: func(idx, *args[1:], **kwargs))
        return func(*args, **kwargs)


def inner_lookups(module: nn.Embedding, own_forward: Callable[..., Any],
                  before: Callable[[nn.Module, tuple], Any],
                  after: Callable[[nn.Module, tuple, Any], Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``own_forward(*args, **kwargs)`` with ``before(module, (indices,))`` and
    ``after(module, (indices,), rows)`` around each lookup it makes of ``module.weight`` — the
    module hooks' calls, on the indices instead of the module's own arguments."""

    def lookup(indices: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        changed = before(module, (indices,))
        if changed is not None:
            indices = changed[0]
        rows = run(indices)
        after(module, (indices,), rows)
        return rows

    with _OwnLookup(module, lookup):
        return own_forward(*args, **kwargs)
