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

EMBEDDING_PASSES = ("forward", "backward_weight")  # the update is the parameter's, as for any layer


def check_embedding(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                    y_shape: tuple[int, ...]) -> list[str]:
    """Problems with an embedding's geometry, as ``field: message`` strings."""
    if len(w_shape) != 2:
        return [f"w_shape: an embedding table is (V, D), got {list(w_shape)}"]
    if y_shape != (*x_shape, w_shape[1]):
        return [f"y_shape: {list(y_shape)}, but indices {list(x_shape)} of a table {list(w_shape)} "
                f"give {[*x_shape, w_shape[1]]}"]
    return []


def lookups(x_shape: tuple[int, ...], batch: int) -> int:
    """Rows gathered (and scattered back in backward) for ``batch`` samples: ``N·L``."""
    return batch * math.prod(x_shape)
