"""Bytes per memory level and operand, data and metadata, for the representation format in use.

From a pass's tile element counts (``hwsim.tiles``):

- the operand's staging buffer is read by the array (``buf_read``) and filled from off-chip
  (``dram_read``); the output's buffer is written by the array (psums) and read to off-chip;
- the off-chip level is read (``dram_read``) and written (``dram_write``);
- a register-file level (per PE) reads ``a`` and ``b`` and updates a psum for every actual MAC;
- links carry what moves between their two levels.

A format at (level, operand) moves non-zeros plus metadata instead of every element:
``bitmap``/``zvc`` 1 bit (``metadata_bits``) per element, ``rle``/``ellpack_block`` metadata
per non-zero, ``csr``/``csc`` an index per non-zero and a pointer per array-row vector.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from archs import Architecture

from .mapping import buffers
from .tiles import TileCosts

PER_ELEMENT = ("bitmap", "zvc")
PER_NONZERO = ("rle", "ellpack_block", "csr", "csc")


@dataclass
class Traffic:
    """Total bytes by (memory or link, operand, kind, direction), and per-tile off-chip bytes."""

    totals: dict[tuple[str, str, str, str], float]  # (component, operand, data|metadata, read|write)
    offchip_read_per_tile: dict[str, np.ndarray]  # operand -> (n_tiles,) bytes
    offchip_write_per_tile: np.ndarray  # (n_tiles,) bytes


def moved_bytes(arch: Architecture, level: str, operand: str, dense: np.ndarray, nz: np.ndarray,
                elem_bytes: float, vector: int) -> tuple[np.ndarray, np.ndarray]:
    """(data, metadata) bytes of moving ``dense`` elements holding ``nz`` non-zeros at ``level``."""
    fmt = next((f for f in arch.sparse.formats if f.level == level and f.operand == operand), None)
    if fmt is None or fmt.format == "dense":
        return dense * elem_bytes, np.zeros_like(dense, dtype=np.float64)
    data = nz * elem_bytes
    if fmt.format in PER_ELEMENT:
        meta = dense * fmt.metadata_bits / 8
    else:
        meta = nz * fmt.metadata_bits / 8
        if fmt.format in ("csr", "csc"):
            meta = meta + np.ceil(dense / max(vector, 1)) * fmt.pointer_bits / 8
    return data.astype(np.float64), np.asarray(meta, dtype=np.float64)


def traffic(arch: Architecture, t: TileCosts, elem_bytes: dict[str, float], dense_baseline: bool) -> Traffic:
    """Bytes moved by one pass's tiles (``dense_baseline``: formats off, everything dense)."""
    off = arch.off_chip.name
    bufs = buffers(arch)
    rows = arch.compute.rows if arch.compute is not None else 1
    totals: dict[tuple[str, str, str, str], float] = defaultdict(float)
    off_read: dict[str, np.ndarray] = {}

    def move(level: str, op: str, dense: np.ndarray, nz: np.ndarray, direction: str) -> np.ndarray:
        if dense_baseline:
            data, meta = dense * elem_bytes[op], np.zeros(len(dense))
        else:
            data, meta = moved_bytes(arch, level, op, dense, nz, elem_bytes[op], rows)
        totals[(level, op, "data", direction)] += float(data.sum())
        if meta.any():
            totals[(level, op, "metadata", direction)] += float(meta.sum())
        return data + meta

    for op in ("a", "b"):
        buf = bufs[op][0]
        read = move(off, op, t.dram_read[op], t.dram_read_nz[op], "read")
        off_read[op] = read
        if buf:
            move(buf, op, t.dram_read[op], t.dram_read_nz[op], "write")
            move(buf, op, t.buf_read[op], t.buf_read_nz[op], "read")
    c_buf = bufs["c"][0]
    out = t.dram_write["c"]
    write = move(off, "c", out, out, "write")
    if "c" in t.dram_read:  # partial-sum spills come back
        off_read["c"] = move(off, "c", t.dram_read["c"], t.dram_read["c"], "read")
        if c_buf:
            move(c_buf, "c", t.dram_read["c"], t.dram_read["c"], "write")
    if c_buf:
        move(c_buf, "c", t.dram_write["c_array"], t.dram_write["c_array"], "write")
        move(c_buf, "c", out, out, "read")
    for m in arch.memories:
        if m.kind == "register_file":
            macs = float(t.actual.sum())
            for op in ("a", "b"):
                if op in m.operands:
                    totals[(m.name, op, "data", "read")] += macs * elem_bytes[op]
            if "c" in m.operands:
                totals[(m.name, "c", "data", "read")] += macs * elem_bytes["c"]
                totals[(m.name, "c", "data", "write")] += macs * elem_bytes["c"]
    totals.update(link_totals(arch, totals))
    return Traffic(dict(totals), off_read, write)


def link_totals(arch: Architecture, totals: dict[tuple[str, str, str, str], float]) -> dict[tuple, float]:
    """Bytes each link carries, from the memories' totals: a link from the off-chip level carries
    its reads, one to it its writes, any other the reads of its source (data and metadata)."""
    off = arch.off_chip.name
    out: dict[tuple[str, str, str, str], float] = defaultdict(float)
    for ln in arch.links:
        for op in ln.operands:
            if ln.source == off:
                key = (ln.source, op, "data", "read")
            elif ln.destination == off:
                key = (ln.destination, op, "data", "write")
            else:
                key = (ln.source, op, "data", "read")
            moved = totals.get(key, 0.0) + totals.get((key[0], op, "metadata", key[3]), 0.0)
            if moved:
                out[(ln.name, op, "data", "transfer")] += moved
    return dict(out)
