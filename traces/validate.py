"""Deep trace validation: every iteration file, every mask, every count (numpy only).

Opening a trace checks the manifest; :func:`validate` also opens each iteration and checks
what the writer promises: mask sizes, zero pad bits, counts within the tensor size and equal
to the mask popcount where the mask covers the whole batch, and resolvable weight deltas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import bits
from .errors import TraceFormatError
from .layer import WEIGHT_TENSORS
from .manifest import MASK_TENSORS, TENSORS
from .reader import Iteration, Trace

# A method can add invariants: fn(trace, iteration) -> problems as "field: message" strings.
Check = Callable[[Trace, Iteration], list[str]]


@dataclass(frozen=True)
class Summary:
    """What a successful validation saw."""

    layers: int
    iterations: int
    mask_iterations: int
    complete: bool


def validate(trace: Trace, checks: tuple[Check, ...] = (),
             progress: Callable[[int, int], None] | None = None) -> Summary:
    """Check every iteration of ``trace``; raise :class:`TraceFormatError` on the first problem."""
    if len(trace) == 0:
        raise TraceFormatError(trace.path, "iterations", "no iteration files",
                               "at least one iter-*.npz (was the recording killed before step 1?)")
    for n, it in enumerate(trace, start=1):
        _check_counts(trace, it)
        if it.has_masks:
            _check_masks(trace, it)
        for check in checks:
            problems = check(trace, it)
            if problems:
                field, _, msg = problems[0].partition(": ")
                raise TraceFormatError(it.file, field, msg, "the method's invariant to hold")
        if progress is not None:
            progress(n, len(trace))
    return Summary(len(trace.layers), len(trace), len(trace.mask_iterations), trace.complete)


def _check_counts(trace: Trace, it: Iteration) -> None:
    for li, spec in enumerate(trace.layers):
        for ti, tensor in enumerate(TENSORS):
            value = int(it.counts[li, ti])
            numel = spec.numel(tensor, it.batch)
            if value < -1 or value > numel:
                raise TraceFormatError(it.file, f"counts[{spec.name}, {tensor}]", value,
                                       f"-1 (absent) or 0..{numel}")


def _check_masks(trace: Trace, it: Iteration) -> None:
    for li, spec in enumerate(trace.layers):
        for tensor in MASK_TENSORS:
            packed = it.packed(li, tensor)  # checks dtype and size against the layer table
            if packed is None:
                continue
            numel = spec.numel(tensor, it.mask_batch)  # weight shapes ignore the batch
            if not bits.pad_bits_clear(packed, numel):
                raise TraceFormatError(it.file, f"L{li}.{tensor}", "non-zero pad bits",
                                       "zero bits past the last element")
            count = it.count(li, tensor)
            full = tensor in WEIGHT_TENSORS or it.mask_batch == it.batch
            if full and count is not None and bits.popcount(packed) != count:
                raise TraceFormatError(it.file, f"L{li}.{tensor}",
                                       f"{bits.popcount(packed)} set bits",
                                       f"{count}, the recorded count (layer {spec.name!r})")
        it.weights(li)  # checks dtype and shape where weights are stored
