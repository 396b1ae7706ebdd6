"""Hardware components: frozen, hashable dataclasses, one field per parameter with its unit.

GEMM operands are named as in DESIGN.md: ``a`` (streamed, e.g. X im2col in forward), ``b``
(e.g. W) and ``c`` (the result). Components hold no defaults that pretend to be a design:
numbers with a source live in the presets (``archs/presets.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .fields import (
    MAX_HZ,
    MAX_NS,
    MIN_BANDWIDTH_BYTES_PER_S,
    MIN_BYTES_PER_CYCLE,
    MIN_EFFICIENCY,
    MIN_HZ,
    MIN_NS,
    spec,
)

Operand = Literal["a", "b", "c"]
MemoryKind = Literal["register_file", "scratchpad", "sram", "global_buffer", "shared_memory", "l1",
                     "l2", "edram", "dram", "hbm"]
OFF_CHIP = ("dram", "hbm")
LoopDim = Literal["B", "K", "C", "OY", "OX"]  # the loops a mapping tiles (hwsim.npu.loopnest.DIMS)


@dataclass(frozen=True)
class Precision:
    """Bits per element of each training tensor."""

    activation_bits: int = spec(8, doc="bits per activation (forward inputs/outputs)", gt=0, le=64)
    weight_bits: int = spec(8, doc="bits per weight", gt=0, le=64)
    gradient_bits: int = spec(16, doc="bits per activation/weight gradient", gt=0, le=64)
    psum_bits: int = spec(32, doc="bits per partial sum in the array", gt=0, le=64)


@dataclass(frozen=True)
class ComputeArray:
    """A PE array (edge NPU): ``rows × cols`` MAC units and how they handle zeros."""

    rows: int = spec(doc="PE rows", gt=0, le=2**20)
    cols: int = spec(doc="PE columns", gt=0, le=2**20)
    mac_energy_pj: float = spec(doc="energy of one performed MAC, pJ", ge=0)
    gated_mac_energy_pj: float = spec(doc="energy of a gated MAC (zero operand, no switching), pJ", ge=0)
    microarchitecture: Literal["systolic", "pe_skipping"] = spec(
        "systolic", doc="systolic: lockstep, skips only whole zero vectors/blocks; "
                        "pe_skipping: each PE skips on its own, a fold waits for its slowest PE")
    dataflow: Literal["ws", "os", "is"] = spec(
        "ws", doc="default dataflow: weight-, output-, input-stationary")
    macs_per_pe_per_cycle: int = spec(1, doc="MACs one PE completes per cycle", gt=0, le=2**20)
    register_file_tiling: bool = spec(
        False, doc="true: the per-PE register files (memories of kind register_file) hold tiles the "
                   "mapper chooses below the buffer tile (reuse inside a PE, fills from the buffer "
                   "counted, Timeloop-style spatial multicast and reduction); false: each MAC reads "
                   "them once (SCALE-Sim's PEs)")
    unroll_rows: tuple[LoopDim, ...] = spec(
        (), doc="with register_file_tiling: the loop dimensions (B, K, C, OY, OX) the mapper may unroll "
                "over the PE rows, in every pass (it searches each against each of unroll_cols); empty: "
                "the dataflow's stationary dimension of the pass (forward ws: C)")
    unroll_cols: tuple[LoopDim, ...] = spec(
        (), doc="with register_file_tiling: the loop dimensions the mapper may unroll over the PE "
                "columns; empty: the dataflow's (forward ws: K)")
    strided_input: Literal["rows_read", "bounding_box"] = spec(
        "rows_read", doc="a buffer tile of a layer whose stride exceeds its filter (a 1×1 stride-2 "
                         "downsample): rows_read: only the input rows and columns its windows read are "
                         "fetched and kept (a gathering DMA; ZigZag 3.9.1 counts this); bounding_box: every "
                         "row and column from its first window to its last (a plain rectangular DMA; "
                         "Timeloop and AccelForge count this)")
    precision: Precision = spec(Precision(), doc="bits per tensor element")
    leakage_mw: float = spec(0.0, doc="static power of the array, mW", ge=0)
    area_mm2: float = spec(0.0, doc="area of the array, mm²", ge=0)


@dataclass(frozen=True)
class VectorUnit:
    """The unit that runs non-GEMM work (BN, ReLU, pooling, optimizer, DSG/DST bookkeeping)."""

    lanes: int = spec(doc="elements processed per cycle (0 = not modelled: counted, takes no time)",
                      ge=0, le=2**30)
    op_energy_pj: float = spec(doc="energy per element operation, pJ", ge=0)
    leakage_mw: float = spec(0.0, doc="static power, mW", ge=0)
    area_mm2: float = spec(0.0, doc="area, mm²", ge=0)
    transcendental_ops: float = spec(
        4.0, doc="element operations one transcendental (exp, log, erf, tanh, rsqrt) takes, in lane "
        "slots and energy; 4: an A100 SM's FP32 add/mul/FMA throughput over its special-function "
        "throughput, 64 vs 16 results per clock (CUDA C++ Programming Guide, arithmetic instruction "
        "throughput, compute capability 8.0)", ge=1, le=1024)


@dataclass(frozen=True)
class Memory:
    """One memory level (listed innermost first; the off-chip DRAM/HBM last)."""

    name: str = spec(doc="unique name, used by links and sparse features")
    kind: MemoryKind = spec(doc="what it is (decides nothing by itself; documents the level)")
    capacity_bytes: float = spec(doc="capacity of one instance, bytes (0 = unbounded)", ge=0, le=2**60)
    read_energy_pj_per_byte: float = spec(doc="read energy, pJ per byte", ge=0)
    write_energy_pj_per_byte: float = spec(doc="write energy, pJ per byte", ge=0)
    operands: tuple[Operand, ...] = spec(("a", "b", "c"), doc="GEMM operands this level holds")
    instances: int = spec(1, doc="copies (e.g. one register file per PE)", gt=0, le=2**30)
    bandwidth_bytes_per_s: float = spec(0.0, doc="bandwidth of one instance, bytes/s (0 = unlimited)", ge=0,
                                        nonzero_ge=MIN_BANDWIDTH_BYTES_PER_S)
    metadata_read_energy_pj_per_byte: float = spec(
        -1.0, doc="metadata read energy, pJ per byte (-1 = same as data reads)", ge=-1)
    metadata_write_energy_pj_per_byte: float = spec(
        -1.0, doc="metadata write energy, pJ per byte (-1 = same as data writes)", ge=-1)
    latency_cycles: int = spec(0, doc="access latency, cycles", ge=0, le=2**40)
    double_buffered: bool = spec(False, doc="two buffer slots per operand (ping-pong)")
    leakage_mw: float = spec(0.0, doc="static power of one instance, mW", ge=0)
    area_mm2: float = spec(0.0, doc="area of one instance, mm²", ge=0)

    @property
    def off_chip(self) -> bool:
        return self.kind in OFF_CHIP


@dataclass(frozen=True)
class Link:
    """A transfer path between two memory levels; each link serves one transfer at a time."""

    name: str = spec(doc="unique name")
    source: str = spec(doc="memory the data comes from")
    destination: str = spec(doc="memory the data goes to")
    bandwidth_bytes_per_s: float = spec(doc="bandwidth, bytes/s (0 = unlimited)", ge=0,
                                        nonzero_ge=MIN_BANDWIDTH_BYTES_PER_S)
    energy_pj_per_byte: float = spec(0.0, doc="transfer energy beyond the memories' own, pJ per byte", ge=0)
    operands: tuple[Operand, ...] = spec(("a", "b", "c"), doc="operands that travel on this link")


@dataclass(frozen=True)
class RepresentationFormat:
    """How one operand is stored at one memory level (Sparseloop's representation formats)."""

    level: str = spec(doc="memory name")
    operand: Operand = spec(doc="GEMM operand")
    format: Literal["dense", "bitmap", "rle", "csr", "csc", "zvc", "ellpack_block"] = spec(
        doc="dense, bitmap (1 bit per element), rle (run lengths), csr/csc (indices + pointers), "
            "zvc (zero-value compression: bitmap + non-zeros), ellpack_block (SCALE-Sim v3)")
    metadata_bits: int = spec(1, doc="bits per metadata word (bitmap/zvc: 1 per element; rle: run "
                                     "length per non-zero; csr/csc: index per non-zero)", ge=0, le=64)
    pointer_bits: int = spec(0, doc="csr/csc: bits per row/column pointer", ge=0, le=64)


@dataclass(frozen=True)
class SparseAction:
    """Gating (saves energy, not cycles) or skipping (saves both), Sparseloop-style."""

    kind: Literal["gating", "skipping"] = spec(doc="gating or skipping")
    level: str = spec(doc="'compute' or a memory name where the action happens")
    target: Literal["a", "b", "c", "compute"] = spec(doc="what is gated or skipped")
    condition_on: tuple[Operand, ...] = spec(doc="operands whose zeros trigger it")


@dataclass(frozen=True)
class StructuredSparsity:
    """N:M structured sparsity on one operand.

    GPU-like: 2:4 sparse tensor cores (double math rate when the mask is N:M). Edge NPU (lockstep
    systolic, SCALE-Sim v3 ``[sparsity]``): the operand ``b`` is stored compressed along the
    reduction K, ``n`` slots per group of ``m`` (blocked ELLPACK), so K shrinks to about K·n/m:
    fewer row folds (ws/is), a shorter stream (os), fewer filter reads; ``math_speedup`` is not used.
    """

    n: int = spec(2, doc="at most n non-zeros ...", gt=0, le=2**10)
    m: int = spec(4, doc="... in every group of m consecutive elements", gt=0, le=2**10)
    operand: Operand = spec("b", doc="the operand that may be N:M sparse")
    math_speedup: float = spec(2.0, doc="math throughput over dense when the mask is N:M", ge=MIN_EFFICIENCY,
                               le=2**10)
    metadata_bits_per_nonzero: int = spec(2, doc="index bits stored per kept value", ge=0, le=64)
    ws_input_rereads: bool = spec(
        False, doc="edge NPU, ws: streamed inputs are read m/n times, once per compressed row "
                   "(scalesim 3.0.0 systolic_compute_ws.py)")
    split_k: bool = spec(False, doc="GPU: the N:M kernels may split K over thread blocks (PyTorch's "
                                    "semi-structured kernels do not by default)")
    kernel_tile_m: int = spec(0, doc="GPU: the N:M kernel's fixed thread-block tile along M (the dense "
                                     "operand's rows); 0: the dense GEMM heuristic's tiles", ge=0, le=2**16)
    kernel_tile_n: int = spec(0, doc="GPU: the N:M kernel's fixed tile along N (the sparse operand's "
                                     "columns); 0 together with kernel_tile_m", ge=0, le=2**16)
    kernel_tile_k: int = spec(0, doc="GPU: the N:M kernel's K per main-loop step; 0: gpu.threadblock_k",
                              ge=0, le=2**16)
    kernel_stages: int = spec(0, doc="GPU: K steps in flight in the N:M kernel; 0: gpu.pipeline_stages",
                              ge=0, le=64)
    kernel_raster: Literal["m", "n"] = spec(
        "m", doc="GPU: the N:M kernel issues thread blocks along M (the dense operand's rows) first, or "
                 "along N (the sparse operand's columns: PyTorch's CUTLASS kernel, whose A is the weight)")
    min_dense_rows: int = spec(1, doc="GPU: the dense operand's rows are padded with zeros to a multiple of "
                                      "this before the N:M kernel (a copy kernel) and the result sliced",
                               ge=1, le=2**16)
    library: Literal["cutlass", "cusparselt"] = spec(
        "cutlass", doc="GPU: the library that runs the N:M GEMM: cutlass (PyTorch's default kernel: the "
                       "fixed kernel_tile_*, split K only if split_k) or cusparselt (tile and split-K chosen "
                       "per shape, as its algorithm search does); docs/gpu.md")
    cutlass_efficiency: float = spec(
        0.0, doc="GPU: fraction of the sparse tensor-core peak the CUTLASS N:M main loop sustains "
                 "(0 = gpu.tensor_core_efficiency)", ge=0, le=1, nonzero_ge=MIN_EFFICIENCY)
    cusparselt_efficiency: float = spec(
        0.0, doc="GPU: fraction of the sparse tensor-core peak the cuSPARSELt N:M main loop sustains "
                 "(0 = gpu.tensor_core_efficiency)", ge=0, le=1, nonzero_ge=MIN_EFFICIENCY)
    cusparselt_serial_epilogue: bool = spec(
        False, doc="GPU: cuSPARSELt's kernels write a wave's C tiles after its main loops (one thread block "
                   "per SM: no other block's main loop hides the epilogue), at the HBM bandwidth when C "
                   "streams out of L2; docs/gpu.md")


@dataclass(frozen=True)
class EfficiencyPoint:
    """One point of the unstructured sparse-kernel efficiency curve."""

    density: float = spec(doc="operand density (0..1]", gt=0, le=1)
    efficiency: float = spec(doc="effectual-MAC throughput as a fraction of dense peak", ge=MIN_EFFICIENCY,
                             le=1)


@dataclass(frozen=True)
class SparseFeatures:
    """All sparse acceleration features of a machine; empty means a dense machine."""

    formats: tuple[RepresentationFormat, ...] = spec((), doc="representation formats per level")
    actions: tuple[SparseAction, ...] = spec((), doc="gating and skipping")
    structured: StructuredSparsity | None = spec(None, doc="N:M structured sparsity (GPU)")
    kernel_efficiency: tuple[EfficiencyPoint, ...] = spec(
        (), doc="unstructured sparse kernels (GPU, Sputnik-class SpMM): efficiency by density, "
                "ascending density")
    cusparse_efficiency: tuple[EfficiencyPoint, ...] = spec(
        (), doc="GPU, cuSPARSE CSR SpMM: efficiency by density, ascending density (empty = "
                "kernel_efficiency)")
    unstructured_library: Literal["sputnik", "cusparse"] = spec(
        "sputnik", doc="GPU: the unstructured SpMM library: sputnik (kernel_efficiency) or cusparse "
                       "(cusparse_efficiency)")
    unstructured_policy: Literal["auto", "dense", "sparse"] = spec(
        "auto", doc="GPU: for a non-N:M sparse operand (and DSG's output selection), auto runs the "
                    "faster of the dense tensor-core GEMM and the sparse kernel; dense or sparse force one")
    skip_zero_input_rows: bool = spec(False, doc="ReRAM: all-zero input rows are not driven")
    skip_zero_weight_columns: bool = spec(False, doc="ReRAM: all-zero weight columns are not converted")
    skip_zero_crossbars: bool = spec(False, doc="ReRAM: all-zero crossbars are not activated")


# -- GPU-like ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorCore:
    """One tensor core: its MMA shape and dense math rate."""

    fma_per_cycle: int = spec(doc="dense FP16 FMAs per clock", gt=0, le=2**20)
    fma_energy_pj: float = spec(doc="energy per FP16 FMA, pJ", ge=0)
    mma_m: int = spec(16, doc="MMA instruction M", gt=0, le=2**16)
    mma_n: int = spec(8, doc="MMA instruction N", gt=0, le=2**16)
    mma_k: int = spec(16, doc="MMA instruction K", gt=0, le=2**16)


@dataclass(frozen=True)
class GpuTransformerKernels:
    """How a GPU runs attention and the memory-bound kernels around transformer GEMMs (docs/gpu.md)."""

    attention: Literal["fused", "unfused"] = spec(
        "fused", doc="attention score/context pairs: fused (one FlashAttention-style kernel: Q, K, V tiles "
                     "in shared memory, online softmax, no score matrix in HBM; backward recomputes the "
                     "scores) or unfused (batched GEMMs with the scores and probabilities written to and "
                     "read from HBM, softmax as its own kernel)")
    flash_tile_q: int = spec(128, doc="fused forward: query rows per thread block", gt=0, le=2**16)
    flash_tile_kv: int = spec(64, doc="fused forward: key/value rows per inner step", gt=0, le=2**16)
    flash_backward_tile_q: int = spec(64, doc="fused backward: query rows per inner step", gt=0, le=2**16)
    flash_backward_tile_kv: int = spec(128, doc="fused backward: key/value rows per thread block", gt=0,
                                       le=2**16)
    flash_forward_efficiency: float = spec(
        1.0, doc="fraction of the tensor cores' peak the fused forward's main loop sustains (its softmax "
                 "and rescaling work on the CUDA cores included)", ge=MIN_EFFICIENCY, le=1)
    flash_backward_efficiency: float = spec(
        1.0, doc="the same for the fused backward (five tile GEMMs per step, dQ accumulated in FP32)",
        ge=MIN_EFFICIENCY, le=1)
    reduction_bandwidth_fraction: float = spec(
        1.0, doc="fraction of the achievable HBM bandwidth (hbm_achievable_fraction) a row-reduction "
                 "kernel (softmax, LayerNorm) reaches; elementwise kernels (GELU, dropout, adds) reach "
                 "all of it", ge=MIN_EFFICIENCY, le=1)


@dataclass(frozen=True)
class GpuCompute:
    """Streaming multiprocessors with tensor cores; GEMMs run as thread-block tiles in waves."""

    sms: int = spec(doc="streaming multiprocessors", gt=0, le=2**20)
    tensor_cores_per_sm: int = spec(doc="tensor cores per SM", gt=0, le=2**10)
    tensor_core: TensorCore = spec(doc="the tensor core")
    threadblock_m: int = spec(128, doc="thread-block tile M", gt=0, le=2**16)
    threadblock_n: int = spec(128, doc="thread-block tile N", gt=0, le=2**16)
    threadblock_k: int = spec(32, doc="thread-block tile K", gt=0, le=2**16)
    threadblocks_per_sm: int = spec(1, doc="resident thread blocks per SM (they share its tensor cores)",
                                    gt=0, le=2**10)
    warp_tile_m: int = spec(64, doc="M of the C tile one warp (mma.sync) or warpgroup (wgmma) computes; "
                                    "A and B slices are read from shared memory once per such tile", gt=0,
                             le=2**16)
    warp_tile_n: int = spec(64, doc="N of that C tile", gt=0, le=2**16)
    element_bits: int = spec(16, doc="bits per GEMM operand and output element (FP16/BF16)", gt=0, le=64)
    tensor_core_efficiency: float = spec(
        1.0, doc="fraction of the tensor cores' peak a GEMM main loop sustains", ge=MIN_EFFICIENCY, le=1)
    smem_bytes_per_cycle_per_sm: float = spec(
        0.0, doc="shared-memory bandwidth of one SM, bytes/cycle (0 = unlimited)", ge=0,
        nonzero_ge=MIN_BYTES_PER_CYCLE)
    l2_bytes_per_cycle: float = spec(
        0.0, doc="L2 bandwidth of the whole chip, bytes/cycle (0 = unlimited)", ge=0,
        nonzero_ge=MIN_BYTES_PER_CYCLE)
    memory_latency_cycles: int = spec(0, doc="latency of a global load that misses L1, cycles", ge=0,
                                      le=2**40)
    pipeline_stages: int = spec(2, doc="K-steps of operands in flight per thread block (multistage "
                                       "shared-memory pipeline)", gt=0, le=2**10)
    short_k_tile_k: int = spec(
        0, doc="K per main-loop step of the dense library's shipped multistage kernels (with "
               "short_k_stages: a K slice of at most (short_k_stages - 1) such steps is all fetched by the "
               "kernel's prologue, so a block's loads, MMAs and C stores run one after another; "
               "docs/gpu.md); 0: no such regime (warp-specialized kernels)", ge=0, le=2**16)
    short_k_stages: int = spec(0, doc="shared-memory stages of those kernels (0: no short-K regime)", ge=0,
                               le=2**10)
    smem_bytes_per_sm: float = spec(
        0.0, doc="shared memory the resident thread blocks of one SM may hold together, bytes (the largest "
                 "carve-out; 0 = unlimited): with a kernel's stages x (tm + tn) x tk operand bytes it bounds "
                 "how many blocks share an SM in the short-K regime", ge=0)
    max_split_k: int = spec(16, doc="largest split-K factor the GEMM heuristic tries (powers of two)", gt=0,
                            le=2**16)
    stream_k: bool = spec(False, doc="the dense GEMM library spreads the tiles of a last, partial wave over "
                                     "every SM along K (stream-K), paying a fix-up of partial tiles")
    kernel_launch_ns: float = spec(0.0, doc="time from one kernel's end to the next one's start, ns", ge=0,
                                   le=MAX_NS)
    sustained_clock_fraction: float = spec(
        1.0, doc="SM clock held under a sustained tensor-core load at the board power limit, as a fraction "
                 "of clock_hz; math and shared-memory time run at it, cycles are counted at clock_hz",
        ge=MIN_EFFICIENCY, le=2)
    fp16_clock_ratio: float = spec(
        1.0, doc="sustained clock with FP16 operand data relative to BF16 data (FP16's longer mantissa "
                 "toggles more bits: more power at the board limit, a lower clock); applies when "
                 "operand_dtype is fp16", ge=MIN_EFFICIENCY, le=1)
    operand_dtype: Literal["bf16", "fp16"] = spec(
        "bf16", doc="the 16-bit type the GEMM operands hold (sustained_clock_fraction is BF16's; FP16 runs "
                    "at fp16_clock_ratio of it)")
    hbm_achievable_fraction: float = spec(
        1.0, doc="fraction of the off-chip memory's bandwidth_bytes_per_s (the datasheet figure) a "
                 "streaming kernel reaches", ge=MIN_EFFICIENCY, le=1)
    sm_leakage_mw: float = spec(0.0, doc="static power per SM, mW", ge=0)
    sm_area_mm2: float = spec(0.0, doc="area per SM, mm²", ge=0)
    transformer: GpuTransformerKernels = spec(
        GpuTransformerKernels(), doc="attention and memory-bound kernels of transformers")


# -- ReRAM crossbar --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Crossbar:
    """One ReRAM crossbar array."""

    rows: int = spec(doc="word lines", gt=0, le=2**20)
    cols: int = spec(doc="bit lines", gt=0, le=2**20)
    bits_per_cell: int = spec(doc="bits stored per cell (at most 16: 65,536 conductance levels)", gt=0, le=16)
    read_cycle_ns: float = spec(doc="one analog read (one input bit-slice), ns", ge=MIN_NS, le=MAX_NS)
    power_mw: float = spec(doc="power while reading, mW", ge=0)
    area_mm2: float = spec(0.0, doc="area, mm²", ge=0)
    parallel_rows: int = spec(
        0, doc="lines driven at once in one read (0 = all rows; NeuroSim's partial parallel read: a "
               "block of rows is read in ceil(rows / parallel_rows) sequential reads)", ge=0, le=2**20)


@dataclass(frozen=True)
class Adc:
    """Analog-to-digital converter; energy per conversion = power / sample rate."""

    bits: int = spec(doc="resolution, bits: sets the energy per conversion (scaled from reference_bits) and "
                         "the largest partial sum converted without clipping (2^bits - 1)", gt=0, le=32)
    sample_rate_hz: float = spec(doc="conversions per second", ge=MIN_HZ, le=10 * MAX_HZ)
    power_mw: float = spec(doc="power at full rate at reference_bits, mW", ge=0)
    area_mm2: float = spec(0.0, doc="area, mm²", ge=0)
    reference_bits: int = spec(
        0, doc="resolution at which power_mw was measured (0 = bits); the energy per conversion scales "
               "with resolution as the SAR ADCs of hwcomponents-library isaac.py (×1.19-1.21 per bit "
               "over 4-10 bits; ×2 per bit beyond, Walden)", ge=0, le=32)
    leakage_mw: float = spec(0.0, doc="static power per ADC, mW (charged over the run time)", ge=0)

    @property
    def conversion_energy_pj(self) -> float:
        """Energy of one conversion at ``bits``, pJ: power / rate at ``reference_bits``, scaled."""
        ref = self.reference_bits or self.bits
        return self.power_mw * 1e-3 / self.sample_rate_hz * 1e12 * adc_energy_scale(self.bits, ref)


# ADC energy per conversion by resolution, relative: hwcomponents-library@8b56f7e isaac.py (Saberi
# scaling of ISAAC's 8-bit SAR ADC: 4 b 0.79, 5 b 0.99, 6 b 1.20, 7 b 1.42, 8 b 1.67, 9 b 1.97,
# 10 b 2.38 pJ at 32 nm; architecture_parameters.md §1.5). Outside 4-10 bits: ×2 per bit (Walden).
_ADC_PJ_BY_BITS = {4: 0.79, 5: 0.99, 6: 1.20, 7: 1.42, 8: 1.67, 9: 1.97, 10: 2.38}


def _adc_relative(bits: int) -> float:
    if bits < 4:
        return _ADC_PJ_BY_BITS[4] / 2.0 ** (4 - bits)
    if bits > 10:
        return _ADC_PJ_BY_BITS[10] * 2.0 ** (bits - 10)
    return _ADC_PJ_BY_BITS[bits]


def adc_energy_scale(bits: int, reference_bits: int) -> float:
    """Energy per conversion at ``bits`` over that at ``reference_bits`` (1.0 when equal)."""
    return _adc_relative(bits) / _adc_relative(reference_bits)


@dataclass(frozen=True)
class Dac:
    """Digital-to-analog converter driving one word line."""

    bits: int = spec(doc="bits applied per read cycle (1 = bit-serial inputs)", gt=0, le=64)
    power_mw: float = spec(doc="power per DAC while driving, mW", ge=0)
    area_mm2: float = spec(0.0, doc="area per DAC, mm²", ge=0)


@dataclass(frozen=True)
class Peripheral:
    """A group of circuits (registers, shift-and-add, router share...) counted in power and area."""

    name: str = spec(doc="what it is")
    power_mw: float = spec(doc="power per instance at full activity, mW", ge=0)
    count: int = spec(1, doc="instances", gt=0, le=2**30)
    area_mm2: float = spec(0.0, doc="area per instance, mm²", ge=0)


@dataclass(frozen=True)
class WriteModel:
    """ReRAM cell writes for training updates (NeuroSim V2.1's model; docs/reram.md "Training writes")."""

    pulse_energy_pj: float = spec(doc="energy of one write pulse on one cell at the on conductance, pJ "
                                      "(V_w² · G_on · pulse width)", ge=0)
    pulse_ns: float = spec(doc="width of one write pulse, ns", ge=MIN_NS, le=MAX_NS)
    endurance_cycles: float = spec(doc="write pulses a cell survives (lifetime = endurance / pulses per "
                                       "epoch of the most-pulsed cell)", ge=1)
    levels_ltp: int = spec(0, doc="pulses that take a cell across its whole conductance range when "
                                  "potentiating (NeuroSim maxNumLevelLTP); 0 = 2^bits_per_cell - 1, one "
                                  "pulse per level", ge=0, le=2**20)
    levels_ltd: int = spec(0, doc="the same when depressing (NeuroSim maxNumLevelLTD); 0 = 2^bits_per_cell "
                                  "- 1", ge=0, le=2**20)
    nonlinearity_ltp: float = spec(0.0, doc="non-linear potentiation: conductance after p pulses follows "
                                            "B(1 - exp(-p / (a · levels_ltp))), a this value (NeuroSim's "
                                            "paramA / maxLevel; smaller = more non-linear); 0 = linear",
                                   ge=0, le=1e6)
    nonlinearity_ltd: float = spec(0.0, doc="the same for depression (asymmetric when it differs); 0 = "
                                            "linear", ge=0, le=1e6)
    on_off_ratio: float = spec(0.0, doc="G_on / G_off: a pulse costs pulse_energy_pj × the cell's mean "
                                        "conductance (harmonic mean before/after, as NeuroSim) over G_on, "
                                        "at least 1; 0 = every pulse costs pulse_energy_pj",
                                ge=0, nonzero_ge=1.0)
    row_parallel: bool = spec(True, doc="a crossbar row is written at once, in a SET phase (the row's "
                                        "largest "
                                        "LTP pulse count) then a RESET phase (its largest LTD count); else "
                                        "cell by cell")
    crossbars_in_parallel: int = spec(0, doc="crossbars written at the same time (NeuroSim "
                                             "numArrayWriteParallel); 0 = all", ge=0, le=2**30)
    driver_energy_pj_per_row_pulse: float = spec(
        0.0, doc="write driver and decoder energy of one row phase pulse (selected word line), pJ", ge=0)
    driver_energy_pj_per_bit_line_pulse: float = spec(
        0.0, doc="energy of charging one bit line to V_w for one pulse of a row phase (the lines of a "
                 "row's SET cells; NeuroSim capRow1 · V_w²), pJ", ge=0)
    driver_energy_pj_per_source_line_pulse: float = spec(
        0.0, doc="energy of charging one source line to V_w for one pulse of a row phase (the lines of a "
                 "row's RESET cells; NeuroSim capCol · V_w²), pJ", ge=0)
    inhibit_unselected_lines: bool = spec(
        False, doc="the other mapped columns of a crossbar have their opposite line raised to V_w during "
                   "a row phase (source lines in SET, bit lines in RESET) so their cells keep their "
                   "level, and pay for it (1T1R arrays, NeuroSim V2.1)")
    driver_energy_pj_per_crossbar: float = spec(
        0.0, doc="decoders and switch matrices of one crossbar written in a step, pJ", ge=0)
    write_verify: bool = spec(False, doc="each pulse of a row phase is followed by a read-verify of the row")
    verify_ns: float = spec(0.0, doc="time of one read-verify, ns", ge=0)
    verify_energy_pj_per_cell: float = spec(0.0, doc="energy of reading back one cell in a verify, pJ", ge=0)


@dataclass(frozen=True)
class ReramCompute:
    """Chip → tiles → in-situ MAC units (IMAs) → crossbars, with ADCs and DACs."""

    tiles: int = spec(doc="tiles per chip", gt=0, le=2**20)
    imas_per_tile: int = spec(doc="in-situ MAC units per tile", gt=0, le=2**20)
    crossbars_per_ima: int = spec(doc="crossbars per IMA", gt=0, le=2**20)
    crossbar: Crossbar = spec(doc="the crossbar")
    adcs_per_ima: int = spec(doc="ADCs per IMA (shared by its crossbars' columns)", gt=0, le=2**20)
    adc: Adc = spec(doc="the ADC")
    dacs_per_ima: int = spec(doc="DACs per IMA", gt=0, le=2**20)
    dac: Dac = spec(doc="the DAC")
    write: WriteModel = spec(doc="cell writes for weight updates")
    input_bits: int = spec(16, doc="bits per input, applied bit-serially through the DACs", gt=0, le=64)
    weight_bits: int = spec(16, doc="bits per weight, sliced over bits_per_cell cells (at least 2: a signed "
                                    "weight needs a sign and a magnitude bit)", ge=2, le=32)
    shift_add_energy_pj: float = spec(0.0, doc="energy per shift-and-add of one partial result, pJ", ge=0)
    accumulation_energy_pj_per_conversion: float = spec(
        0.0, doc="energy of the digital accumulation (adders, registers, shift-and-add of input and weight "
                 "bits) charged per ADC conversion, pJ (NeuroSim's subarray-level accumulation; 0 where the "
                 "peripherals' power already covers it, as in the ISAAC table)", ge=0)
    ima_peripherals: tuple[Peripheral, ...] = spec((), doc="other circuits in each IMA")
    tile_peripherals: tuple[Peripheral, ...] = spec((), doc="other circuits in each tile")
    signed_weights: Literal["offset", "differential", "differential_subtract"] = spec(
        "offset", doc="signed weights: offset (biased unsigned code in one column set, the bias "
                      "removed digitally; ISAAC), differential (a positive and a negative column set, "
                      "magnitudes in weight_bits - 1 bits, each column converted) or differential_subtract "
                      "(the same cells, the pair's currents subtracted in the array before one conversion)")
    transposed_read: bool = spec(
        False, doc="the periphery can drive bit lines and sense word lines, so backward-data runs as a "
                   "transposed read of the same crossbars (else on the digital unit)")
    replicate_layers: bool = spec(
        True, doc="copy layers into spare IMAs to balance the inter-layer pipeline (ISAAC, PipeLayer)")
    max_replicas: int = spec(0, doc="most copies of one layer (0 = as many as fit; NeuroSim speedUpDegree)",
                             ge=0, le=2**30)
    tile_input_buffer_bandwidth_bytes_per_s: float = spec(
        0.0, doc="bandwidth of one tile's input buffer, bytes/s: a layer's input activations are written "
                 "into and read out of the input buffers of the tiles of one copy, in series with the "
                 "crossbar time (NeuroSim Tile.cpp; 0 = unlimited, no time)", ge=0,
        nonzero_ge=MIN_BANDWIDTH_BYTES_PER_S)
    tile_output_buffer_bandwidth_bytes_per_s: float = spec(
        0.0, doc="bandwidth of one tile's output buffer, bytes/s: a layer's partial outputs "
                 "(output_buffer_bits each) pass through the output buffers of the tiles of one copy, in "
                 "series with the crossbar time (NeuroSim Tile.cpp; 0 = unlimited, no time)", ge=0,
        nonzero_ge=MIN_BANDWIDTH_BYTES_PER_S)
    output_buffer_bits: int = spec(
        0, doc="bits of one output value in the tile output buffer (NeuroSim: the tile adder tree's "
               "numStage + numAdderBit; 0 = input_bits)", ge=0, le=64)
    interconnect_bandwidth_bytes_per_s: float = spec(
        0.0, doc="bandwidth of the chip interconnect (global bus) that carries every layer's input and "
                 "output activations (input_bits each), bytes/s, in series with the crossbar time "
                 "(NeuroSim Chip.cpp GBus; 0 = unlimited, no time)", ge=0,
        nonzero_ge=MIN_BANDWIDTH_BYTES_PER_S)
    tile_input_buffer_energy_pj_per_bit: float = spec(
        0.0, doc="energy of one input bit written into and read out of a tile input buffer, pJ (the "
                 "M·K·input_bits inputs a crossbar pass streams; 0 where the tile peripherals' power covers "
                 "it, as in the ISAAC table)", ge=0)
    tile_output_buffer_energy_pj_per_bit: float = spec(
        0.0, doc="energy of one output bit written into and read out of a tile output buffer, pJ (the "
                 "M·N·output_buffer_bits partial outputs of a pass)", ge=0)
    tile_interconnect_energy_pj_per_bit: float = spec(
        0.0, doc="energy of one bit over the H-tree inside a tile, pJ (the pass's inputs and outputs, "
                 "input_bits and output_buffer_bits each)", ge=0)
    global_buffer_energy_pj_per_bit: float = spec(
        0.0, doc="energy of one bit read from or written to the chip's global buffer, pJ (the pass's "
                 "M·(K + N)·input_bits inputs and outputs)", ge=0)
    interconnect_energy_pj_per_bit: float = spec(
        0.0, doc="energy of one bit over the chip interconnect (global H-tree or bus) between the global "
                 "buffer and the layer's tiles, pJ (the pass's M·(K + N)·input_bits inputs and outputs)",
        ge=0)
    dram_energy_pj_per_bit: float = spec(
        0.0, doc="energy of one bit of off-chip DRAM traffic, pJ: a training forward pass stores its "
                 "input activations (input_bits each) for the weight gradient", ge=0)
    replicas_in_training: Literal["rewritten", "none"] = spec(
        "none", doc="layer copies when the trace trains: rewritten (the copies made for forward throughput "
                    "are kept and every copy is rewritten from the master copy each step: writes × copies, "
                    "the changed weights sent to each copy over the first link) or none (one copy per layer "
                    "while training; replicate_layers then applies to inference traces only)")
    weight_range_max: float = spec(
        0.0, doc="the weight the largest conductance code stands for (NeuroSim algoWeightMax); the range is "
                 "fixed for the whole run, weights beyond it clip; 0 = max|W| of the layer at its first "
                 "recorded update", ge=0)
    rescale_every_step: bool = spec(
        False, doc="recompute the range from max|W| at every step; the cells the new scale re-encodes are "
                   "written and charged")
    digital_macs_per_cycle: int = spec(
        0, doc="MACs per clock of the digital MAC array that runs the GEMMs off the crossbars (weight "
               "gradient; backward-data without transposed_read); 0 = the vector unit, one op per MAC",
        ge=0, le=2**30)
    digital_mac_energy_pj: float = spec(0.0, doc="energy of one MAC on the digital MAC array, pJ", ge=0)
    activation_products: Literal["digital", "crossbar_writes"] = spec(
        "digital", doc="products of two activations (attention's Q·Kᵀ and P·V, matmul records): digital "
                       "(the digital unit, as the weight gradient) or crossbar_writes (each GEMM's B operand "
                       "written into the crossbars the weights leave free, then A streamed through them; "
                       "write energy, latency and wear from reram.write); the report gives both costs")
    weight_residency: Literal["reprogram", "resident"] = spec(
        "reprogram", doc="when the model's weights do not fit the crossbars: reprogram (the layers, in "
                         "forward order, are cut into programs that fit the chip and each program is written "
                         "into the crossbars before its layers run, every time the iteration needs it; the "
                         "writes and the weights' off-chip fetch are priced with reram.write and shown in "
                         "reram_reprogram_* columns) or resident (refuse: every weight must stay in the "
                         "crossbars). A model that fits is resident either way")
