"""SCALE-Sim 3.0.0's DRAM counts in CALC mode, from its demand streams (``scalesim_demand``).

**Reads** (``memory/read_buffer_estimate_bw.py``, the read buffer of CALC mode). The buffer of
``S`` words keeps sets of ``⌊S/100⌋`` distinct addresses; the active half is 50 sets, so a *window*
holds ``W = 50·⌊S/100⌋`` distinct addresses. An address is fetched from DRAM when it is not yet in
the current window; when the window has collected ``W`` of them it is prefetched and the next
address opens a new, empty window (nothing is carried over). DRAM reads are therefore the sum
over a greedy cut of the address stream into windows of ``W`` distinct addresses of their
distinct counts: ``W`` per full window plus the distinct addresses of the last one.
:func:`dram_reads` finds the cuts with array operations over segments of the stream (a Python
step per window boundary, never per address).

**Writes** (``memory/write_buffer.py``). Every ofmap word the array writes (no dedup) goes into
lines of ``bw`` words (``bw`` = array columns in CALC). After each word, if more than
``⌊S/2⌋`` words wait (as SCALE-Sim counts them: what a drain counts is what it frees) and no drain
is under way, the current line is closed (a partial line padded with empty slots) and
``⌈⌊S/2⌋/bw⌉`` lines are drained, taking one cycle per line; a
drain counts ``lines·bw`` words minus the empty slots of its *last* line only, so a padded line
in the middle of a drain counts as full (SCALE-Sim's DRAM writes can exceed the words written:
73,743 for 73,728 on one layer). At the end everything left drains the same way.
:func:`dram_writes` replays these drains (a Python step per drain).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import MappingError

SETS_ACTIVE = 50  # SCALE-Sim: active_buf_frac 0.5 of 100 sets
SEGMENT_WINDOWS = 4  # stream segments of about this many windows' worth of addresses


def window_words(buffer_words: int) -> int:
    """Distinct addresses one window holds (0: the buffer has under 100 words and never rolls)."""
    return SETS_ACTIVE * (buffer_words // 100)


def dram_reads(stream: Iterable[np.ndarray], buffer_words: int, address_space: int) -> int:
    """Words SCALE-Sim's CALC read buffer of ``buffer_words`` words fetches from DRAM for a
    demand sequence (batches of ``(n,)`` int64 addresses in ``[0, address_space)``)."""
    w = window_words(buffer_words)
    stamp = np.full(address_space, -1, np.int32)  # the window an address was last fetched in
    scratch = np.empty(address_space, np.int32)
    window, in_window, total = 0, 0, 0
    for batch in stream:
        seg = max(SEGMENT_WINDOWS * w, 256) if w else len(batch)
        for lo in range(0, len(batch), max(seg, 1)):
            part = batch[lo:lo + seg]
            while len(part):
                idx = np.arange(len(part), dtype=np.int32)
                scratch[part[::-1]] = idx[::-1]  # the first position of each address in ``part``
                new = (scratch[part] == idx) & (stamp[part] != window)
                count = np.cumsum(new)
                if not w or in_window + int(count[-1]) < w:
                    stamp[part[new]] = window
                    in_window += int(count[-1])
                    total += int(count[-1])
                    break
                end = int(np.searchsorted(count, w - in_window)) + 1  # the window fills at part[end-1]
                stamp[part[:end][new[:end]]] = window
                total += w - in_window
                window, in_window = window + 1, 0
                part = part[end:]
    return total


def dram_writes(cycles: np.ndarray | Iterable[np.ndarray], buffer_words: int, line_words: int) -> int:
    """Words SCALE-Sim's ofmap write buffer of ``buffer_words`` words drains to DRAM, for array
    writes at ``cycles`` (int64, non-decreasing, one entry per word written; an array or batches
    of arrays in order), with lines of ``line_words`` (the array's columns in CALC mode)."""
    batches = [cycles] if isinstance(cycles, np.ndarray) else cycles
    bw = line_words
    active = -(-buffer_words // 2)
    drain_words = buffer_words - active
    drain_lines = -(-drain_words // bw)
    pad_at: dict[int, int] = {}  # last line of a closed segment -> its empty slots
    lines, seg_start, drained_line, drained, drain_end, k, base = 0, 0, 0, 0, 0, 0, 0

    def close(end: int) -> None:
        nonlocal lines, seg_start
        words = end - seg_start
        if words:
            lines += -(-words // bw)
            pad = -words % bw  # empty slots of the segment's last line
            if pad:
                pad_at[lines - 1] = pad
        seg_start = end

    def drain() -> int:
        nonlocal drained_line, drained
        last = min(drained_line + drain_lines, lines)
        moved = (last - drained_line) * bw - pad_at.get(last - 1, 0)
        got = last - drained_line
        drained_line, drained = last, drained + moved
        return got

    for batch in batches:
        end = base + len(batch)
        while True:  # k: the next word (global index) that may trigger a drain
            j = max(k, base + int(np.searchsorted(batch, drain_end, "left")), drain_words + drained)
            # while a drain is under way, a full buffer would stall the array (not in CALC's model)
            busy_end = min(j, end)
            if busy_end > k and busy_end >= buffer_words + drained:
                raise MappingError(f"SCALE-Sim's ofmap buffer ({buffer_words} words) would stall while "
                                   "draining; its CALC model is stall-free: a larger ofmap buffer")
            if j >= end:
                k = max(k, end)
                break
            close(j + 1)
            got = drain()
            drain_end = int(batch[j - base]) + got - 1
            k = j + 1
        base = end
    close(base)
    while drained_line < lines:
        drain()
    return drained


__all__ = ["dram_reads", "dram_writes", "window_words"]
