"""What a sweep worker computes once and reuses across points.

Per worker process, least recently used first out, within ``budget_bytes``:

1. **traces**: each trace is opened once, and each iteration's masks, counts, stats and weights are
   read once (unpacked bool masks, 1 byte per element), for every point that replays it;
2. **edge-NPU operands**: the GEMM operand masks of each (trace, iteration, layer, pass) — the
   im2col views — and the effectual-MAC counts, which depend on the trace only;
3. **edge-NPU tile costs**: the per-tile mask reductions of each (operands, mapping, sparse
   features, buffer residency) — the mapping fixes the tile shape — so points that differ only in
   energies, bandwidths, clock or capacities that leave the mapping alone reuse them and re-run
   only traffic, timing and energy;
4. **edge-NPU schedules**: the timing back end's result for each (back end, per-tile compute,
   DMA-in and write-back cycles), keyed by a hash of those arrays, so points whose cycles per tile
   do not change (energies only; capacities that keep the mapping) skip the timing loop too;
5. **timed replays with symbolic prices** (``analysis.sweep.reprice``): per (trace, timing key,
   options), the report of one replay whose energies are a tape over the prices, so every later
   point that differs only in prices is priced from it without replaying.

The memos wrap four functions that ``hwsim.npu.replay`` calls (``operands``, ``effectual``,
``tile_costs``, ``timing_backend``) while :func:`installed` is active. The first three are keyed by
tokens of the cached mask arrays (the cache keeps those arrays alive and never reuses a token);
arrays that are not the cache's own (e.g. N:M-compressed operands, built per point) are computed
as usual and never stored. Results are the same bit for bit with or without the cache
(tests/analysis/test_sweep_run.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from traces import Trace
from traces.format.reader import Iteration

DEFAULT_BUDGET_BYTES = 2 * 2**30  # per worker process


def nbytes(obj: Any) -> int:
    """Bytes held by the arrays inside ``obj`` (arrays, lists/tuples/dicts of them, dataclasses)."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return sum(nbytes(getattr(obj, f.name)) for f in fields(obj))
    return 0


class Memo:
    """A byte-bounded LRU map; ``stats`` counts hits and misses per kind."""

    def __init__(self, budget_bytes: int, on_evict: Any = None) -> None:
        self.budget_bytes = budget_bytes
        self.on_evict = on_evict
        self.used_bytes = 0
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        self.stats: dict[str, int] = {}

    def get(self, key: Any) -> Any:
        with self._lock:
            hit = self._items.get(key)
            kind = key[0]
            self.stats[f"{kind}_hits" if hit else f"{kind}_misses"] = \
                self.stats.get(f"{kind}_hits" if hit else f"{kind}_misses", 0) + 1
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: Any, value: Any, size: int | None = None) -> None:
        size = nbytes(value) if size is None else size
        with self._lock:
            if key in self._items or size > self.budget_bytes:
                return
            self._items[key] = (value, size)
            self.used_bytes += size
            while self.used_bytes > self.budget_bytes:
                _, (old, old_size) = self._items.popitem(last=False)
                self.used_bytes -= old_size
                if self.on_evict is not None:
                    self.on_evict(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.used_bytes = 0


class CachedIteration:
    """An :class:`traces.format.reader.Iteration` whose per-layer reads are kept (the same array objects
    every time); ``close`` does nothing (the cache owns the file)."""

    def __init__(self, it: Iteration, owner: WorkerCache) -> None:
        self._it, self._owner = it, owner
        self.index, self.batch = it.index, it.batch
        self.mask_batch, self.has_masks = it.mask_batch, it.has_masks
        self._memo: dict[tuple, Any] = {}

    def _get(self, what: str, layer: Any, *args: Any) -> Any:
        key = (what, layer, *args)
        if key not in self._memo:
            value = getattr(self._it, what)(layer, *args)
            self._memo[key] = value
            self._owner.own(value)
        return self._memo[key]

    def mask(self, layer: Any, tensor: str) -> np.ndarray | None:
        return self._get("mask", layer, tensor)

    def count(self, layer: Any, tensor: str) -> int | None:
        return self._it.count(layer, tensor)

    def weights(self, layer: Any) -> Any:
        return self._get("weights", layer)

    def layer_stats(self, layer: Any) -> dict[str, Any]:
        return dict(self._get("layer_stats", layer))

    def close(self) -> None:
        """Kept open for the next point."""

    def __enter__(self) -> CachedIteration:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Any:  # anything else a family reads (e.g. array, meta)
        return getattr(self._it, name)


class CachedTrace(Trace):
    """A :class:`traces.Trace` that hands out :class:`CachedIteration` objects, each opened once."""

    def __init__(self, path: str | Path, owner: WorkerCache) -> None:
        super().__init__(path)
        self._owner = owner
        self._open: dict[int, CachedIteration] = {}
        self._lock = threading.Lock()

    def iteration(self, index: int) -> CachedIteration:  # type: ignore[override]
        with self._lock:
            if index not in self._open:
                self._open[index] = CachedIteration(super().iteration(index), self._owner)
            return self._open[index]

    def close_all(self) -> None:
        """Close the files and let go of everything read."""
        for it in self._open.values():
            self._owner.release(list(it._memo.values()))
            it._it.close()
        self._open.clear()


MAX_TRACES = 2  # traces a worker keeps open with their masks read (tasks come grouped per trace)


class WorkerCache:
    """The cache of one worker process (see the module docstring)."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.memo = Memo(budget_bytes, on_evict=self.release)
        self._traces: OrderedDict[str, CachedTrace] = OrderedDict()
        self._owned: dict[int, tuple[np.ndarray, int]] = {}  # id -> (array kept alive, its token)
        self._next_token = 0
        self._lock = threading.RLock()

    def trace(self, path: str | Path, content_hash: str) -> CachedTrace:
        """The trace at ``path`` with this content hash, opened once per worker (the MAX_TRACES most
        recent). Keyed by both: a copy elsewhere is opened from there (reports name their trace's path),
        and a path rewritten with new content is opened again."""
        key = f"{content_hash}:{Path(path).resolve()}"
        with self._lock:
            if key not in self._traces:
                self._traces[key] = CachedTrace(path, self)
                while len(self._traces) > MAX_TRACES:
                    self._traces.popitem(last=False)[1].close_all()
            self._traces.move_to_end(key)
            return self._traces[key]

    def own(self, value: Any) -> None:
        """Keep ``value``'s arrays alive under fresh tokens (memo keys use tokens, never bare ids,
        so an id reused after a release cannot hit an old entry)."""
        with self._lock:
            for arr in _arrays(value):
                if not self.owns(arr):
                    self._owned[id(arr)] = (arr, self._next_token)
                    self._next_token += 1

    def release(self, value: Any) -> None:
        """Stop keeping ``value``'s arrays (an evicted entry or a closed trace)."""
        with self._lock:
            for arr in _arrays(value):
                if self.owns(arr) and arr is not None:
                    del self._owned[id(arr)]

    def owns(self, arr: Any) -> bool:
        if arr is None:
            return True
        held = self._owned.get(id(arr))
        return held is not None and held[0] is arr

    def token(self, arr: Any) -> int | None:
        return None if arr is None else self._owned[id(arr)][1]

    def stats(self) -> dict[str, int]:
        return {**self.memo.stats, "cached_bytes": self.memo.used_bytes}

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` (``replays``, ``repriced_points``, ``reprice_fallbacks``)."""
        with self.memo._lock:
            self.memo.stats[name] = self.memo.stats.get(name, 0) + n

    def clear(self) -> None:
        """Forget everything (close the traces, drop every memo entry and count)."""
        with self._lock:
            for t in self._traces.values():
                t.close_all()
            self._traces.clear()
            self.memo.clear()
            self.memo.stats.clear()
            self._owned.clear()

    # -- the memos around hwsim.npu.replay -----------------------------------------------------------
    def operands(self, original: Any) -> Any:
        def memo_operands(spec: Any, pass_: str, masks: dict, cache: dict | None = None,
                          order: str = "C") -> Any:
            with self._lock:
                if not all(self.owns(masks.get(t)) for t in masks):
                    return original(spec, pass_, masks, cache, order)
                key = ("operands", spec.name, pass_, tuple(self.token(masks.get(t)) for t in sorted(masks)),
                       order)
            hit = self.memo.get(key)
            if hit is None:
                hit = original(spec, pass_, masks, cache, order)
                self.own([(g.a, g.b, g.need) for g in hit])
                self.memo.put(key, hit)
            return hit
        return memo_operands

    def effectual(self, original: Any) -> Any:
        def memo_effectual(spec: Any, pass_: str, masks: dict) -> Any:
            with self._lock:
                if not all(self.owns(masks.get(t)) for t in masks):
                    return original(spec, pass_, masks)
                key = ("effectual", spec.name, pass_, tuple(self.token(masks.get(t)) for t in sorted(masks)))
            hit = self.memo.get(key)
            if hit is None:
                hit = original(spec, pass_, masks)
                self.memo.put(key, hit, 64)
            return hit
        return memo_effectual

    def tile_costs(self, original: Any) -> Any:
        def memo_tile_costs(a: Any, b: Any, need: Any, mp: Any, features: Any, resident: Any = None) -> Any:
            with self._lock:
                if not (self.owns(a) and self.owns(b) and self.owns(need)):
                    return original(a, b, need, mp, features, resident)
                res = tuple(sorted((resident or {}).items()))
                key = ("tiles", self.token(a), self.token(b), self.token(need), mp, features, res)
            hit = self.memo.get(key)
            if hit is None:
                hit = original(a, b, need, mp, features, resident)
                self.memo.put(key, hit)
            return hit
        return memo_tile_costs


    def tile_chunks(self, original: Any) -> Any:
        """The chunked form of the tile costs (``tiles.tile_chunks``): chunks are kept as they are
        yielded, while they stay under a quarter of the budget (a pass too large for that is
        streamed as before, so the replay's memory bound holds)."""
        def memo_tile_chunks(a: Any, b: Any, need: Any, mp: Any, features: Any, resident: Any = None,
                             max_tiles: Any = None, memo: dict | None = None) -> Iterator[Any]:
            with self._lock:
                owned = self.owns(a) and self.owns(b) and self.owns(need)
                if owned:
                    res = tuple(sorted((resident or {}).items()))
                    key = ("tiles", self.token(a), self.token(b), self.token(need), mp, features, res,
                           max_tiles)
            if not owned:
                yield from original(a, b, need, mp, features, resident, max_tiles, memo)
                return
            hit = self.memo.get(key)
            if hit is not None:
                yield from hit
                return
            kept: list | None = []
            size = 0
            for t in original(a, b, need, mp, features, resident, max_tiles, memo):
                if kept is not None:
                    size += nbytes(t)
                    if size <= self.memo.budget_bytes // 4:
                        kept.append(t)
                    else:
                        kept = None
                yield t
            if kept is not None:
                self.memo.put(key, kept, size)
        return memo_tile_chunks

    def timing_backend(self, original: Any) -> Any:
        def memo_backend(name: str) -> Any:
            engine = original(name)

            def memo_engine(compute: Any, dma: Any, wb: Any, **kw: Any) -> Any:
                key = ("schedule", name, _digest(compute), _digest(dma), _digest(wb),
                       tuple(sorted(kw.items())))
                hit = self.memo.get(key)
                if hit is None:
                    hit = engine(compute, dma, wb, **kw)
                    self.memo.put(key, hit)
                return hit
            return memo_engine
        return memo_backend


def _digest(arr: Any) -> tuple[str, tuple[int, ...], str]:
    """A content key of an array: dtype, shape and a 128-bit BLAKE2 hash of its bytes."""
    a = np.ascontiguousarray(arr)
    return a.dtype.str, a.shape, hashlib.blake2b(memoryview(a).cast("B"), digest_size=16).hexdigest()


def _arrays(value: Any) -> Iterator[np.ndarray]:
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _arrays(v)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _arrays(getattr(value, f.name))


# Names looked up in hwsim.npu.replay; one the replay does not have is left alone (no memo, same
# results): ``tile_costs`` and ``timing_backend`` (whole-pass replay) or ``tile_chunks`` (chunked).
_PATCHED = ("operands", "effectual", "tile_costs", "tile_chunks", "timing_backend")
_install_lock = threading.Lock()
_installed: dict[str, Any] = {}
_depth = 0
_WORKER: WorkerCache | None = None


def worker_cache(budget_bytes: int = DEFAULT_BUDGET_BYTES) -> WorkerCache:
    """This process's cache (made on first use)."""
    global _WORKER
    with _install_lock:
        if _WORKER is None or _WORKER.memo.budget_bytes != budget_bytes:
            _WORKER = WorkerCache(budget_bytes)
        return _WORKER


@contextlib.contextmanager
def installed(cache: WorkerCache) -> Iterator[WorkerCache]:
    """Route ``hwsim.npu.replay``'s operand, effectual-count and tile-cost calls through ``cache``
    while the block runs (re-entrant and thread-safe; the originals come back at the end)."""
    global _depth
    from hwsim.npu import replay

    with _install_lock:
        if _depth == 0:
            for name in _PATCHED:
                original = getattr(replay, name, None)
                if original is None:  # the replay changed shape: no memo, same results
                    continue
                _installed[name] = original
                setattr(replay, name, getattr(cache, name)(original))
        _depth += 1
    try:
        yield cache
    finally:
        with _install_lock:
            _depth -= 1
            if _depth == 0:
                for name, original in _installed.items():
                    setattr(replay, name, original)
                _installed.clear()
