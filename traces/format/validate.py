"""Deep trace validation: every iteration file, every mask, every count (numpy only).

Opening a trace checks the manifest and that the iteration files are the ones it lists (format 5);
:func:`validate` also opens each iteration and checks what the writer promises: the file's digest
against the manifest's (:mod:`traces.format.digest`: a file changed after recording), the cheap
checks of :mod:`traces.format.checks` (counts within the tensor size, each file's own iteration
number, a mask for every counted tensor of a mask iteration), then every mask of every mask
iteration: sizes, zero pad bits, popcounts against the counts, resolvable weight deltas and stored
weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .checks import check_iteration, check_mask
from .errors import TraceFormatError
from .manifest import MASK_TENSORS
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
        check_iteration(trace, it)  # also run on opening when the trace was loaded with check
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


def check_unread(trace: Trace, read: Iterable[int]) -> None:
    """Check every iteration a replay will not open itself (``read`` are those it opens): each file
    whole (CRC-32 of every member, zip headers against the central directory, its digest against the
    manifest's) and the cheap per-iteration checks of :mod:`traces.format.checks` (counts within their
    tensors' sizes, the file's own iteration number, a mask for every counted tensor). No mask is
    decoded: the cost is one read of the files. A damaged file is refused in the line ``validate``
    gives, though the replay would not have read it (a replay of the mask iterations never opens a
    counts-only file). Done once per :class:`Trace` object."""
    if not trace.check or trace.unread_checked:
        return
    skip = set(read)
    for index in trace.iterations:
        if index not in skip:
            Iteration(trace, index, trace.file_of(index), trace.row_of(index)).close()
    trace.unread_checked = True


def _check_masks(trace: Trace, it: Iteration) -> None:
    for li, spec in enumerate(trace.layers):
        for tensor in MASK_TENSORS:
            packed = it.packed(li, tensor)  # checks dtype and size against the layer table
            if packed is None:
                continue
            check_mask(it.file, f"L{li}.{tensor}", packed, it.count(li, tensor),
                              spec.numel(tensor, it.mask_batch), spec.numel(tensor, it.batch))
        it.weights(li)  # checks dtype and shape where weights are stored
