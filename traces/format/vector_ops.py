"""The manifest's ``vector_ops`` table: the counted non-GEMM work of one training step (format 4).

One row per operator call of the model's forward pass that computes outside the recorded GEMMs
(written by ``traces.recording.vector_ops``, priced by ``hwsim.vector``)::

    {"name": "h.0.ln_1.layer_norm", "kind": "layer_norm", "op": "native_layer_norm",
     "module": "h.0.ln_1", "shape": [16, 64], "batched": true, "passes": ["forward", "backward_data"]}

``shape``: elements processed per sample (``batched``) or per step (not batched); a step of
``N`` samples processes ``N·prod(shape)`` (batched) or ``prod(shape)`` elements in each listed
pass. ``kind`` is one of :data:`KINDS`.
"""

from __future__ import annotations

import math
from typing import Any

KINDS = ("add", "batch_norm", "div", "dropout", "elementwise", "exp", "gelu", "layer_norm", "log",
         "log_softmax", "mul", "pool", "pow", "reduce", "relu", "rms_norm", "rsqrt", "select", "sigmoid",
         "silu", "softmax", "sqrt", "tanh")
PASSES = ("forward", "backward_data")
FIELDS = {"name": str, "kind": str, "op": str, "module": str, "shape": list, "batched": bool, "passes": list}
OPTIONAL = {"op", "batched"}  # absent: the operator is its kind's, the shape per sample (a synthetic trace)


def check_vector_ops(rows: object) -> tuple[str, str] | None:
    """The first problem of a ``vector_ops`` table as ``(where, what was found)``, or None."""
    if not isinstance(rows, list):
        return "", type(rows).__name__
    names: set[str] = set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not set(FIELDS) - OPTIONAL <= set(row) <= set(FIELDS):
            return f"[{i}]", repr(row)[:80]
        for key, typ in FIELDS.items():
            if key in row and not isinstance(row[key], typ):
                return f"[{i}].{key}", repr(row[key])[:40]
        if row["kind"] not in KINDS:
            return f"[{i}].kind", repr(row["kind"])
        if not row["shape"] or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**31
                                       for v in row["shape"]) or math.prod(row["shape"]) > 2**36:
            return f"[{i}].shape", repr(row["shape"])[:40]
        if not row["passes"] or any(p not in PASSES for p in row["passes"]) or row["passes"][0] != "forward":
            return f"[{i}].passes", repr(row["passes"])
        if row["name"] in names:
            return f"[{i}].name", repr(row["name"])
        names.add(row["name"])
    return None


def elements(row: dict[str, Any], batch: int) -> int:
    """Elements one row processes in one pass of a step of ``batch`` samples."""
    n = math.prod(row["shape"])
    return n * batch if row.get("batched", True) else n
