"""The cheap checks every reader of a trace runs on each iteration it opens (numpy only).

``traces.load(path)`` (``check=True``, what ``hwsim replay`` and ``hwsim trace validate`` both use)
applies them as each iteration is opened and each mask is read, so a replay never computes with what
``validate`` refuses: counts within ``-1..numel`` (vectorized over layers × tensors) and within what
their operands' counts can produce (:func:`check_count_bounds`), the file's own
iteration number and kind, a mask on a mask iteration for every counted tensor that is not dense, a
mask's popcount equal to its count (or, for masks of the first ``mask_batch`` samples, within what
the rest of the batch can hold), zero pad bits. Each costs a few array operations per iteration or
per mask read, next to the replay of that iteration.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from . import bits
from .errors import TraceFormatError
from .layer import LayerSpec
from .manifest import MASK_TENSORS, TENSOR_INDEX, TENSORS

# Counts that bound each other: (result, operand). Every non-zero operand element reaches at most a
# fixed number of result elements (its fan, :func:`fan_table`), so a result can have at most
# ``fan · count(operand)`` non-zeros, whatever the values: a sum of products that are all zero is
# exactly zero. y's rules hold only without a bias (a bias makes y non-zero from nothing).
BOUNDS = (("y", "x"), ("y", "w"), ("dx", "dy"), ("dx", "w"))
_BOUND_COLS = np.array([[TENSOR_INDEX[r], TENSOR_INDEX[o]] for r, o in BOUNDS])  # (n_rules, 2)


def element_table(layers: list[LayerSpec]) -> np.ndarray:
    """Elements of every layer and tensor for one sample, negated for tensors without a batch
    dimension (weights, whose size is their total): int64 ``(n_layers, n_tensors)``; each fits
    2**36 (``traces.format.layer``). Which tensors scale with the batch is the layer kind's
    (a matmul's ``w`` is an activation)."""
    return np.array([[spec.numel(t, 1) * (1 if spec.batched(t) else -1) for t in TENSORS]
                     for spec in layers], dtype=np.int64).reshape(len(layers), len(TENSORS))


def numel(table: np.ndarray, batch: int) -> np.ndarray:
    """Elements of every layer and tensor for ``batch`` samples: int64 ``(n_layers, n_tensors)``
    (at most 2**36 · 2**20 = 2**56)."""
    return np.where(table < 0, -table, table * batch)


def check_counts(file: Path, layers: list[LayerSpec], table: np.ndarray, counts: np.ndarray,
                 batch: int) -> None:
    """Every count is -1 (absent) or within ``0..numel`` for ``batch`` samples."""
    limit = numel(table, batch)  # (n_layers, n_tensors)
    bad = (counts < -1) | (counts > limit)
    if bad.any():
        li, ti = (int(v) for v in np.argwhere(bad)[0])
        raise TraceFormatError(file, f"counts[{layers[li].name}, {TENSORS[ti]}]", int(counts[li, ti]),
                               f"-1 (absent) or 0..{int(limit[li, ti])}")


def fan_table(layers: list[LayerSpec]) -> tuple[np.ndarray, np.ndarray]:
    """Per layer and rule of :data:`BOUNDS`, how many result elements one non-zero operand element
    reaches (int64 ``(n_layers, n_rules)``, 0: the rule does not apply) and whether that fan is
    per sample of a weight (multiplied by the batch: a weight element meets every sample).

    conv2d (weight ``(Kout, C/g, R, S)``, output ``(Kout, P, Q)``; conv3d alike with ``T·R·S`` taps and
    ``D·P·Q`` positions): an input element feeds ``R·S`` positions of each of its group's ``Kout/g``
    channels; a weight element ``P·Q`` outputs per sample;
    an output gradient ``C/g·R·S`` input positions. linear (``(out, in)``): an input element feeds
    ``out`` outputs, a weight element one per GEMM row, an output gradient ``in`` inputs. matmul
    (``A (.., M, K)·B (.., K, N)``, both per sample): ``N``, ``M``, ``K`` and ``M``. A matmul with an
    added term (``baddbmm``: y holds the additive mask) has no rules for y; embeddings (a gather) and
    transposed convs (not derived yet) none at all. Synthetic traces (method ``synthetic``: ``y`` and
    ``dx`` written dense whatever the inputs' densities) are read without these rules
    (``traces.format.reader``)."""
    fan = np.zeros((len(layers), len(BOUNDS)), dtype=np.int64)
    per_batch = np.zeros((len(layers), len(BOUNDS)), dtype=bool)
    for li, spec in enumerate(layers):
        if spec.kind in ("conv2d", "conv3d"):  # weight (Kout, C/g, *kernel), output (Kout, *positions)
            k, cg = spec.w_shape[:2]
            taps, pq = math.prod(spec.w_shape[2:]), math.prod(spec.y_shape[1:])
            fan[li] = (taps * (k // spec.groups), pq, cg * taps, pq)
            per_batch[li] = (False, True, False, True)
        elif spec.kind == "linear":
            rows = spec.rows_per_sample
            fan[li] = (spec.w_shape[0], rows, spec.w_shape[1], rows)
            per_batch[li] = (False, True, False, True)
        elif spec.kind == "matmul":
            m, k, n = spec.x_shape[-2], spec.x_shape[-1], spec.w_shape[-1]
            fan[li] = (n, m, k, m)
            if spec.module_type == "baddbmm":
                fan[li, :2] = 0
        if spec.bias:
            fan[li, :2] = 0
    return fan, per_batch


def check_count_bounds(file: Path, layers: list[LayerSpec], fans: tuple[np.ndarray, np.ndarray],
                       counts: np.ndarray, batch: int) -> None:
    """No result count exceeds what its operands' counts can produce (:data:`BOUNDS`): counts
    rewritten to values each within its tensor's size but not consistent with each other (an output
    with non-zeros from an all-zero input, an input gradient from an all-zero output gradient) are
    refused. Vectorized over layers × rules; compared in float64 (exact below 2**53)."""
    fan, per_batch = fans
    result, operand = counts[:, _BOUND_COLS[:, 0]], counts[:, _BOUND_COLS[:, 1]]  # (n_layers, n_rules)
    bound = operand * fan.astype(np.float64) * np.where(per_batch, batch, 1)
    bad = (fan > 0) & (result >= 0) & (operand >= 0) & (result > bound * (1 + 2.0**-40))
    if bad.any():
        li, ri = (int(v) for v in np.argwhere(bad)[0])
        res, op = BOUNDS[ri]
        spec, n_op = layers[li], int(counts[li, TENSOR_INDEX[op]])
        reach = int(fan[li, ri]) * (batch if per_batch[li, ri] else 1)
        raise TraceFormatError(file, f"counts[{spec.name}, {res}]", int(counts[li, TENSOR_INDEX[res]]),
                               f"at most {n_op} × {reach} = {n_op * reach}: the {n_op} non-zeros of "
                               f"{op} reach at most {reach} elements of {res} each (a {spec.kind} "
                               f"of weight {spec.w_shape}); were the counts changed after recording, "
                               "or did the run diverge (NaN, inf)?")


def check_identity(file: Path, meta: dict[str, Any], index: int, has_masks: bool) -> None:
    """The iteration number and kind written inside a one-iteration file match its name (a file
    copied over another is refused)."""
    if meta.get("iteration") != index or isinstance(meta.get("iteration"), bool):
        raise TraceFormatError(file, "meta.iteration", repr(meta.get("iteration")),
                               f"{index}, the iteration the file name gives (was another iteration's "
                               "file copied over this one?)")
    if meta.get("has_masks", False) is not has_masks:
        raise TraceFormatError(file, "meta.has_masks", repr(meta.get("has_masks")),
                               f"{str(has_masks).lower()}, as the file name "
                               f"(.{'masks' if has_masks else 'counts'}.npz) says")


def check_batch_size(file: Path, manifest: dict[str, Any], index: int, batch: int) -> None:
    """Iteration 0's batch is the manifest's ``batch_size`` (the writers record it from there)."""
    size = manifest.get("batch_size")
    if index == 0 and size is not None and batch != size:
        raise TraceFormatError(file, "meta.batch", batch, f"{size}, the manifest's batch_size (the first "
                               "iteration's batch)")


def check_mask_members(file: Path, layers: list[LayerSpec], table: np.ndarray, counts: np.ndarray,
                       batch: int, names: set[str]) -> None:
    """On a mask iteration every counted tensor that has a mask format is stored, unless it is
    dense (its count equals its size: a writer may leave an all-ones mask out)."""
    limit = numel(table, batch)
    for ti, tensor in enumerate(TENSORS):
        if tensor not in MASK_TENSORS:
            continue
        counted = np.flatnonzero((counts[:, ti] >= 0) & (counts[:, ti] < limit[:, ti]))  # (k,)
        for li in counted:
            if f"L{li}.{tensor}" in names or (tensor == "w" and f"L{li}.w_delta" in names):
                continue
            raise TraceFormatError(file, f"L{li}.{tensor}", "field missing",
                                   f"the mask of every tensor counted on a mask iteration (layer "
                                   f"{layers[li].name!r} counts {int(counts[li, ti])} of "
                                   f"{int(limit[li, ti])} non-zeros)")


def check_mask(file: Path, name: str, packed: np.ndarray, count: int | None, numel_mask: int,
               numel_batch: int) -> None:
    """A mask's pad bits are zero and its popcount agrees with the recorded count: equal where the mask
    covers the whole tensor (``numel_mask == numel_batch``); otherwise at most the count, and the count
    at most the popcount plus the elements the mask leaves out."""
    if not bits.pad_bits_clear(packed, numel_mask):
        raise TraceFormatError(file, name, "non-zero pad bits", "zero bits past the last element")
    if count is None:
        return
    ones = bits.popcount(packed)
    if numel_mask == numel_batch and ones != count:
        raise TraceFormatError(file, name, f"{ones} set bits", f"{count}, the recorded count")
    if not ones <= count <= ones + (numel_batch - numel_mask):
        raise TraceFormatError(file, name, f"{ones} set bits in the first samples",
                               f"a count of the whole batch ({count}) between {ones} and "
                               f"{ones + numel_batch - numel_mask}")


def check_iteration(trace: Any, it: Any) -> None:
    """The per-iteration checks of an opened iteration ``it`` of ``trace`` (a ``traces.Trace``)."""
    table = trace.element_table
    check_counts(it.file, trace.layers, table, it.counts, it.batch)
    check_count_bounds(it.file, trace.layers, trace.fan_table, it.counts, it.batch)
    if it.row is None:
        check_identity(it.file, it.meta, it.index, it.file.name.endswith(".masks.npz"))
    check_batch_size(it.file, trace.manifest, it.index, it.batch)
    if it.has_masks:
        check_mask_members(it.file, trace.layers, table, it.counts, it.batch, it.members)
