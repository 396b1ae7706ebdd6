"""GPU presets: cards, not chips. Every number carries its source; "[ref §x]" points into
``../shared/reference/architecture_parameters.md``; the fitted constants name the points of
``tests/data/gpu_published.csv`` they were fitted on (column ``split == fit``), and docs/gpu.md
tabulates all of them.

A card is its chip (SMs, tensor cores, caches) plus what the board lets the chip do: the clock the
SMs hold under a sustained tensor-core load at the board power limit (``sustained_clock_fraction`` of
``clock_hz``) and the HBM bandwidth a streaming kernel reaches (``hbm_achievable_fraction`` of the
datasheet's); fractions, so that a sweep over the clock or the bandwidth still moves them. The per-SM-cycle
efficiency of a library's main loop is a property of the chip generation and the library, shared by
every card of that generation.
"""

from __future__ import annotations

from .architecture import Architecture
from .components import (
    EfficiencyPoint,
    GpuCompute,
    GpuTransformerKernels,
    Memory,
    SparseFeatures,
    StructuredSparsity,
    TensorCore,
    VectorUnit,
)

PJ_PER_BIT = 8.0  # pJ/bit -> pJ/byte
# A100: 826 mm² die for the full GA100's 128 SMs [ref §3.1]; per SM this spreads everything on the die
# (L2, HBM PHYs, NVLink) over the SMs, so it is an upper bound on an SM's own area [derived].
A100_DIE_MM2_PER_SM = 826 / 128

# -- library efficiencies: fraction of the tensor cores' peak per SM cycle a main loop sustains ----
# [fitted] cuBLAS dense on Ampere, on the A100 SXM MAMF points (mamf_a100sxm_1, _2) at 1.41 GHz.
AMPERE_DENSE_EFFICIENCY = 0.8841
# [fitted] cuBLAS dense on Hopper, on the H100 SXM MAMF point (mamf_h100sxm_1) at 1.83 GHz.
HOPPER_DENSE_EFFICIENCY = 0.8399
# [fitted] PyTorch's CUTLASS 2:4 kernel (128×128×64, 3 stages) on Ampere, on PR #90119's CUTLASS
# speedups at the largest batches (pr90119_cutlass_s1_b256, pr90119_cutlass_s2_b16). Below the dense
# loop's: the block is shared-memory bound in the model and sustains less of the sparse peak.
AMPERE_CUTLASS_24_EFFICIENCY = 0.7326
# [fitted] cuSPARSELt 2:4 on Ampere, on PR #90119's cuSPARSELt speedups (pr90119_cslt_s1_b256,
# pr90119_cslt_s2_b16), with its C writes after the main loops (cusparselt_serial_epilogue): close to
# the dense loop's, where a main-loop efficiency alone had to split two shape families' errors.
AMPERE_CUSPARSELT_24_EFFICIENCY = 0.7966
# [fitted] FP16 operand data runs at a lower sustained clock than BF16 at the board power limit (FP16's
# 10-bit mantissa toggles more bits per FMA than BF16's 7): the ratio of the FP16 to the BF16 clock that
# puts zzc0721 #79's FP16 8192³ (736.2 TFLOPS, zzc79_h100sxm_fp16_8192) on its BF16 run (797.5, same
# card, same session) on an H100 SXM at 700 W, and #95's (437.1 vs 492.8, zzc95_h100pcie_fp16_8192) on an
# H100 PCIe at 350 W. [assumption] Other cards take the ratio of their board class: the A100 SXM4
# (400 W) and H200 the H100 SXM's, the A100 PCIe (300 W) the H100 PCIe's. (The BF16 points fit the
# clocks and efficiencies; the FP16 ones then only this ratio.)
HOPPER_SXM_FP16_CLOCK_RATIO = 0.8999
H100_PCIE_FP16_CLOCK_RATIO = 0.8854
# [assumption] Hopper's 2:4 libraries: no Hopper 2:4 fit point; the Ampere values (and cuSPARSELt's
# sm90 kernels, warp-specialized, overlap their epilogue: no serial epilogue).
HOPPER_CUTLASS_24_EFFICIENCY = AMPERE_CUTLASS_24_EFFICIENCY
HOPPER_CUSPARSELT_24_EFFICIENCY = AMPERE_CUSPARSELT_24_EFFICIENCY

# Unstructured SpMM, Sputnik (Gale et al. SC'20) on the CUDA cores, FP32: effectual-FMA throughput as a
# fraction of the dense FP16 tensor-core peak, by density of the sparse operand. [fitted] per density
# on the M = 1024 rows (20 shapes each) of M-H482/NM-SpMM's A100 PCIe 80GB Sputnik timings
# (tests/data/gpu_published.csv, nmspmm_sputnik_*_1024x*: median signed error zero per level); the
# other 320 rows (M = 256, 512, 2048, 4096) are held out. Against the A100's FP32 peak (1/16 of the
# tensor cores') these are 0.16-0.24: the rate falls as the operand gets sparser. Linear between the
# knots, clamped outside. [assumption] H100: the same fractions (its SM doubles FP32 lanes and tensor
# FMAs alike).
SPUTNIK_DENSITIES = (0.125, 0.25, 0.375, 0.5)
SPUTNIK_CURVE = (0.01179, 0.013, 0.0148, 0.01574)
# [fitted] cuSPARSE CSR SpMM through PyTorch's sparse CSR matmul, on goat_h100sxm_csr78 (H100 SXM,
# 8192³ FP16 at density 0.22, 70.05 ms): 0.22 · 8192³ effectual FMAs in 70.05 ms against 132 · 4 · 512
# FMAs per cycle at 1.83 GHz. One point: flat in density.
CUSPARSE_EFFICIENCY = 0.22 * 8192**3 / 70.052e-3 / (132 * 4 * 512 * 1.83e9)

# -- transformer kernels (docs/gpu.md, "Attention and memory-bound kernels") ----------------------
# [fitted] FlashAttention-2's forward on Ampere (head dim 128), on gputravel_fa2_b16_s1024 of
# tests/data/gpu_transformer_published.csv (liangan1/GPU_travel performance/flash-attn/README.md:
# batch 16, 32 heads, 1024 x 1024, 1.547 ms); the other rows of that table are held out.
AMPERE_FLASH_FORWARD_EFFICIENCY = 0.578
# [assumption] its backward: the forward's efficiency times FlashAttention-2's backward/forward
# throughput ratio on an RTX 4090 (sm89; apache/tvm tl_doc/flash_perf.md, head dim 128, 2k: 124.57 /
# 169.28 TFLOPs/s), set so the model's backward/forward throughput at 2k, head dim 128 is that ratio.
AMPERE_FLASH_BACKWARD_EFFICIENCY = 0.45
# [fitted] PyTorch's LayerNorm kernel reaches this fraction of the achievable HBM bandwidth, on
# liger_ln_fwd_8192 (LinkedIn Liger-Kernel benchmark/data/all_benchmark_data.csv, A100-SXM4-80GB,
# torch.nn.LayerNorm forward, 4096 x 8192 FP32, 0.2576 ms); the other widths are held out.
REDUCTION_BANDWIDTH_FRACTION = 0.58


def _transformer() -> GpuTransformerKernels:
    """FlashAttention-2's tiles for head dim 128 on sm8x (forward 128 query rows x 64 key rows per step,
    backward 128 key rows per block x 64 query rows per step: flash-attention csrc hdim128 kernel traits)
    [assumption: read from the kernel launch templates' names, not timed]; fitted efficiencies above.
    [assumption] Hopper runs the same FlashAttention-2 kernels at the same efficiencies (no H100 fit)."""
    return GpuTransformerKernels(attention="fused", flash_tile_q=128, flash_tile_kv=64,
                                 flash_backward_tile_q=64, flash_backward_tile_kv=128,
                                 flash_forward_efficiency=AMPERE_FLASH_FORWARD_EFFICIENCY,
                                 flash_backward_efficiency=AMPERE_FLASH_BACKWARD_EFFICIENCY,
                                 reduction_bandwidth_fraction=REDUCTION_BANDWIDTH_FRACTION)


# -- achievable HBM bandwidth ---------------------------------------------------------------------
# A100 40 GB: a memory-copy kernel measures 1355 GB/s of the datasheet's 1555 (PTsolvers/
# gpu-workshop-JuliaCon23 issue #7, the maintainer's measured reference) [src].
A100_40GB_HBM_ACHIEVED = 1355e9
# A800 80GB PCIe (the A100 80GB PCIe's memory system, 1935 GB/s datasheet): 1727 GB/s measured
# (mli/transformers-benchmarks issue #4) [src]; other cards: the same fraction of their datasheet
# bandwidth [derived from that fraction; an assumption for HBM3/HBM3e].
HBM_ACHIEVED_FRACTION = 1727 / 1935
# H100 PCIe and H200: a streaming read beyond the L2 reaches 1.97 TB/s of 2.0 and 3.89 TB/s of 4.8
# (te42kyfo/gpu-benches gpu-l2-cache/h100_pcie.txt and h200.txt, data sets of 0.1-1 GB) [src].
H100_PCIE_HBM_ACHIEVED = 1.97e12
H200_HBM_ACHIEVED = 3.89e12

# -- achievable L2 bandwidth ----------------------------------------------------------------------
# What a kernel streaming an L2-resident data set reaches, bytes/s, from te42kyfo/gpu-benches
# gpu-l2-cache (data sets of 2-28 MB: past the near partition's share, inside the L2) [src]:
# A100 80GB 5.4 TB/s (a100_80.txt: 5.3-5.5), three quarters of the whitepaper's 5120 B/clk at
# 1.41 GHz (7.2 TB/s); H100 PCIe 6.9 TB/s (h100_pcie.txt, 10-33 MB); the 132-SM GH100 of the H200
# 9.8 TB/s (h200.txt, 10-40 MB), also taken for the H100 SXM (same chip, same L2) [assumption].
# A thread block's panels come through this bandwidth, so it bounds small tiles (docs/gpu.md).
A100_L2_ACHIEVED = 5.4e12
H100_PCIE_L2_ACHIEVED = 6.9e12
GH100_132SM_L2_ACHIEVED = 9.8e12


def _gpu(name: str, description: str, *, clock_hz: float, sustained_clock_hz: float, sms: int,
         fma_per_cycle: int, smem_bytes: float, l2_bytes: float, hbm_bytes: float, hbm_bytes_per_s: float,
         hbm_achievable_bytes_per_s: float, hbm_pj_per_bit: float, fp32_lanes_per_sm: int,
         l2_bytes_per_cycle: float, warp_tile: tuple[int, int], dense_efficiency: float,
         cutlass_efficiency: float, cusparselt_efficiency: float, library: str,
         fp16_clock_ratio: float, sm_area_mm2: float = 0.0, stream_k: bool = False,
         cusparselt_serial_epilogue: bool = False, short_k: tuple[int, int] = (0, 0),
         smem_bytes_per_sm: float = 0.0,
         nm_kernel: tuple[int, int, int, int, str] = (0, 0, 0, 0, "m")) -> Architecture:
    return Architecture(
        name=name, family="gpu", description=description, clock_hz=clock_hz, tech_nm=45,
        gpu=GpuCompute(sms=sms, tensor_cores_per_sm=4,  # 4 TCs per SM on A100 and H100 [ref §3.1]
                       tensor_core=TensorCore(fma_per_cycle=fma_per_cycle,
                                              fma_energy_pj=1.5),  # FP16 mult 1.1 + add 0.4 [ref §1.1]
                       # default tile 128×128×32, the middle of cuBLAS's tile set (NVIDIA "Matrix
                       # Multiplication Background" guide §2.3); the heuristic also tries the others
                       threadblock_m=128, threadblock_n=128, threadblock_k=32, threadblocks_per_sm=1,
                       warp_tile_m=warp_tile[0], warp_tile_n=warp_tile[1],
                       element_bits=16,  # FP16/BF16 training [ref §3.2: torchao runs FP16]
                       tensor_core_efficiency=dense_efficiency,
                       # CUDA C++ Programming Guide, compute capability 8.x/9.0: 32 banks × 4 bytes
                       # per clock per SM
                       smem_bytes_per_cycle_per_sm=128,
                       l2_bytes_per_cycle=l2_bytes_per_cycle,
                       # [assumption] a global load that misses L1 takes ~600 cycles on A100/H100
                       # (microbenchmark studies report several hundred ns; check before quoting)
                       memory_latency_cycles=600,
                       pipeline_stages=4,  # CUTLASS sm80 multistage GEMMs keep 3-5 K-steps in flight
                       short_k_tile_k=short_k[0], short_k_stages=short_k[1],
                       smem_bytes_per_sm=smem_bytes_per_sm,
                       max_split_k=16,
                       stream_k=stream_k,
                       # [assumption] ~2 µs between dependent kernels (launch + drain), the order
                       # NVIDIA's CUDA Graphs blog gives for per-kernel launch overhead
                       kernel_launch_ns=2000.0,
                       sustained_clock_fraction=sustained_clock_hz / clock_hz,
                       fp16_clock_ratio=fp16_clock_ratio,
                       hbm_achievable_fraction=hbm_achievable_bytes_per_s / hbm_bytes_per_s,
                       sm_area_mm2=sm_area_mm2, transformer=_transformer()),
        vector_unit=VectorUnit(lanes=sms * fp32_lanes_per_sm, op_energy_pj=0.9),  # FP32 add [ref §1.1]
        memories=(
            Memory(name="smem", kind="shared_memory", capacity_bytes=smem_bytes, instances=sms,
                   read_energy_pj_per_byte=3.9, write_energy_pj_per_byte=3.9),  # 256 KiB SMEM [ref §1.3]
            Memory(name="l2", kind="l2", capacity_bytes=l2_bytes,
                   read_energy_pj_per_byte=12.5, write_energy_pj_per_byte=12.5),  # 1 MB SRAM [ref §1.1]
            Memory(name="hbm", kind="hbm", capacity_bytes=hbm_bytes, bandwidth_bytes_per_s=hbm_bytes_per_s,
                   read_energy_pj_per_byte=hbm_pj_per_bit * PJ_PER_BIT,
                   write_energy_pj_per_byte=hbm_pj_per_bit * PJ_PER_BIT),
        ),
        sparse=SparseFeatures(
            structured=StructuredSparsity(n=2, m=4, operand="b", math_speedup=2.0,  # [ref §3.2]
                                          metadata_bits_per_nonzero=2,  # 2-bit index per kept value
                                          split_k=False,  # PyTorch's CUTLASS kernels: no split-K
                                          kernel_tile_m=nm_kernel[0], kernel_tile_n=nm_kernel[1],
                                          kernel_tile_k=nm_kernel[2], kernel_stages=nm_kernel[3],
                                          kernel_raster=nm_kernel[4],
                                          # PyTorch pads the dense operand's rows to a multiple of 8 for
                                          # FP16 (torch/sparse/semi_structured.py, _DTYPE_SHAPE_CONSTRAINTS
                                          # dense_min_rows, CUTLASS and cuSPARSELt alike; 32 in 2.1 per
                                          # pytorch#111339)
                                          min_dense_rows=8,
                                          library=library,  # type: ignore[arg-type]
                                          cutlass_efficiency=cutlass_efficiency,
                                          cusparselt_efficiency=cusparselt_efficiency,
                                          cusparselt_serial_epilogue=cusparselt_serial_epilogue),
            kernel_efficiency=tuple(EfficiencyPoint(density=d, efficiency=e)
                                    for d, e in zip(SPUTNIK_DENSITIES, SPUTNIK_CURVE, strict=True)),
            cusparse_efficiency=(EfficiencyPoint(density=0.01, efficiency=CUSPARSE_EFFICIENCY),
                                 EfficiencyPoint(density=1.0, efficiency=CUSPARSE_EFFICIENCY)),
            unstructured_library="sputnik",
            unstructured_policy="auto",
        ),
    )


# PyTorch's CUTLASS 2:4 kernel for FP16/BF16 on sm8x ships one configuration: threadblock 128×128×64,
# 3 stages, split-K 1, identity swizzle with the weight as CUTLASS's A, so blocks step along the
# weight's output rows (our N) first (aten/src/ATen/native/sparse/cuda/SparseSemiStructuredLinear.cu).
PYTORCH_CUTLASS_24 = (128, 128, 64, 3, "n")

# cuBLAS's FP16/BF16 tensor-core GEMMs on sm80 step 64 along K with 3 shared-memory stages in their
# large tiles: the kernels PyTorch's matmul launches on an A100 are named
# ampere_{fp16,bf16}_s16816gemm_{fp16,bf16}_{256x128,128x256,128x128,256x64}_ldg8_f2f_stages_64x3_{nn,tn}
# in public Nsight profiles, where "64x3" is the K step x the stages (NVIDIA developer forum, "Name
# explain about stages_64x3") [src]. A 256x128 block then holds 3 x (256 + 128) x 64 x 2 B = 144 KB of
# operands, a 128x128 one 96 KB: one block per SM in 164 KB (docs/gpu.md, "Short K").
CUBLAS_SM80_TILE_K_STAGES = (64, 3)


def _a100(name: str, description: str, *, hbm_bytes: float, hbm_bytes_per_s: float, achieved: float,
          sustained_clock_hz: float, fp16_clock_ratio: float = HOPPER_SXM_FP16_CLOCK_RATIO) -> Architecture:
    """The GA100 chip of every A100 card [ref §3.1, §5.2]."""
    return _gpu(name, description, clock_hz=1.41e9, sustained_clock_hz=sustained_clock_hz, sms=108,
                fp16_clock_ratio=fp16_clock_ratio,
                fma_per_cycle=256, smem_bytes=192 * 1024,  # 192 KB L1/smem [ref §3.1]
                l2_bytes=40e6, hbm_bytes=hbm_bytes, hbm_bytes_per_s=hbm_bytes_per_s,
                hbm_achievable_bytes_per_s=achieved,
                hbm_pj_per_bit=3.9,  # NeuroSim DRAM.cpp HBM2 [ref §1.4]
                fp32_lanes_per_sm=64,  # 6912 FP32 lanes / 108 SMs [ref §3.1]
                l2_bytes_per_cycle=A100_L2_ACHIEVED / 1.41e9,  # measured, per clock_hz cycle [src]
                warp_tile=(64, 64),  # CUTLASS sm80 tensor-op GEMMs: 64×64 warp tiles (ldmatrix + mma.sync)
                dense_efficiency=AMPERE_DENSE_EFFICIENCY, cutlass_efficiency=AMPERE_CUTLASS_24_EFFICIENCY,
                cusparselt_efficiency=AMPERE_CUSPARSELT_24_EFFICIENCY,
                library="cutlass",  # PyTorch's semi-structured default on sm8x [issue 24]
                # [fitted structure] cuSPARSELt on Ampere writes a wave's C after its main loops: at the
                # same FLOPs and HBM bytes, PR #90119's cuSPARSELt linear takes 0.61 ms when it writes
                # 75 MB of C and 0.83 ms when it writes 302 MB (docs/gpu.md, "2:4 structured sparsity")
                cusparselt_serial_epilogue=True,
                short_k=CUBLAS_SM80_TILE_K_STAGES,
                smem_bytes_per_sm=164 * 1024,  # [src] CUDA C++ Programming Guide, compute capability 8.0
                sm_area_mm2=A100_DIE_MM2_PER_SM, nm_kernel=PYTORCH_CUTLASS_24)


def gpu_a100() -> Architecture:
    """A100 SXM4 40 GB [ref §3.1, §5.2; NVIDIA A100 datasheet]."""
    # [src] NVIDIA/cutlass issue #408: NVIDIA's engineer ran the sparse GEMM with the clock locked at
    # 1410 MHz and the power limit at 400 W: the SXM4 card holds its boost clock on tensor-core work.
    return _a100("gpu-a100", "A100 SXM4 40 GB: 108 SMs, 4 tensor cores each at 256 FP16 FMA/clock, "
                 "1.41 GHz boost held at 400 W, HBM2 1555 GB/s (1355 GB/s reached by a copy kernel); "
                 "2:4 through PyTorch's CUTLASS kernel (docs/gpu.md).",
                 hbm_bytes=40e9, hbm_bytes_per_s=1555e9, achieved=A100_40GB_HBM_ACHIEVED,
                 sustained_clock_hz=1.41e9)


def gpu_a100_80gb() -> Architecture:
    """A100 SXM4 80 GB [NVIDIA A100 datasheet: HBM2e 2039 GB/s, 400 W]."""
    return _a100("gpu-a100-80gb", "A100 SXM4 80 GB: the GA100 of gpu-a100 (1.41 GHz held at 400 W) with "
                 "80 GB HBM2e at 2039 GB/s (datasheet; achievable: the measured A100 80GB PCIe fraction).",
                 hbm_bytes=80e9, hbm_bytes_per_s=2039e9, achieved=2039e9 * HBM_ACHIEVED_FRACTION,
                 sustained_clock_hz=1.41e9)


# [fitted] A100 80GB PCIe at its 300 W limit: the clock (as a fraction of 1.41 GHz) that puts the
# GA100's dense efficiency on the A100 PCIe MAMF point mamf_a100pcie_1 (252.9 TFLOPS).
A100_PCIE_SUSTAINED_CLOCK_FRACTION = 0.942


def gpu_a100_80gb_pcie() -> Architecture:
    """A100 80 GB PCIe [NVIDIA A100 datasheet: HBM2e 1935 GB/s, 300 W]."""
    return _a100("gpu-a100-80gb-pcie", "A100 80 GB PCIe: the GA100 at 300 W (sustained clock fitted on "
                 "a public matmul measurement, docs/gpu.md) with 80 GB HBM2e at 1935 GB/s (1727 GB/s "
                 "measured).",
                 hbm_bytes=80e9, hbm_bytes_per_s=1935e9, achieved=1727e9,
                 sustained_clock_hz=A100_PCIE_SUSTAINED_CLOCK_FRACTION * 1.41e9,
                 fp16_clock_ratio=H100_PCIE_FP16_CLOCK_RATIO)


def _h100(name: str, description: str, *, sms: int, clock_hz: float, sustained_clock_hz: float,
          hbm_bytes: float, hbm_bytes_per_s: float, hbm_pj_per_bit: float, l2_bytes_per_s: float,
          hbm_achievable_bytes_per_s: float = 0.0,
          fp16_clock_ratio: float = HOPPER_SXM_FP16_CLOCK_RATIO) -> Architecture:
    """The GH100 chip [ref §3.1, §5.2]: 2:4 through cuSPARSELt (PyTorch's path on sm90)."""
    return _gpu(name, description, clock_hz=clock_hz, sustained_clock_hz=sustained_clock_hz, sms=sms,
                fp16_clock_ratio=fp16_clock_ratio,
                fma_per_cycle=512, smem_bytes=228 * 1024,  # 228 KB smem [ref §3.1]
                l2_bytes=50e6, hbm_bytes=hbm_bytes, hbm_bytes_per_s=hbm_bytes_per_s,
                hbm_achievable_bytes_per_s=(hbm_achievable_bytes_per_s
                                            or hbm_bytes_per_s * HBM_ACHIEVED_FRACTION),
                hbm_pj_per_bit=hbm_pj_per_bit,
                fp32_lanes_per_sm=128,  # H100 SM: 128 FP32 lanes [paper: NVIDIA H100 whitepaper]
                l2_bytes_per_cycle=l2_bytes_per_s / clock_hz,  # measured L2 bandwidth [src], per cycle
                warp_tile=(64, 256),  # Hopper wgmma: a warpgroup computes 64×N, N up to 256 (PTX ISA)
                dense_efficiency=HOPPER_DENSE_EFFICIENCY, cutlass_efficiency=HOPPER_CUTLASS_24_EFFICIENCY,
                cusparselt_efficiency=HOPPER_CUSPARSELT_24_EFFICIENCY, library="cusparselt",
                # [assumption] no short-K regime: Hopper's warp-specialized persistent kernels load the next
                # tile's operands in a producer warp while the consumers compute and store (CUTLASS
                # media/docs/cpp/efficient_gemm.md, "Warp Specialization"); 228 KB: [ref §3.1]
                smem_bytes_per_sm=228 * 1024,
                # Hopper GEMM libraries schedule persistent thread blocks and spread a partial last wave
                # along K (CUTLASS 3 sm90_tile_scheduler_stream_k.hpp) [src]; that cuBLAS does so on
                # sm90 is an [assumption] the H100 PCIe 2048³-4096³ timings support (docs/gpu.md)
                stream_k=True)


def gpu_h100() -> Architecture:
    """H100 SXM5 80 GB [ref §3.1, §5.2]."""
    return _h100("gpu-h100", "H100 SXM5 80 GB: 132 SMs, 4 tensor cores each at 512 FP16 FMA/clock, "
                 "1.83 GHz at 700 W, HBM3 3.35 TB/s (architecture_parameters.md §3.1, §5.2).",
                 sms=132, clock_hz=1.83e9,
                 sustained_clock_hz=1.83e9,  # [assumption] the clock of NVIDIA's 989 TFLOPS held at 700 W
                 hbm_bytes=80e9, hbm_bytes_per_s=3.35e12, l2_bytes_per_s=GH100_132SM_L2_ACHIEVED,
                 hbm_pj_per_bit=4.05)  # hwcomponents-cacti HBM3 [ref §1.4]


# [fitted] H100 PCIe at its 350 W limit: the clock (as a fraction of 1.62 GHz) that puts the GH100's
# dense efficiency on zzc95_h100pcie_bf16_8192 (492.8 TFLOPS at 8192³).
H100_PCIE_SUSTAINED_CLOCK_FRACTION = 0.7871


def gpu_h100_pcie() -> Architecture:
    """H100 PCIe 80 GB [NVIDIA H100 datasheet: 114 SMs, 756 TFLOPS FP16 dense, HBM2e 2.0 TB/s, 350 W]."""
    # 756 TFLOPS over 114 SMs × 4 TCs × 512 FMA × 2 is a 1.62 GHz clock [derived]
    return _h100("gpu-h100-pcie", "H100 PCIe 80 GB: 114 SMs of the GH100, 756 TFLOPS FP16 dense at 1.62 GHz "
                 "on paper, clock under the 350 W limit fitted on a public matmul measurement "
                 "(docs/gpu.md), HBM2e 2.0 TB/s.",
                 sms=114, clock_hz=1.62e9,
                 sustained_clock_hz=H100_PCIE_SUSTAINED_CLOCK_FRACTION * 1.62e9,
                 fp16_clock_ratio=H100_PCIE_FP16_CLOCK_RATIO,
                 hbm_bytes=80e9, hbm_bytes_per_s=2.0e12, hbm_achievable_bytes_per_s=H100_PCIE_HBM_ACHIEVED,
                 l2_bytes_per_s=H100_PCIE_L2_ACHIEVED,
                 hbm_pj_per_bit=3.9)  # HBM2e: NeuroSim's HBM2 figure [ref §1.4]


def gpu_h200() -> Architecture:
    """H200 SXM 141 GB: H100 compute with HBM3e at 4.8 TB/s [NVIDIA H200 product page]."""
    return _h100("gpu-h200", "H200 SXM: the GH100 compute of the H100 SXM (132 SMs, 989 TFLOPS FP16 "
                 "dense) with 141 GB HBM3e at 4.8 TB/s (NVIDIA H200 product page).",
                 sms=132, clock_hz=1.83e9, sustained_clock_hz=1.83e9,  # as H100 SXM
                 hbm_bytes=141e9, hbm_bytes_per_s=4.8e12,  # NVIDIA H200 product page
                 hbm_achievable_bytes_per_s=H200_HBM_ACHIEVED, l2_bytes_per_s=GH100_132SM_L2_ACHIEVED,
                 hbm_pj_per_bit=4.05)  # [assumption] as H100's HBM3; no HBM3e figure in [ref §1.4]


GPU_BUILDERS = {"gpu-a100": gpu_a100, "gpu-a100-80gb": gpu_a100_80gb,
                "gpu-a100-80gb-pcie": gpu_a100_80gb_pcie, "gpu-h100": gpu_h100,
                "gpu-h100-pcie": gpu_h100_pcie, "gpu-h200": gpu_h200}
