"""Sparse paths of one GPU GEMM: 2:4 on the sparse tensor cores, unstructured sparse kernels
(Sputnik-style SpMM on the CUDA cores), and DSG's gathered GEMM over the needed outputs.

- **N:M** (``sparse.structured``) applies to the weight operand ``b`` only when the mask is N:M
  along that pass's reduction axis (``traces.format.structured``): forward along ``Kr``, backward-data
  along the output channels (a *transposable* mask). Backward-weight produces dW, a dense output
  whose operands are X and dY: it runs dense. The compressed operand stores ``n`` values per group
  of ``m`` (``ceil(K/m)·n`` per column) plus ``metadata_bits_per_nonzero`` bits per stored value.
  A mask that changes during training is compressed again every step: a memory-bound kernel that
  reads W dense and writes the compressed values and metadata (twice when backward-data also runs
  2:4: once per orientation). The kernel is the library's (``structured.library``: ``cutlass``,
  PyTorch's one CUTLASS tile from ``kernel_tile_*``/``kernel_stages``, no split-K; ``cusparselt``, a
  tile and split-K per shape; each at its own main-loop efficiency, :func:`library_kernel`) on the
  dense operand padded to ``structured.min_dense_rows`` rows by a copy kernel (:func:`structured_gemm`).
- **Unstructured**: the sparser input operand in CSR (values, 32-bit column indices, 32-bit row
  pointers) times the other, dense. Effectual MACs (``nnz × other dimension``) run at
  ``efficiency(density) ×`` the dense tensor-core peak (``sparse.kernel_efficiency``, linear
  interpolation, clamped at the ends; ``sparse.unstructured_library: cusparse`` reads
  ``cusparse_efficiency`` instead); the kernel takes ``launch + latency + max(math, HBM bytes /
  bandwidth, latency-bound row streaming)`` (a row's non-zeros arrive ``threadblock_k`` at a time
  with ``pipeline_stages`` steps in flight, as in the dense main loop). An operand whose sparsity
  changes every step (activations and gradients always; a weight when its mask changed) is first
  converted to CSR by a memory-bound kernel (read it dense, write values, indices and pointers);
  only a weight with an unchanged mask keeps last step's CSR.
  The *crossover density* is where this time (conversion included) equals the dense GEMM's for the
  same shape.
- **Gathered** (DSG's ``y_sel``): the rows of A with any needed output are gathered into a compact
  matrix, output tiles without any needed entry are skipped, and C rows are scattered back; gather
  and scatter are memory-bound kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archs import Architecture, StructuredSparsity
from traces.format.layer import LayerSpec
from traces.format.structured import backward_data_nm, group_counts, weight_matrix

from .gemm import GemmCost, Kernel, Operands, gemm_cost
from .kernels import hbm_bytes_per_cycle, launch_cycles, memory_kernel_cycles, sm_cycle_scale

INDEX_BYTES = 4  # CSR column index and row pointer: 32-bit


def structured_applies(spec: LayerSpec, pass_: str, w_mask: np.ndarray | None,
                       s: StructuredSparsity | None) -> tuple[bool, str]:
    """Whether the N:M sparse tensor cores run this pass, and if not, why (text for the report)."""
    if s is None:
        return False, "no N:M structured sparsity on this machine"
    if s.operand != "b":
        return False, f"N:M is on operand {s.operand}; only weight (b) masks are checked"
    if not spec.has_weight:
        return False, "a product of two activations: no weight mask to hold N:M"
    if pass_ == "backward_weight":
        return False, "backward-weight produces dW (dense output); its operands X and dY are not N:M weights"
    if w_mask is None:
        return False, "counts only: the weight's N:M pattern cannot be checked"
    w_mask = spec.geometry.gemm_weight(spec, w_mask)  # (groups·N, Kr): a transposed conv's W transposed
    mat = weight_matrix(w_mask)
    fwd_broken = int((group_counts(mat, s.m) > s.n).sum())
    if pass_ == "forward":
        if fwd_broken:
            return False, f"weight mask breaks {s.n}:{s.m} along Kr in {fwd_broken} group(s)"
        return True, ""
    if backward_data_nm(w_mask, s.n, s.m, spec.groups):
        return True, ""
    found = ("along neither Kr nor output channels" if fwd_broken
             else "along Kr but not along output channels")
    return False, (f"backward-data needs {s.n}:{s.m} along output channels (a transposable mask); the weight "
                   f"mask is {s.n}:{s.m} {found}")


def compressed_bytes(k: int, n: int, element_bytes: float, s: StructuredSparsity) -> tuple[float, float]:
    """(value bytes, metadata bytes) of a ``k × n`` operand compressed N:M along ``k``."""
    stored = -(-k // s.m) * s.n * n
    return stored * element_bytes, stored * s.metadata_bits_per_nonzero / 8


def structured_operands(k: int, n: int, element_bytes: float, s: StructuredSparsity) -> Operands:
    """Per-element bytes of A, compressed B (values, metadata) and C for the GEMM model."""
    data, meta = compressed_bytes(k, n, element_bytes, s)
    return Operands(element_bytes, data / (k * n), element_bytes, meta / (k * n))


@dataclass
class StructuredCost:
    """One N:M GEMM as the library runs it: the dense operand padded (if it must be), then the kernel."""

    gemm: GemmCost
    padded_rows: int  # rows of the dense operand the kernel sees (a multiple of min_dense_rows)
    pad_cycles: int  # the zero-padding copy kernel (0: no padding needed)
    pad_read_bytes: float  # the dense operand read by the padding kernel
    pad_write_bytes: float  # the padded copy written


def structured_gemm(arch: Architecture, m: int, k: int, n: int, element_bytes: float,
                    groups: int = 1) -> StructuredCost:
    """``m × k × n`` with ``b`` (``k × n``) compressed N:M along ``k``, on the machine's N:M kernel
    (one GEMM; ``groups`` only sizes the padding kernel, which pads every group's operand at once).

    The dense operand's ``m`` rows are padded with zeros to a multiple of
    ``structured.min_dense_rows`` by a copy kernel (read ``m·k``, write the padded ``m'·k``
    elements) and the kernel computes ``m' × k × n``; the result is sliced back as a view (no
    copy). With ``kernel_tile_m/n`` set, the kernel is that one configuration (a library that ships
    one tile, such as PyTorch's CUTLASS path), otherwise the dense heuristic's tiles.
    """
    s = arch.sparse.structured
    rows = -(-m // s.min_dense_rows) * s.min_dense_rows
    kernel, split_k, efficiency = library_kernel(arch)
    serial = s.library == "cusparselt" and s.cusparselt_serial_epilogue
    gemm = gemm_cost(arch, rows, k, n, structured_operands(k, n, element_bytes, s),
                     math_speedup=s.math_speedup, split_k=split_k, kernel=kernel, efficiency=efficiency,
                     stream_k=False,  # [assumption] the N:M libraries schedule data-parallel tiles
                     serial_epilogue=serial)
    pad_c, read, written = 0, 0.0, 0.0
    if rows != m:
        read, written = groups * m * k * element_bytes, groups * rows * k * element_bytes
        pad_c = memory_kernel_cycles(arch, read + written, ops=groups * rows * k)
    return StructuredCost(gemm, rows, pad_c, read, written)


def library_kernel(arch: Architecture) -> tuple[Kernel | None, bool, float]:
    """(fixed kernel or None for a per-shape choice, split-K allowed, main-loop efficiency) of the
    machine's N:M library (``sparse.structured.library``):

    - ``cutlass``: PyTorch's CUTLASS path, one configuration (``kernel_tile_*``, ``kernel_stages``,
      ``kernel_raster``; none set: the dense heuristic's tiles), split-K only if ``split_k``, at
      ``cutlass_efficiency``;
    - ``cusparselt``: the tile and split-K are chosen per shape (cuSPARSELt's algorithm search; the
      model tries the dense heuristic's tiles and split factors), at ``cusparselt_efficiency``.
    """
    s, g = arch.sparse.structured, arch.gpu
    if s.library == "cusparselt":
        return None, True, s.cusparselt_efficiency or g.tensor_core_efficiency
    kernel = Kernel(s.kernel_tile_m, s.kernel_tile_n, s.kernel_tile_k or g.threadblock_k,
                    s.kernel_stages or g.pipeline_stages, s.kernel_raster) if s.kernel_tile_m else None
    return kernel, s.split_k, s.cutlass_efficiency or g.tensor_core_efficiency


def compress_cycles(arch: Architecture, w_numel: int, element_bytes: float,
                    copies: int) -> tuple[int, float, float]:
    """Re-compressing a weight whose mask changed: (cycles, dense bytes read, compressed bytes written)."""
    s = arch.sparse.structured
    data, meta = compressed_bytes(w_numel, 1, element_bytes, s)
    read, written = w_numel * element_bytes, copies * (data + meta)
    return memory_kernel_cycles(arch, read + written, ops=w_numel), read, written


def efficiency(arch: Architecture, density: float) -> float:
    """Sparse-kernel throughput as a fraction of the dense tensor-core peak at ``density``, on the
    curve of ``sparse.unstructured_library`` (``cusparse``: ``cusparse_efficiency`` when given)."""
    sp = arch.sparse
    pts = sp.cusparse_efficiency if sp.unstructured_library == "cusparse" and sp.cusparse_efficiency \
        else sp.kernel_efficiency
    return float(np.interp(density, [p.density for p in pts], [p.efficiency for p in pts]))


@dataclass
class SpmmCost:
    """One unstructured sparse kernel: time, effectual MACs, and HBM bytes per operand."""

    cycles: int
    macs: int
    read_sparse_bytes: float
    read_sparse_metadata_bytes: float
    read_dense_bytes: float
    write_bytes: float
    convert_cycles: int = 0  # building the CSR operand this step (0: it was already CSR)
    convert_read_bytes: float = 0.0  # the operand read dense by the conversion
    convert_write_bytes: float = 0.0  # its CSR values, indices and pointers written


def spmm_cost(arch: Architecture, m: int, k: int, n: int, nnz: int, operand: str,
              element_bytes: float, *, groups: int = 1, convert: bool = True) -> SpmmCost:
    """Sparse ``operand`` (``a``: M×K rows M; ``b``: K×N, stored transposed with rows N) times dense,
    for ``groups`` independent ``m × k × n`` GEMMs run as one kernel (``nnz`` over all groups); with
    ``convert``, the CSR form is built this step first (its kernel is in ``cycles``)."""
    rows, other = (groups * m, n) if operand == "a" else (groups * n, m)  # CSR rows; dense row length
    g = arch.gpu
    peak = g.sms * g.tensor_cores_per_sm * g.tensor_core.fma_per_cycle  # FMAs per cycle
    size = groups * (m * k if operand == "a" else k * n)  # elements of the sparse operand
    density = nnz / size if size else 0.0
    macs = nnz * other
    values, meta = nnz * element_bytes, nnz * INDEX_BYTES + (rows + 1) * INDEX_BYTES
    dense_in = groups * (k * n if operand == "a" else m * k) * element_bytes  # the other operand
    out = groups * m * n * element_bytes
    math_c = macs * sm_cycle_scale(arch) / (efficiency(arch, max(density, 1e-9)) * peak)
    bpc = hbm_bytes_per_cycle(arch)
    mem_c = (values + meta + dense_in + out) / bpc if bpc else 0.0
    # a row's non-zeros stream in steps of threadblock_k with pipeline_stages steps in flight
    latency_c = math.ceil(nnz / max(rows, 1) / g.threadblock_k) * g.memory_latency_cycles / g.pipeline_stages
    # launch, one memory round trip before the first products, then the slowest bound
    cycles = launch_cycles(arch) + g.memory_latency_cycles + math.ceil(max(math_c, mem_c, latency_c))
    conv_c, conv_read, conv_write = 0, 0.0, 0.0
    if convert:
        conv_read, conv_write = size * element_bytes, values + meta
        conv_c = memory_kernel_cycles(arch, conv_read + conv_write, ops=size)
    return SpmmCost(cycles + conv_c, macs, values, meta, dense_in, out, conv_c, conv_read, conv_write)


def crossover_density(arch: Architecture, m: int, k: int, n: int, operand: str, element_bytes: float,
                      dense_cycles: int, *, groups: int = 1, convert: bool = True) -> float:
    """Density of the sparse operand at which the sparse kernel takes as long as the dense GEMM(s)
    (bisection on the monotone sparse time; 1.0 if the sparse kernel is never slower, 0.0 if it is
    always slower)."""
    size = groups * (m * k if operand == "a" else k * n)

    def t(d: float) -> int:
        nnz = max(1, round(d * size))
        return spmm_cost(arch, m, k, n, nnz, operand, element_bytes, groups=groups, convert=convert).cycles

    if t(1.0) <= dense_cycles:
        return 1.0
    lo, hi = 0.0, 1.0
    if t(1.0 / size) > dense_cycles:
        return 0.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if t(mid) <= dense_cycles:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class GatherCost:
    """DSG's gathered GEMM: the compacted GEMM and its gather/scatter kernels."""

    gemm: GemmCost
    gather_cycles: int
    rows: int  # gathered rows of A (rows with any needed output)
    macs: int  # MACs of the compacted GEMM
    moved_a_bytes: float  # gather: read + write of A rows
    moved_c_bytes: float  # scatter: read + write of C rows


def gathered_cost(arch: Architecture, k: int, need: np.ndarray, element_bytes: float) -> GatherCost:
    """``need``: bool ``(M, N)`` needed outputs. Tiles are counted on the spec's default tile."""
    g = arch.gpu
    rows_needed = need.any(axis=1)  # (M,)
    mr, n = int(rows_needed.sum()), need.shape[1]
    compact = need[rows_needed]  # (M', N)
    tm, tn = g.threadblock_m, g.threadblock_n
    gm, gn = -(-mr // tm), -(-n // tn)
    padded = np.zeros((gm * tm, gn * tn), dtype=bool)
    padded[:mr, :n] = compact
    tiles_needed = int(padded.reshape(gm, tm, gn, tn).any(axis=(1, 3)).sum())  # (gm, gn) -> count
    m_eff = max(1, math.ceil(mr * tiles_needed / max(gm * gn, 1)))
    gemm = gemm_cost(arch, m_eff, k, n, Operands(element_bytes, element_bytes, element_bytes))
    a_moved = 2 * mr * k * element_bytes + mr * 4  # read and write the rows, plus their indices
    c_moved = 2 * mr * n * element_bytes
    gather = memory_kernel_cycles(arch, a_moved) + memory_kernel_cycles(arch, c_moved)
    return GatherCost(gemm, gather, mr, m_eff * k * n, a_moved, c_moved)
