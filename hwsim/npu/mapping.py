"""Mapping a GEMM pass onto a PE array: folds, stream chunks that fit the buffers, loop order.

Dataflows in GEMM terms, for every pass alike (DESIGN.md), with ``R × C`` the PE array:

====  ===========================  ==========  ================================
df    stationary (rows × cols)     streamed    one fold costs (SCALE-Sim)
====  ===========================  ==========  ================================
ws    B: K → rows, N → cols        M           2R + C + T − 2 cycles, T = M
is    A: K → rows, M → cols        N           2R + C + T − 2 cycles, T = N
os    C: M → rows, N → cols        K           R + C + T − 2 cycles, T = K
====  ===========================  ==========  ================================

Loop order: row folds inside column folds, stream chunks innermost. The streamed dimension is
cut into chunks so that each tile's working set fits the buffers holding its operands (half of
a double-buffered buffer); only the first chunk of a fold pays the fill/drain term.
"""

from __future__ import annotations

from dataclasses import dataclass

from archs import Architecture

from ..errors import MappingError

FILL_ROWS = {"ws": 2, "is": 2, "os": 1}  # fill/drain = FILL_ROWS·R + C − 2


@dataclass(frozen=True)
class Mapping:
    """How one GEMM ``M × K × N`` runs on an ``rows × cols`` array."""

    dataflow: str
    rows: int
    cols: int
    m: int
    k: int
    n: int
    stream_chunk: int  # elements of the streamed dimension per tile

    @property
    def row_dim(self) -> int:
        return {"ws": self.k, "is": self.k, "os": self.m}[self.dataflow]

    @property
    def col_dim(self) -> int:
        return {"ws": self.n, "is": self.m, "os": self.n}[self.dataflow]

    @property
    def stream_dim(self) -> int:
        return {"ws": self.m, "is": self.n, "os": self.k}[self.dataflow]

    @property
    def row_folds(self) -> int:
        return -(-self.row_dim // self.rows)

    @property
    def col_folds(self) -> int:
        return -(-self.col_dim // self.cols)

    @property
    def chunks(self) -> int:
        return -(-self.stream_dim // self.stream_chunk) if self.stream_dim else 0

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def n_tiles(self) -> int:
        return self.folds * self.chunks

    @property
    def fill_cycles(self) -> int:
        """Pipeline fill and drain of one fold."""
        return FILL_ROWS[self.dataflow] * self.rows + self.cols - 2


def buffers(arch: Architecture) -> dict[str, tuple[str, float]]:
    """Per operand, the on-chip buffer that stages it: ``(name, usable bytes)`` (0: unbounded).

    The staging buffer is the outermost on-chip memory holding the operand; a double-buffered
    one offers half its capacity to a tile; a buffer shared by several operands is shared. On a
    machine whose register files are a tiling level of their own (``compute.register_file_tiling``)
    they sit below the array and stage nothing: an operand no other on-chip memory holds bypasses
    the buffer level (``("", 0.0)``; Eyeriss v1's weights, from DRAM straight into the PEs).
    """
    below = arch.compute is not None and arch.compute.register_file_tiling
    out = {}
    for op in ("a", "b", "c"):
        holders = [m for m in arch.memories if not m.off_chip and op in m.operands
                   and not (below and m.kind == "register_file")]
        if not holders:
            out[op] = ("", 0.0)
            continue
        mem = holders[-1]
        cap = mem.capacity_bytes * mem.instances / (2 if mem.double_buffered else 1)
        out[op] = (mem.name, cap)
    return out


def map_gemm(m: int, k: int, n: int, arch: Architecture, dataflow: str | None = None,
             bytes_per: dict[str, float] | None = None, stream_chunk: int | None = None) -> Mapping:
    """Map one GEMM; raise :class:`MappingError` with a hint when no tile fits.

    Args:
        bytes_per: bytes per element of each operand (default 1).
        stream_chunk: an explicit chunk of the streamed dimension (a user-given mapping).
    """
    if arch.compute is None:
        raise MappingError(f"{arch.name} is a {arch.family} machine; the edge-NPU mapper maps PE arrays "
                           "(an edge_npu machine with a compute section)")
    df = dataflow or arch.compute.dataflow
    if df not in FILL_ROWS:
        raise MappingError(f"unknown dataflow {df!r}; use ws, os or is")
    r, c = arch.compute.rows, arch.compute.cols
    bp = {"a": 1.0, "b": 1.0, "c": 1.0, **(bytes_per or {})}
    stream = {"ws": m, "is": n, "os": k}[df]
    # working set of a tile, per operand: (elements fixed per tile, elements per streamed element)
    per = {"ws": {"a": (0, r), "b": (r * c, 0), "c": (0, c)},
           "is": {"a": (r * c, 0), "b": (0, r), "c": (0, c)},
           "os": {"a": (0, r), "b": (0, c), "c": (r * c, 0)}}[df]
    bufs = buffers(arch)
    best = max(stream, 1)
    for name in {b for b, _ in bufs.values() if b}:
        cap = next(cap for b, cap in bufs.values() if b == name)
        if cap <= 0:
            continue
        ops = [op for op, (b, _) in bufs.items() if b == name]
        fixed = sum(per[op][0] * bp[op] for op in ops)
        slope = sum(per[op][1] * bp[op] for op in ops)
        if fixed + slope > cap:
            stationary = {"ws": "b", "is": "a", "os": "c"}[df]
            raise MappingError(
                f"{df}: a {r}×{c} tile does not fit {name} ({cap:g} usable bytes"
                f"{', half of it: double-buffered' if arch.memory(name).double_buffered else ''}); the "
                f"stationary {stationary} tile alone needs {per[stationary][0] * bp[stationary]:g} B. "
                f"Hint: a smaller array, a larger {name}, or another dataflow")
        if slope > 0:
            best = min(best, int((cap - fixed) // slope))
    chunk = best if stream_chunk is None else stream_chunk
    if chunk < 1:
        raise MappingError(f"stream_chunk must be >= 1, got {chunk}")
    return Mapping(df, r, c, m, k, n, min(chunk, max(stream, 1)))
