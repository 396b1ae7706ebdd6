"""The ``embedding`` layer kind: a table lookup, not a GEMM (format 4).

An ``nn.Embedding`` call reads, for each index of a sample, one row of the weight table:

==============  =====================  ============================================================
tensor          shape                  meaning
==============  =====================  ============================================================
``x``           ``(N, L)``             the positions that do work (every index but ``padding_idx``)
``w``           ``(V, D)``             the table's non-zeros
``y``/``dy``    ``(N, L, D)``          the rows gathered, and their gradient
``dw_needed``   ``(V, D)``             the rows the gradient touches: every column of each row seen
``dw``          ``(V, D)``             counted only (a dense gradient is zero outside those rows)
==============  =====================  ============================================================

Forward is a gather (``N·L`` rows of ``D`` values read and written, no MACs); there is no
backward-data pass (indices have no gradient); backward-weight is a scatter-add of the ``N·L``
rows of ``dY`` into the touched rows of ``dW`` (``N·L·D`` additions). The update then touches the
whole table with a dense optimizer state (PyTorch's dense gradient is zero elsewhere, and
momentum/Adam state still moves), so it is costed like any layer's update.
"""

from __future__ import annotations

import math
from typing import Any

from .base import GemmDims, Kind, no_window

EMBEDDING_PASSES = ("forward", "backward_weight")  # the update is the parameter's, as for any layer


class Embedding(Kind):
    name = "embedding"
    gemm_passes = ()  # a gather and a scatter-add: no GEMM

    def rows_per_sample(self, spec: Any) -> int:
        return math.prod(spec.x_shape)  # lookups per sample

    def reduction(self, spec: Any) -> int:
        return spec.w_shape[1]

    def out_per_group(self, spec: Any) -> int:
        return spec.w_shape[1]

    def gemm(self, spec: Any, pass_: str, batch: int) -> GemmDims:
        raise KeyError(f"{spec.name}: an embedding layer runs no GEMM (pass {pass_!r})")

    def macs_per_sample(self, spec: Any) -> int:
        return 0

    def check(self, spec: Any) -> list[str]:
        if spec.groups != 1:
            return [f"groups: an embedding layer has groups 1, got {spec.groups}"]
        if window := no_window(spec, "embedding"):
            return window
        if spec.attention is not None:
            return ["attention: only matmul layers (activation × activation) take part in attention"]
        x, w, y = spec.x_shape, spec.w_shape, spec.y_shape
        if len(w) != 2:
            return [f"w_shape: an embedding table is (V, D), got {list(w)}"]
        if y != (*x, w[1]):
            return [f"y_shape: {list(y)}, but indices {list(x)} of a table {list(w)} give {[*x, w[1]]}"]
        return []


def lookups(x_shape: tuple[int, ...], batch: int) -> int:
    """Rows gathered (and scattered back in backward) for ``batch`` samples: ``N·L``."""
    return batch * math.prod(x_shape)
