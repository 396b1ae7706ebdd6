"""Lazy trace reading: memory bounded by one iteration, numpy only.

>>> tr = traces.load("run.trace")
>>> for it in tr:                      # opens one iteration file at a time
...     x = it.mask(0, "x")            # bool (mask_batch, C, H, W), read on demand
"""

from __future__ import annotations

import json
import lzma
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import bits, checks, digest
from .errors import TraceFormatError
from .invariants import checker_for
from .layer import MAX_BATCH, LayerSpec
from .manifest import MANIFEST_NAME, MASK_TENSORS, TENSOR_INDEX, TENSORS, check_manifest
from .writer import ITER_GLOB, iteration_filename, member

_ITER_RE = re.compile(r"^iter-(\d{8})\.(masks|counts)\.npz$")
_BATCH_RE = re.compile(r"^iter-(\d{8})-(\d{8})\.counts\.npz$")  # format 2: counts-only iterations
_MEMBER_RE = re.compile(r"^L(\d+)\.(\w+)$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, exactly
_LAYER_ARRAYS = (*MASK_TENSORS, "w_delta", "weight", "delta_weight")
# What reading a damaged .npz raises: zip and zlib errors, an unsupported compression method or an
# encrypted member (NotImplementedError, RuntimeError: one flipped byte in a zip header), LZMA data
# errors, short structures, bad .npy headers (ValueError, SyntaxError).
UNREADABLE = (OSError, ValueError, EOFError, SyntaxError, KeyError, zipfile.BadZipFile, zlib.error,
              RuntimeError, lzma.LZMAError, struct.error)


def load(path: str | Path, *, check: bool = True, digests: bool = True) -> Trace:
    """Open a trace directory, checking its manifest; iteration files are read lazily.

    With ``check``, each iteration is checked against its training method's invariants as it
    is opened (``traces.format.invariants``); a violation raises :class:`TraceFormatError`.
    With ``digests`` (and ``check``), each iteration file's digest against the manifest's
    (``traces.format.digest``; ``hwsim trace rehash`` checks the rest without them, then reseals).
    """
    return Trace(path, check=check, digests=digests)


class Trace:
    """A recorded trace: the manifest, the layer table and the list of iteration files."""

    def __init__(self, path: str | Path, *, check: bool = True, digests: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise TraceFormatError(self.path, "path", "nothing there", "a trace directory")
        if not self.path.is_dir():
            raise TraceFormatError(self.path, "path", "a file",
                                   f"a trace directory holding {MANIFEST_NAME} and iter-*.npz files")
        mfile = self.path / MANIFEST_NAME
        if not mfile.exists():
            raise TraceFormatError(mfile, "manifest", "no such file",
                                   "the JSON manifest every trace directory starts with "
                                   "(is this a trace written by hwsim?)")
        _regular(mfile)
        try:
            self.manifest: dict[str, Any] = _parse_json(mfile.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise TraceFormatError(mfile, "(document)", f"invalid JSON ({exc})", "a JSON object") from None
        except ValueError as exc:  # NaN, Infinity, a key twice
            raise TraceFormatError(mfile, "(document)", str(exc), "finite numbers, each key once") from None
        self.layers: list[LayerSpec] = check_manifest(self.manifest, mfile)
        self._layer_index = {s.name: i for i, s in enumerate(self.layers)}
        self._files: dict[int, Path] = {}
        self._rows: dict[int, int] = {}  # iteration -> its row in a batch file (format 2)
        self._batch: tuple[Path, np.ndarray, list[dict[str, Any]]] | None = None  # the last batch read
        masks: list[int] = []
        for f in sorted(self.path.glob(ITER_GLOB)):
            _regular(f)
            for index, row in self._indices(f):
                if index in self._files:
                    raise TraceFormatError(f, "file name", f"a second file for iteration {index} "
                                           f"(also in {self._files[index].name})", "one file per iteration")
                self._files[index] = f
                if row is not None:
                    self._rows[index] = row
                elif f.name.endswith(".masks.npz"):
                    masks.append(index)
        self.iterations: list[int] = sorted(self._files)
        self.mask_iterations: list[int] = sorted(masks)
        _check_iteration_files(self.path, self.manifest, self.iterations)
        self.digests = check and digests  # iteration files checked against the manifest's files table
        # files an incomplete trace holds beyond its manifest's digests (traces.format.digest)
        self.unsealed: list[str] = digest.check_listing(self.path, self.manifest, sorted(
            {f.name for f in self._files.values()})) if self.digests else []
        self.check = check  # per-iteration checks (traces.format.checks), method invariants
        self.element_table = checks.element_table(self.layers)  # (n_layers, n_tensors) per sample
        self.fan_table = checks.fan_table(self.layers)  # the bounds counts set each other
        if self.manifest["method"].get("name") == "synthetic":  # y and dx written dense by convention
            self.fan_table[0][:] = 0
        self._checker = checker_for(self.manifest) if check else None
        self.unread_checked = False  # traces.format.validate.check_unread has run on this object

    def _indices(self, f: Path) -> list[tuple[int, int | None]]:
        """The iterations a file holds, with their row in a batch file (None: a one-iteration file)."""
        m = _ITER_RE.match(f.name)
        if m is not None:
            return [(int(m.group(1)), None)]
        b = _BATCH_RE.match(f.name)
        if b is None:
            raise TraceFormatError(f, "file name", repr(f.name), "iter-NNNNNNNN.(masks|counts).npz or "
                                   "iter-FIRST-LAST.counts.npz")
        first, last = int(b.group(1)), int(b.group(2))
        if self.manifest["format_version"] < 2 or last <= first:
            raise TraceFormatError(f, "file name", repr(f.name),
                                   "a batch file iter-FIRST-LAST.counts.npz with FIRST < LAST, in a trace "
                                   "of format_version 2 or later" if last <= first else
                                   "one file per iteration in a trace of format_version 1")
        return [(i, i - first) for i in range(first, last + 1)]

    def file_of(self, index: int) -> Path:
        """The file holding iteration ``index``."""
        return self._files[index]

    def row_of(self, index: int) -> int | None:
        """Iteration ``index``'s row in its batch file (None: a file of its own)."""
        return self._rows.get(index)

    def batch_rows(self, file: Path) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """A batch file's counts ``(n_iter, n_layers, n_tensors)`` and per-iteration metadata,
        checked; the last batch read is kept (memory: one batch)."""
        if self._batch is not None and self._batch[0] == file:
            return self._batch[1], self._batch[2]
        b = _BATCH_RE.match(file.name)
        first, n = int(b.group(1)), int(b.group(2)) - int(b.group(1)) + 1
        try:
            with np.load(file, allow_pickle=False) as z:
                if self.digests:
                    digest.check_digest(self.path, self.manifest, file, z.zip)
                names = set(z.files)
                if names != {"meta", "counts"}:
                    extra = sorted(names - {"meta", "counts"})
                    raise TraceFormatError(file, extra[0] if extra else "meta" if "meta" not in names
                                           else "counts", "an unknown field" if extra else "field missing",
                                           "a batch file holds exactly meta and counts")
                counts, meta_bytes = z["counts"], z["meta"]  # read whole: CRC-32 checked
                damaged = _header_mismatch(file, z.zip) if self.check else None
                if damaged is not None:
                    raise TraceFormatError(file, damaged.removesuffix(".npy"), "a damaged zip header",
                                           "an intact file as the trace writer wrote it; the file was "
                                           "changed after it was written")
        except UNREADABLE as exc:
            if isinstance(exc, TraceFormatError):
                raise
            raise TraceFormatError(file, "(archive)", f"unreadable data ({exc})",
                                   "a complete .npz batch file") from None
        expected = (n, len(self.layers), len(TENSORS))
        if counts.shape != expected or counts.dtype.kind != "i":
            raise TraceFormatError(file, "counts", f"{counts.dtype} {counts.shape}",
                                   f"int64 {expected} (iterations × layers × tensors)")
        try:
            metas = _parse_json(meta_bytes.tobytes())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise TraceFormatError(file, "meta", f"invalid JSON ({exc})", "a JSON list") from None
        except ValueError as exc:
            raise TraceFormatError(file, "meta", str(exc), "finite numbers, each key once") from None
        if not isinstance(metas, list) or len(metas) != n:
            found = f"a list of {len(metas)}" if isinstance(metas, list) else type(metas).__name__
            raise TraceFormatError(file, "meta", found, f"a JSON list of {n} objects, one per iteration")
        for i, meta in enumerate(metas):
            if not isinstance(meta, dict) or meta.get("iteration") != first + i or meta.get("has_masks"):
                raise TraceFormatError(file, f"meta[{i}]", repr(meta)[:80],
                                       f"an object with iteration {first + i} and has_masks false")
        self._batch = (file, counts, metas)
        return counts, metas

    # -- layer table -------------------------------------------------------------------------
    def layer_index(self, layer: int | str) -> int:
        """Index of a layer given by index or name."""
        if isinstance(layer, str):
            if layer not in self._layer_index:
                raise KeyError(f"no layer {layer!r}; layers are {list(self._layer_index)}")
            return self._layer_index[layer]
        if not 0 <= layer < len(self.layers):
            raise IndexError(f"layer {layer} out of range (0..{len(self.layers) - 1})")
        return layer

    @property
    def complete(self) -> bool:
        """False for a trace whose recording process did not close it (e.g. was killed)."""
        return bool(self.manifest["complete"])

    # -- iterations ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.iterations)

    def __iter__(self) -> Iterator[Iteration]:
        """Yield iterations in order, closing each before opening the next."""
        for index in self.iterations:
            it = self.iteration(index)
            try:
                yield it
            finally:
                it.close()

    def iteration(self, index: int) -> Iteration:
        """Open one iteration (its masks are read on demand), checking the method's invariants."""
        if index not in self._files:
            raise KeyError(f"iteration {index} is not in {self.path}")
        it = Iteration(self, index, self._files[index], self._rows.get(index))
        if self._checker is not None:
            problems = self._checker(self, it)
            if problems:
                it.close()
                field, _, found = problems[0].partition(": ")
                method = self.manifest["method"]["name"]
                raise TraceFormatError(it.file, field, found, f"the {method} invariant to hold "
                                       "(see traces/format/invariants.py)")
        return it

    def masks(self) -> Iterator[Iteration]:
        """Yield only the iterations that carry masks."""
        for index in self.mask_iterations:
            with self.iteration(index) as it:
                yield it

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """All per-iteration counts: ``(n_iter, n_layers, n_tensors)`` int64 and batches ``(n_iter,)``."""
        out = np.empty((len(self.iterations), len(self.layers), len(TENSORS)), dtype=np.int64)
        batch = np.empty(len(self.iterations), dtype=np.int64)
        for i, it in enumerate(self):
            out[i] = it.counts
            batch[i] = it.batch
        return out, batch

    def __repr__(self) -> str:
        return (f"Trace({str(self.path)!r}, layers={len(self.layers)}, "
                f"iterations={len(self.iterations)}, mask_iterations={len(self.mask_iterations)})")


class Iteration:
    """One iteration: its own file, or a row of a batch file of counts-only iterations (``row``).
    Counts and metadata are read at open; arrays on demand."""

    def __init__(self, trace: Trace, index: int, file: Path, row: int | None = None,
                 verify: bool = True) -> None:
        self.trace = trace
        self.index = index
        self.file = file
        self.row = row  # its row in a batch file, None for a file of its own
        self._npz: Any = None
        if row is not None:
            counts, metas = trace.batch_rows(file)
            self.meta: dict[str, Any] = metas[row]
            self.counts: np.ndarray = counts[row]
            names: set[str] = set()
        else:
            names = self._open(file)
            if trace.check and verify:
                self._verify_members()
        expected = (len(trace.layers), len(TENSORS))
        if self.counts.shape != expected or self.counts.dtype.kind != "i":
            raise TraceFormatError(file, "counts", f"{self.counts.dtype} {self.counts.shape}",
                                   f"int64 {expected} (layers × tensors)")
        self.batch: int = self._meta_int("batch")
        self.has_masks: bool = bool(self.meta.get("has_masks", False))
        mb = self.meta.get("mask_batch")
        self.mask_batch: int = self.batch if mb is None else self._meta_int("mask_batch", self.batch)
        self.epoch = self.meta.get("epoch")
        self._members = names
        self._check_members(names)
        if trace.check:
            try:
                self._check_headers(names)
                checks.check_iteration(trace, self)
            except TraceFormatError:
                self.close()
                raise

    @property
    def members(self) -> set[str]:
        """The archive member names of a one-iteration file (empty for a batch file's row)."""
        return set(self._members)

    def _open(self, file: Path) -> set[str]:
        """Open a one-iteration file: its member names; ``meta`` and ``counts`` read."""
        try:
            self._npz = np.load(file, allow_pickle=False)
            names = set(self._npz.files)
        except UNREADABLE as exc:
            raise TraceFormatError(file, "(archive)", f"unreadable data ({exc})",
                                   "a complete .npz iteration file") from None
        if self.trace.digests:
            try:
                digest.check_digest(self.trace.path, self.trace.manifest, file, self._npz.zip)
            except TraceFormatError:
                self.close()
                raise
        if "meta" not in names or "counts" not in names:
            raise TraceFormatError(file, "meta" if "meta" not in names else "counts",
                                   "field missing", "every iteration file has meta and counts")
        try:
            self.meta = _parse_json(self._read("meta").tobytes())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise TraceFormatError(file, "meta", f"invalid JSON ({exc})", "a JSON object") from None
        except ValueError as exc:
            raise TraceFormatError(file, "meta", str(exc), "finite numbers, each key once") from None
        if not isinstance(self.meta, dict):
            raise TraceFormatError(file, "meta", type(self.meta).__name__, "a JSON object")
        self.counts = self._read("counts")
        return names

    def _verify_members(self) -> None:
        """Every member's CRC-32, also of the arrays this reader will not need (the weights, on a
        machine that does not price them): a damaged file is refused whole, whatever is read from
        it. Reads the file once in chunks (memory: one chunk)."""
        try:
            damaged, what = self._npz.zip.testzip(), "damaged data (bad CRC-32)"
            if damaged is None:
                damaged, what = _header_mismatch(self.file, self._npz.zip), "a damaged zip header"
        except UNREADABLE as exc:
            self.close()
            raise TraceFormatError(self.file, "(archive)", f"unreadable data ({exc})",
                                   "a complete .npz iteration file") from None
        if damaged is not None:
            self.close()
            raise TraceFormatError(self.file, damaged.removesuffix(".npy"), what,
                                   "an intact file as the trace writer wrote it; the file was changed "
                                   "after it was written")

    def _meta_int(self, key: str, most: int = MAX_BATCH) -> int:
        value = self.meta.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
            raise TraceFormatError(self.file, f"meta.{key}", repr(value), f"an integer in 1..{most}")
        return value

    def _read(self, name: str) -> np.ndarray:
        try:
            self._check_size(name)
            return self._npz[name]
        except UNREADABLE as exc:
            raise TraceFormatError(self.file, name, f"unreadable data ({exc})",
                                   "an intact array") from None

    def _check_size(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """A member's header must not promise more data than the member holds (a corrupt header would
        otherwise allocate whatever it claims before the read fails). Returns its shape and dtype."""
        info = self._npz.zip.getinfo(f"{name}.npy")
        with self._npz.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            needed = math.prod(shape) * dtype.itemsize
            if needed > info.file_size - f.tell():
                raise ValueError(f"its header promises {needed} bytes, the file holds "
                                 f"{info.file_size - f.tell()}")
        return shape, dtype

    def _check_headers(self, names: set[str]) -> None:
        """The dtype and shape of every mask and weight member, from its header alone (cheap: no data
        read), also of those a replay will not read (``y``, ``dx`` on most machines): a member the
        writer could not have written is refused on opening, as ``validate`` refuses it."""
        for name in sorted(names):
            m = _MEMBER_RE.match(name)
            if m is None or not (m.group(2) in MASK_TENSORS or m.group(2) in ("weight", "delta_weight",
                                                                              "w_delta")):
                continue
            spec, tensor = self.trace.layers[int(m.group(1))], m.group(2)
            try:
                shape, dtype = self._check_size(name)
            except UNREADABLE as exc:
                raise TraceFormatError(self.file, name, f"unreadable data ({exc})",
                                       "an intact array") from None
            if tensor in ("weight", "delta_weight"):
                want, ok = f"float16 {spec.w_shape}", dtype == np.float16 and shape == spec.w_shape
            elif tensor == "w_delta":
                want, ok = "a 1-D integer array of element indices", dtype.kind in "iu" and len(shape) == 1
            else:
                mask_shape = self.mask_shape(int(m.group(1)), tensor)
                n = bits.packed_nbytes(int(np.prod(mask_shape)))
                if not (dtype == np.uint8 and shape == (n,)):
                    raise TraceFormatError(self.file, name, f"{dtype} of {math.prod(shape)} bytes"
                                           if len(shape) == 1 else f"{dtype} {shape}",
                                           f"uint8 of {n} bytes for a mask of shape {mask_shape} "
                                           f"(layer {spec.name!r})")
                continue
            if not ok:
                raise TraceFormatError(self.file, name, f"{dtype} {shape}", f"{want} (layer {spec.name!r})")

    def _check_members(self, names: set[str]) -> None:
        n_layers = len(self.trace.layers)
        for name in names - {"meta", "counts"}:
            m = _MEMBER_RE.match(name)
            known = m is not None and (m.group(2) in _LAYER_ARRAYS or m.group(2).startswith("m_"))
            if not known or int(m.group(1)) >= n_layers:
                raise TraceFormatError(self.file, name, "an unknown field",
                                       f"L<layer 0..{n_layers - 1}>.<one of {', '.join(_LAYER_ARRAYS)}, "
                                       "or m_<name>>")
            if m.group(2) in ("weight", "delta_weight"):
                pair = member(int(m.group(1)), "delta_weight" if m.group(2) == "weight" else "weight")
                if pair not in names:
                    raise TraceFormatError(self.file, pair, "field missing",
                                           f"stored weights come in pairs: {name} is stored, so is {pair}")

    # -- access --------------------------------------------------------------------------------
    def count(self, layer: int | str, tensor: str) -> int | None:
        """Non-zero count of a tensor over the whole batch, or None where not recorded."""
        value = int(self.counts[self.trace.layer_index(layer), TENSOR_INDEX[tensor]])
        return None if value < 0 else value

    def mask_shape(self, layer: int | str, tensor: str) -> tuple[int, ...]:
        """Shape of a stored mask (activation masks cover ``mask_batch`` samples)."""
        return self.trace.layers[self.trace.layer_index(layer)].tensor_shape(tensor, self.mask_batch)

    def packed(self, layer: int | str, tensor: str) -> np.ndarray | None:
        """The packed bits of a mask as stored (weight deltas resolved; all ones for a dense tensor
        whose mask the writer left out, see traces.format.checks), or None when not recorded."""
        li = self.trace.layer_index(layer)
        if tensor not in MASK_TENSORS:
            raise KeyError(f"no mask for tensor {tensor!r}; masks exist for {MASK_TENSORS}")
        name = member(li, tensor)
        shape = self.mask_shape(li, tensor)
        if tensor == "w" and name not in self._members and member(li, "w_delta") in self._members:
            packed = self._resolve_weight_delta(li, shape)
        elif name in self._members:
            packed = self._read(name)
        elif self.has_masks and self.count(li, tensor) == self.trace.layers[li].numel(tensor, self.batch):
            packed = bits.pack(np.ones(shape, dtype=bool))  # a dense tensor: the writer may leave it out
        else:
            return None
        expected = bits.packed_nbytes(int(np.prod(shape)))
        if packed.dtype != np.uint8 or packed.shape != (expected,):
            spec = self.trace.layers[li]
            raise TraceFormatError(
                self.file, name, f"{packed.dtype} of {packed.size} bytes",
                f"uint8 of {expected} bytes for a mask of shape {shape} (layer {spec.name!r})")
        if self.trace.check:
            spec = self.trace.layers[li]
            checks.check_mask(self.file, name, packed, self.count(li, tensor), int(np.prod(shape)),
                              spec.numel(tensor, self.batch))
        return packed

    def mask(self, layer: int | str, tensor: str) -> np.ndarray | None:
        """A mask unpacked to bool of :meth:`mask_shape`, or None when absent."""
        packed = self.packed(layer, tensor)
        return None if packed is None else bits.unpack(packed, self.mask_shape(layer, tensor))

    def _resolve_weight_delta(self, li: int, shape: tuple[int, ...]) -> np.ndarray:
        base = self.meta.get("w_base", {}).get(str(li))
        base_file = self.trace.path / iteration_filename(int(base), True) if base is not None else None
        if base_file is None or not base_file.exists():
            raise TraceFormatError(self.file, f"meta.w_base.{li}", repr(base),
                                   "the iteration of an existing full weight-mask snapshot")
        with Iteration(self.trace, int(base), base_file, verify=False) as snap:  # verified when opened itself
            name = member(li, "w")
            if name not in snap._members:
                raise TraceFormatError(base_file, name, "field missing",
                                       f"the weight-mask snapshot that {self.file.name} refers to")
            full = snap._read(name)
        delta = self._read(member(li, "w_delta")).astype(np.int64)
        numel = int(np.prod(shape))
        if delta.size and (delta.min() < 0 or delta.max() >= numel):
            raise TraceFormatError(self.file, member(li, "w_delta"), "indices out of range",
                                   f"element indices in [0, {numel})")
        return bits.flip(full, delta)

    def weights(self, layer: int | str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(weight, delta_weight)`` float16 arrays of the weight shape, or None when not stored."""
        li = self.trace.layer_index(layer)
        name = member(li, "weight")
        if name not in self._members:
            return None
        shape = self.trace.layers[li].w_shape
        out = (self._read(name), self._read(member(li, "delta_weight")))
        for key, arr in zip(("weight", "delta_weight"), out, strict=True):
            if arr.shape != shape or arr.dtype != np.float16:
                raise TraceFormatError(self.file, member(li, key), f"{arr.dtype} {arr.shape}",
                                       f"float16 {shape}")
            if self.trace.check and not np.isfinite(arr).all():
                raise TraceFormatError(self.file, member(li, key), f"{int((~np.isfinite(arr)).sum())} "
                                       "NaN or infinite values", "finite weights (a diverged run's "
                                       "weights do not describe cell writes)")
        return out

    def array(self, layer: int | str, name: str) -> np.ndarray | None:
        """A training method's own per-layer array (``L{l}.m_{name}``), or None when absent."""
        key = member(self.trace.layer_index(layer), f"m_{name}")
        return self._read(key) if key in self._members else None

    def layer_stats(self, layer: int | str) -> dict[str, Any]:
        """A training method's per-layer numbers for this iteration (``meta.layer_stats``)."""
        name = self.trace.layers[self.trace.layer_index(layer)].name
        return dict(self.meta.get("layer_stats", {}).get(name, {}))

    def close(self) -> None:
        """Release the file handle."""
        if self._npz is not None:
            self._npz.close()

    def __enter__(self) -> Iteration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Iteration({self.index}, batch={self.batch}, masks={self.has_masks})"


def _check_iteration_files(path: Path, manifest: dict[str, Any], present: list[int]) -> None:
    """Every iteration the manifest promises is there: ``0..iterations-1`` for a complete trace,
    ``0..last`` without gaps for one whose recording did not finish (a killed run). A replay of a
    trace with holes would extrapolate from what is left and say nothing."""
    promised = manifest.get("iterations")
    if manifest.get("complete") and isinstance(promised, int):
        expected = promised
    else:
        expected = present[-1] + 1 if present else 0
    have = set(present)
    missing = [i for i in range(expected) if i not in have]
    if missing:
        shown = ", ".join(f"iter-{i:08d}" for i in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise TraceFormatError(path, "iterations", f"{len(missing)} of {expected} iteration files missing "
                               f"({shown})", "every iteration the manifest promises; copy the whole trace "
                               "directory, or re-record")
    extra = [i for i in present if i >= expected]
    if extra:
        raise TraceFormatError(path, "iterations", f"iteration file iter-{extra[0]:08d} beyond the "
                               f"{expected} iterations in the manifest", "only the manifest's iterations")


_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # a zip member's local header


def _header_mismatch(file: Path, zf: zipfile.ZipFile) -> str | None:
    """The first member whose local header disagrees with its central-directory entry (version,
    flags, method, time, date, CRC-32, sizes, name: ``zipfile`` reads the central copy and skips
    the local one, so damage there would pass unseen), or ``"(end of archive)"`` when bytes
    follow the end-of-central-directory record (the trace writer writes no archive comment)."""
    with open(file, "rb") as f:
        for info in zf.infolist():
            f.seek(info.header_offset)
            head = f.read(_LOCAL.size)
            if len(head) < _LOCAL.size:
                return info.filename
            _, version, flags, method, time, date, crc, csize, usize, n_name, n_extra = _LOCAL.unpack(head)
            name, extra = f.read(n_name), f.read(n_extra)
            dos_date = (info.date_time[0] - 1980) << 9 | info.date_time[1] << 5 | info.date_time[2]
            dos_time = info.date_time[3] << 11 | info.date_time[4] << 5 | info.date_time[5] // 2
            sizes = (csize, usize)
            if sizes == (0xFFFFFFFF, 0xFFFFFFFF) and len(extra) >= 20 and extra[:2] == b"\x01\x00":
                usize, csize = struct.unpack("<QQ", extra[4:20])  # zip64: the real sizes
                sizes = (csize, usize)
            if (version, flags, method, time, date, crc) != (info.extract_version, info.flag_bits,
                                                             info.compress_type, dos_time, dos_date,
                                                             info.CRC) \
                    or (not flags & 0x08 and sizes != (info.compress_size, info.file_size)) \
                    or name.decode("utf-8", "replace") != info.orig_filename:
                return info.filename
        f.seek(-22, 2)
        if f.read(4) != b"PK\x05\x06" or zf.comment:
            return "(end of archive)"
    return None


def irregular(path: str | Path) -> str | None:
    """What ``path`` is when it exists but is no regular file (reading a FIFO would wait forever, a
    directory or a device holds no text): ``"a directory"``, ``"a dangling link"`` or ``"not a regular
    file (a FIFO, socket or device)"``; None for a regular file or for nothing at all."""
    p = Path(path)
    if p.is_file() or not (p.exists() or p.is_symlink()):
        return None
    if p.is_dir():
        return "a directory"
    return "a dangling link" if not p.exists() else "not a regular file (a FIFO, socket or device)"


def _regular(f: Path) -> None:
    """A trace's files are regular files: reading a FIFO would wait forever, a device or a directory
    is no iteration."""
    what = irregular(f) if f.exists() or f.is_symlink() else "no such file"
    if what is not None:
        raise TraceFormatError(f, "file", what, "a regular file written by the trace writer")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a trace may hold")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) < len(pairs):  # linear: a manifest's files table holds thousands of keys
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {twice!r} appears twice in one object")
    for k, v in pairs:  # JSON allows DEL and C1 controls in text; a trace's names and values never hold them
        for text in (k, v) if isinstance(v, str) else (k,):
            bad = _CONTROL.search(text)
            if bad is not None:
                raise ValueError(f"text {text!r} under key {k!r} holds control character "
                                 f"U+{ord(bad.group()):04X}")
    return out


def _parse_json(data: bytes) -> Any:
    """Strict JSON: no NaN or Infinity (Python's json accepts them; replay would compute with them),
    no key twice in one object (Python's json keeps the last silently)."""
    return json.loads(data, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
