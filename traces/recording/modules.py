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
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


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


def output_view(module: nn.Module, y: torch.Tensor) -> tuple[int, ...] | None:
    """The per-sample shape ``module``'s output is recorded in (None: its own)."""
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
    rows = torch.zeros(module.num_embeddings, dtype=torch.bool, device=x.device)
    rows[x.reshape(-1)] = True
    if module.padding_idx is not None:
        rows[module.padding_idx] = False
    return rows[:, None].expand(module.num_embeddings, module.embedding_dim)
