"""Crash-safe trace writing: every file goes to a temporary name and is renamed into place.

A process killed at any moment leaves a directory whose ``manifest.json`` and every
``iter-*.npz`` are complete; half-written files only exist under hidden ``.tmp`` names that the
reader ignores. Iteration files are NumPy ``.npz`` archives (a zip of ``.npy`` arrays) read with
``allow_pickle=False``: no pickles anywhere. Each file's digest is taken as it is written and every
manifest written lists the digests so far (``files``, :mod:`traces.format.digest`): the manifest
written at close seals every file; a run killed before it leaves the later files unsealed.

Counts-only iterations may be written in batches (``counts_batch``): consecutive counts-only
iterations are kept in memory and written as one file ``iter-FIRST-LAST.counts.npz`` when the
batch is full, before any other iteration file and before the manifest. Files are written in
iteration order, so a killed run leaves every completed batch and no gap; the iterations of the
unfinished batch are lost.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import bits
from .digest import FIRST_SEALED_VERSION, file_digest, write_npz
from .manifest import MANIFEST_NAME, TENSORS

ITER_GLOB = "iter-*.npz"


def iteration_filename(index: int, has_masks: bool) -> str:
    """File name of iteration ``index``: ``iter-00000012.masks.npz`` or ``...counts.npz``."""
    return f"iter-{index:08d}.{'masks' if has_masks else 'counts'}.npz"


def batch_filename(first: int, last: int) -> str:
    """File name of the counts-only iterations ``first..last`` (inclusive):
    ``iter-00000001-00000009.counts.npz``."""
    return f"iter-{first:08d}-{last:08d}.counts.npz"


def member(layer: int, name: str) -> str:
    """Archive member name of a per-layer array, e.g. ``L3.x`` or ``L3.weight``."""
    return f"L{layer}.{name}"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a hidden temporary file, fsync it, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove_stale_temporaries(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk reports no file name: name the file being written
        if exc.filename is None:
            exc.filename = str(path)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _remove_stale_temporaries(path: Path) -> None:
    """Remove ``.NAME.tmp-PID`` siblings left by processes that no longer run (killed mid-write)."""
    for f in path.parent.glob(f".{path.name}.tmp-*"):
        pid = f.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            continue


def encode_json(obj: Any) -> np.ndarray:
    """A JSON document as a ``uint8`` array (how metadata rides in an ``.npz`` without pickles)."""
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode(), dtype=np.uint8)


class TraceWriter:
    """Writes a trace directory: the manifest and one ``.npz`` file per iteration (or per batch
    of ``counts_batch`` consecutive counts-only iterations).

    Weight masks are stored as a full packed snapshot, or as the element indices that flipped
    since the layer's latest snapshot (``L{l}.w_delta``, with the snapshot's iteration in the
    file's ``meta.w_base``), so any iteration reads with at most one other file. A snapshot is
    taken every ``weight_snapshot_every`` mask iterations, or sooner when a delta would not be
    smaller than the snapshot.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False,
                 weight_snapshot_every: int = 10, counts_batch: int = 1) -> None:
        self.path = Path(path)
        if weight_snapshot_every < 1:
            raise ValueError(f"weight_snapshot_every must be >= 1, got {weight_snapshot_every}")
        if counts_batch < 1:
            raise ValueError(f"counts_batch must be >= 1, got {counts_batch}")
        self.weight_snapshot_every = weight_snapshot_every
        self.counts_batch = counts_batch  # counts-only iterations per file (1: one file each)
        self._prepare_dir(overwrite)
        self._w_snapshot: dict[int, tuple[int, np.ndarray]] = {}  # layer -> (iteration, packed)
        self._w_since: dict[int, int] = {}
        self._pending: list[tuple[dict[str, Any], np.ndarray]] = []  # counts-only, not yet written
        self.iterations_written = 0  # iterations accepted (a pending batch's included)
        self.digests: dict[str, str] = {}  # file name -> digest of each iteration file written

    def _prepare_dir(self, overwrite: bool) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise FileExistsError(f"{p}: exists and is not a directory; choose another --out path")
        if p.is_dir() and any(p.iterdir()):
            if not (p / MANIFEST_NAME).exists():
                raise FileExistsError(f"{p}: directory is not empty and is not a trace; "
                                      "refusing to write into it")
            if not overwrite:
                raise FileExistsError(f"{p}: a trace already exists here; pass overwrite=True "
                                      "(CLI: --overwrite) to replace it")
            shutil.rmtree(p)
        p.mkdir(parents=True, exist_ok=True)

    def discard(self) -> None:
        """Remove the trace directory when it holds no iteration (only a manifest, temporaries or
        nothing): what a recording refused before its first step leaves."""
        p = self.path
        if not p.is_dir():
            return
        if all(f.name == MANIFEST_NAME or f.name.startswith(".") for f in p.iterdir()):
            shutil.rmtree(p)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Atomically (re)write ``manifest.json``, after writing any pending counts batch, with the
        digests of every iteration file written so far in its ``files`` (sorted by name)."""
        self.flush()
        if manifest.get("format_version", FIRST_SEALED_VERSION) >= FIRST_SEALED_VERSION:
            manifest = {**manifest, "files": dict(sorted(self.digests.items()))}
        text = json.dumps(manifest, indent=1).encode()
        atomic_write(self.path / MANIFEST_NAME, lambda f: f.write(text))

    def write_iteration(
        self,
        index: int,
        meta: dict[str, Any],
        counts: np.ndarray,
        masks: dict[tuple[int, str], np.ndarray] | None = None,
        weights: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
        arrays: dict[tuple[int, str], np.ndarray] | None = None,
    ) -> Path | None:
        """Write iteration ``index`` (its path), or keep it for a counts batch (``None``).

        Args:
            meta: JSON-ready facts about the iteration (``batch``, ``mask_batch``, ``epoch``...).
            counts: ``(n_layers, len(TENSORS))`` int64 non-zero counts, -1 where absent.
            masks: ``{(layer, tensor): packed uint8}`` for a mask iteration, else ``None``.
            weights: ``{layer: (weight, delta_weight)}`` float16 arrays of the weight shape.
            arrays: ``{(layer, name): array}`` a training method's own arrays (numbers or bools,
                never objects), stored as ``L{layer}.m_{name}``.
        """
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[1] != len(TENSORS):
            raise ValueError(f"counts must be (n_layers, {len(TENSORS)}), got {counts.shape}")
        has_masks = masks is not None
        meta = {**meta, "iteration": int(index), "has_masks": has_masks}
        if self._pending and (index != self._pending[-1][0]["iteration"] + 1
                              or counts.shape != self._pending[-1][1].shape):
            self.flush()  # a batch holds consecutive iterations of one layer table
        if self.counts_batch > 1 and not has_masks and not weights and not arrays:
            self._pending.append((meta, counts.copy()))
            self.iterations_written += 1
            if len(self._pending) >= self.counts_batch:
                self.flush()
            return None
        self.flush()  # files appear in iteration order: a killed run leaves no gap
        out: dict[str, np.ndarray] = {"counts": counts}
        if has_masks:
            w_base: dict[str, int] = {}
            for (layer, tensor), packed in sorted(masks.items()):
                if tensor == "w":
                    key, arr = self._weight_mask(index, layer, packed, w_base)
                    out[key] = arr
                else:
                    out[member(layer, tensor)] = np.asarray(packed, dtype=np.uint8)
            meta["w_base"] = w_base
        for layer, (w, dw) in sorted((weights or {}).items()):
            out[member(layer, "weight")] = np.asarray(w, dtype=np.float16)
            out[member(layer, "delta_weight")] = np.asarray(dw, dtype=np.float16)
        for (layer, name), arr in sorted((arrays or {}).items()):
            arr = np.asarray(arr)
            if arr.dtype.kind not in "biuf" or not name.isidentifier():
                raise ValueError(f"method array {name!r} must be numeric with an identifier name")
            out[member(layer, f"m_{name}")] = arr
        out["meta"] = encode_json(meta)
        path = self.path / iteration_filename(index, has_masks)
        self._write_npz(path, out)
        self.iterations_written += 1
        return path

    def _write_npz(self, path: Path, out: dict[str, np.ndarray]) -> None:
        """Write an iteration file and keep its digest (read back from its central directory)."""
        atomic_write(path, lambda f: write_npz(f, out))
        self.digests[path.name] = file_digest(path)

    def flush(self) -> Path | None:
        """Write the pending counts-only iterations as one batch file (its path; None if none)."""
        if not self._pending:
            return None
        metas = [m for m, _ in self._pending]
        first, last = metas[0]["iteration"], metas[-1]["iteration"]
        if first == last:  # a batch of one is an ordinary counts file
            path = self.path / iteration_filename(first, False)
            out = {"counts": self._pending[0][1], "meta": encode_json(metas[0])}
        else:
            path = self.path / batch_filename(first, last)
            out = {"counts": np.stack([c for _, c in self._pending]),  # (n_iter, n_layers, n_tensors)
                   "meta": encode_json(metas)}
        self._write_npz(path, out)
        self._pending.clear()
        return path

    def _weight_mask(self, index: int, layer: int, packed: np.ndarray,
                     w_base: dict[str, int]) -> tuple[str, np.ndarray]:
        packed = np.asarray(packed, dtype=np.uint8)
        snap = self._w_snapshot.get(layer)
        due = snap is None or self._w_since[layer] + 1 >= self.weight_snapshot_every
        if not due and snap[1].size == packed.size:
            flipped = bits.changed_indices(snap[1], packed)
            dtype = np.uint32 if packed.size * 8 < 2**32 else np.uint64
            delta = flipped.astype(dtype)
            if delta.nbytes < packed.nbytes:
                self._w_since[layer] += 1
                w_base[str(layer)] = snap[0]
                return member(layer, "w_delta"), delta
        self._w_snapshot[layer] = (index, packed.copy())
        self._w_since[layer] = 0
        return member(layer, "w"), packed
