"""Architecture presets. Every number carries its source; "[ref §x]" points into
``../shared/reference/architecture_parameters.md``, which cites the repositories and papers.

Each preset has a YAML twin in ``archs/presets/NAME.yaml`` (regenerate with
``python -m archs.presets``); a test keeps the two identical.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from .architecture import Architecture
from .components import (
    Adc,
    ComputeArray,
    Crossbar,
    Dac,
    Link,
    Memory,
    Peripheral,
    Precision,
    RepresentationFormat,
    ReramCompute,
    SparseAction,
    SparseFeatures,
    VectorUnit,
    WriteModel,
)
from .gpu_presets import GPU_BUILDERS, gpu_a100, gpu_h100, gpu_h200  # noqa: F401 (re-exported)
from .reram_presets import neurosim_v21_write

TWIN_DIR = Path(__file__).with_name("presets")
PJ_PER_BIT = 8.0  # pJ/bit -> pJ/byte

# Areas, µm², 65 nm: Accelergy's reference area table of the Eyeriss-like design [src]
# timeloop-accelergy-exercises@09545d3 workspace/example_designs/example_designs/eyeriss_like/
# ref_outputs/default_problem/timeloop-mapper.ART.yaml: mac 191.82, weights_spad (192 × 16 b = 384 B)
# 11632.88556, shared_glb (16384 × 64 b = 128 KiB) 217363.36892.
EYERISS_MAC_UM2 = 191.82
EYERISS_SPAD_UM2_PER_BYTE = 11632.88556 / 384  # [derived] scaled linearly with capacity
EYERISS_GLB_UM2 = 217363.36892


def edge_npu() -> Architecture:
    """Ethos/Eyeriss-class edge NPU: 16×16 int8 systolic array, 128 KiB GLB, LPDDR4 [ref §5.1]."""
    return Architecture(
        name="edge-npu",
        family="edge_npu",
        description="Ethos-U65-256/Eyeriss-class edge NPU at 45 nm energies "
                    "(architecture_parameters.md §5.1). Areas are the 65 nm Accelergy eyeriss_like "
                    "reference areas, not scaled to 45 nm; no leakage figure is cited, so none is "
                    "modelled.",
        clock_hz=500e6,  # Vela Ethos-U55 High-End / U65 system configs [ref §2.3]
        tech_nm=45,  # Horowitz ISSCC'14 energies [ref §1.1]
        compute=ComputeArray(
            rows=16, cols=16,  # 256 MAC/cycle = Ethos-U55-256 / U65-256 [ref §2.3]
            mac_energy_pj=0.30,  # Horowitz 8b mult 0.2 + 32b add 0.1 [ref §1.1]
            gated_mac_energy_pj=0.018,  # Sparseloop Eyeriss-v2 PE ERT, ~3% of a MAC [ref §1.3]
            microarchitecture="systolic", dataflow="ws",
            precision=Precision(activation_bits=8, weight_bits=8, gradient_bits=16, psum_bits=32),
            area_mm2=256 * EYERISS_MAC_UM2 * 1e-6,  # 256 MACs [src: eyeriss_like ART, EYERISS_MAC_UM2]
        ),
        vector_unit=VectorUnit(lanes=16, op_energy_pj=0.1),  # one 32b int add, Horowitz [ref §1.1]
        memories=(
            Memory(name="rf", kind="register_file", capacity_bytes=512, instances=256,  # Eyeriss 0.5 kB RF
                   read_energy_pj_per_byte=0.30, write_energy_pj_per_byte=0.30,  # RF = 1× MAC [ref §1.2]
                   area_mm2=512 * EYERISS_SPAD_UM2_PER_BYTE * 1e-6),  # [derived] weights_spad per byte × 512
            Memory(name="glb", kind="global_buffer", capacity_bytes=128 * 1024,  # Accelergy eyeriss_like
                   read_energy_pj_per_byte=2.5, write_energy_pj_per_byte=2.5,  # Horowitz 32 KB 20 pJ/64b
                   metadata_read_energy_pj_per_byte=1.2,  # Sparseloop weight_spad metadata, rounded up
                   bandwidth_bytes_per_s=8e9,  # Vela U65 Mid-End SRAM [ref §2.3]
                   double_buffered=True,
                   area_mm2=EYERISS_GLB_UM2 * 1e-6),  # the same 128 KiB shared_glb [src: eyeriss_like ART]
            Memory(name="dram", kind="dram", capacity_bytes=0,
                   read_energy_pj_per_byte=8 * PJ_PER_BIT,  # LPDDR4 8 pJ/bit [ref §1.4]
                   write_energy_pj_per_byte=8 * PJ_PER_BIT,
                   bandwidth_bytes_per_s=3.75e9,  # vela.ini U65 Mid-End DRAM [ref §2.3]
                   latency_cycles=500),  # vela.ini read latency [ref §2.3]
        ),
        links=(Link(name="noc", source="glb", destination="rf", bandwidth_bytes_per_s=0,
                    energy_pj_per_byte=0.60),),  # NoC = 2× MAC, Eyeriss ratios [ref §1.2]
        sparse=SparseFeatures(
            formats=(RepresentationFormat(level="dram", operand="a", format="zvc", metadata_bits=1),
                     RepresentationFormat(level="glb", operand="a", format="bitmap", metadata_bits=1)),
            actions=(SparseAction(kind="gating", level="compute", target="compute", condition_on=("a", "b")),
                     SparseAction(kind="skipping", level="glb", target="a", condition_on=("a",))),
        ),
    )


def eyeriss_v2_pe() -> Architecture:
    """The single Eyeriss-v2 PE of Sparseloop's fig. 12 validation [ref §1.3, §6 edge NPU 2]."""
    return Architecture(
        name="eyeriss-v2-pe",
        family="edge_npu",
        description="One Eyeriss-v2 processing element as modelled in the Sparseloop MICRO'22 artifact "
                    "(fig12_eyerissv2_pe_setup): one 8-bit MAC per effectual pair, skipping on both "
                    "operands.",
        clock_hz=200e6,  # Eyeriss v2 core clock [ref §2.2, paper]
        tech_nm=45,  # the artifact's ERT is 45 nm [ref §1.3]
        compute=ComputeArray(
            # the PE accumulates outputs in its psum spad: output-stationary (no fill/drain on 1×1)
            rows=1, cols=1, microarchitecture="pe_skipping", dataflow="os",
            mac_energy_pj=0.561, gated_mac_energy_pj=0.018,  # artifact ERT_summary [ref §1.3]
            precision=Precision(activation_bits=8, weight_bits=8, gradient_bits=8, psum_bits=20),
        ),
        vector_unit=VectorUnit(lanes=1, op_energy_pj=0.1),  # one 32b int add, Horowitz [ref §1.1]
        memories=(
            Memory(name="iact_spad", kind="scratchpad", capacity_bytes=16, operands=("a",),  # 16×8 b
                   read_energy_pj_per_byte=0.130, write_energy_pj_per_byte=0.130,  # ERT [ref §1.3]
                   metadata_read_energy_pj_per_byte=0.298),  # 0.149 pJ per 4-bit word
            Memory(name="weight_spad", kind="scratchpad", capacity_bytes=192, operands=("b",),  # 192×8 b
                   read_energy_pj_per_byte=0.477, write_energy_pj_per_byte=0.519,
                   metadata_read_energy_pj_per_byte=0.884),  # per 8-bit metadata word
            Memory(name="psum_spad", kind="scratchpad", capacity_bytes=80, operands=("c",),  # 32×20 b
                   read_energy_pj_per_byte=0.0668, write_energy_pj_per_byte=0.0668),  # 0.167 pJ/20 b
            Memory(name="backing_storage", kind="dram", capacity_bytes=0,
                   read_energy_pj_per_byte=8 * PJ_PER_BIT,  # not in the PE ERT: LPDDR4 [ref §1.4]
                   write_energy_pj_per_byte=8 * PJ_PER_BIT),
        ),
        sparse=SparseFeatures(
            formats=(RepresentationFormat(level="iact_spad", operand="a", format="rle", metadata_bits=4),
                     RepresentationFormat(level="weight_spad", operand="b", format="rle", metadata_bits=8)),
            actions=(SparseAction(kind="skipping", level="weight_spad", target="b", condition_on=("a",)),
                     SparseAction(kind="skipping", level="compute", target="compute",
                                  condition_on=("a", "b"))),
        ),
    )


def eyeriss_like() -> Architecture:
    """Timeloop/Accelergy's eyeriss_like design (65 nm, 12×14 PEs, 128 KiB GLB) [ref §1.3, §6 edge NPU 1]."""
    return Architecture(
        name="eyeriss-like",
        family="edge_npu",
        description="The memory hierarchy and energy table of timeloop-accelergy-exercises' eyeriss_like "
                    "(architecture_parameters.md §1.3): per-PE ifmap, weight and psum scratchpads, a 128 KiB "
                    "global buffer for inputs and outputs (weights bypass it), LPDDR4. Spad energies are per "
                    "byte of a 16-bit access holding two 8-bit values (psums: one 16-bit value). The array "
                    "runs hwsim's output-stationary dataflow, not Eyeriss's row-stationary one; bandwidths "
                    "are not modelled (0 = unlimited). tests/hwsim/test_timeloop_eyeriss.py checks it "
                    "against Timeloop's MobileNet layer-1 reference.",
        clock_hz=200e6,  # Eyeriss core clock [ref §2.1]
        tech_nm=65,  # the ERT is 65 nm [ref §1.3]
        compute=ComputeArray(
            rows=12, cols=14,  # 12×14 = 168 PEs [ref §1.3]
            mac_energy_pj=0.208,  # ERT MAC (8b×8b, 16b add) [ref §1.3]
            gated_mac_energy_pj=0.0,  # the design has no gating: never charged
            microarchitecture="systolic", dataflow="os",
            precision=Precision(activation_bits=8, weight_bits=8, gradient_bits=16, psum_bits=16),
        ),
        vector_unit=VectorUnit(lanes=14, op_energy_pj=0.1),  # one 32b int add, Horowitz [ref §1.1]
        memories=(
            Memory(name="ifmap_spad", kind="register_file", capacity_bytes=24, instances=168,  # 12×16 b
                   operands=("a",), read_energy_pj_per_byte=0.20 / 2, write_energy_pj_per_byte=0.18 / 2),
            Memory(name="weights_spad", kind="register_file", capacity_bytes=384, instances=168,  # 192×16 b
                   operands=("b",), read_energy_pj_per_byte=1.98 / 2, write_energy_pj_per_byte=1.88 / 2),
            Memory(name="psum_spad", kind="register_file", capacity_bytes=32, instances=168,  # 16×16 b
                   operands=("c",), read_energy_pj_per_byte=0.25 / 2, write_energy_pj_per_byte=0.22 / 2),
            Memory(name="shared_glb", kind="global_buffer", capacity_bytes=128 * 1024,  # 16384×64 b
                   operands=("a", "c"),  # weights bypass the GLB in eyeriss_like
                   read_energy_pj_per_byte=18.18 / 8, write_energy_pj_per_byte=14.14 / 8),  # per 64 b
            Memory(name="dram", kind="dram", capacity_bytes=0,
                   read_energy_pj_per_byte=512 / 8, write_energy_pj_per_byte=512 / 8),  # 512 pJ per 64 b
        ),
    )


def reram_isaac() -> Architecture:
    """ISAAC-like ReRAM crossbar chip with training writes [ref §4.1, §4.6, §5.3]."""
    return Architecture(
        name="reram-isaac",
        family="reram",
        description="ISAAC (ISCA'16)-like chip at 32 nm: 168 tiles × 12 IMAs × 8 crossbars of 128×128 "
                    "2-bit cells, 8-bit ADCs, bit-serial 16-bit inputs (architecture_parameters.md §4.1, "
                    "§5.3); training: NeuroSim V2.1's 32 nm RRAM writes, one copy per layer, weight "
                    "gradients on a 16-bit digital MAC array (docs/reram.md).",
        clock_hz=1.2e9,  # ISAAC tile clock [ref §4.1]
        tech_nm=32,
        reram=ReramCompute(
            tiles=168, imas_per_tile=12, crossbars_per_ima=8,  # [ref §4.1]
            crossbar=Crossbar(rows=128, cols=128, bits_per_cell=2, read_cycle_ns=100,
                              power_mw=0.3),  # PUMA constants.py: 0.3 mW per 128×128 [ref §4.1]
            adcs_per_ima=8, adc=Adc(bits=8, sample_rate_hz=1.28e9, power_mw=2.0,  # hwcomponents isaac.py
                                    reference_bits=8,  # the 2 mW is ISAAC's 8-bit ADC [ref §1.5]
                                    area_mm2=0.0012),  # 1200 µm² each [ref §1.5]
            dacs_per_ima=8 * 128, dac=Dac(bits=1, power_mw=4.0 / 1024),  # 4 mW per 1024 DACs [ref §1.5]
            input_bits=16, weight_bits=16,  # 16-bit inputs bit-serial, weights over 8 cells [ref §4.1]
            signed_weights="offset",  # ISAAC stores weights biased, the bias removed digitally [paper: ISAAC]
            transposed_read=False,  # inference periphery: DACs on rows, ADCs on columns [ref §4.1]
            replicate_layers=True, max_replicas=0,  # ISAAC replicates layers to balance its pipeline
            shift_add_energy_pj=0.021,  # [ref §4.1 per-action table]
            ima_peripherals=(  # ISAAC table, per IMA [ref §4.1]
                Peripheral(name="sample_and_hold (8×128)", power_mw=0.01),
                Peripheral(name="shift_and_add", count=4, power_mw=0.05),
                Peripheral(name="input_register (2 KB)", power_mw=1.24),
                Peripheral(name="output_register (256 B)", power_mw=0.23),
            ),
            tile_peripherals=(  # ISAAC table, per tile [ref §4.1]
                Peripheral(name="edram_buffer (64 KB)", power_mw=20.7, area_mm2=0.083),
                Peripheral(name="edram_to_ima_bus (384 wires)", power_mw=7.0),
                Peripheral(name="router (1/4 share of 42 mW)", power_mw=10.5),
                Peripheral(name="sigmoid", power_mw=0.52),
                Peripheral(name="shift_and_add", power_mw=0.05),
                Peripheral(name="max_pool", power_mw=0.4),
                Peripheral(name="output_register (3 KB)", power_mw=1.68),
            ),
            # training writes: NeuroSim V2.1's RRAM at the same 32 nm node (archs/reram_presets.py), one
            # pulse per level of the 2-bit cell (levels 0), SET then RESET phase per row
            write=neurosim_v21_write(levels_ltp=0, levels_ltd=0),
            # training keeps one copy per layer: rewriting ISAAC's up-to-64 copies every step multiplies
            # the writes (energy and wear) by the copies for a forward pass that is a small part of a
            # training step (docs/reram.md "Replication in training")
            replicas_in_training="none",
            weight_range_max=0.0,  # the layer's max|W| at its first update, then fixed
            # weight gradients (and backward-data: no transposed read) on a digital MAC array: one 16×16
            # 16-bit MAC array per tile [assumption], 16-bit MAC = Horowitz 45 nm 16b mult (~1.0,
            # interpolated) + 32b add (0.1) = 1.1 pJ, × 32/45 to 32 nm (first-order C scaling) = 0.78 pJ
            # [ref §1.1, derived]
            digital_macs_per_cycle=168 * 256, digital_mac_energy_pj=1.1 * 32 / 45,
        ),
        # the vector unit (non-GEMM work): ISAAC's 2 sigmoid units per tile [paper: ISAAC tile table], one
        # element per cycle each, at the shift-and-add energy per op [ref §4.1]
        vector_unit=VectorUnit(lanes=2 * 168, op_energy_pj=0.021),
        memories=(
            Memory(name="edram", kind="edram", capacity_bytes=64 * 1024, instances=168,  # [ref §4.1]
                   read_energy_pj_per_byte=20.45 / 32, write_energy_pj_per_byte=20.45 / 32),  # per 256 b
            Memory(name="hbm", kind="hbm", capacity_bytes=0,
                   bandwidth_bytes_per_s=15.2e12 / 8,  # NeuroSim DRAM.cpp 15.2 Tb/s [ref §1.4]
                   read_energy_pj_per_byte=3.9 * PJ_PER_BIT,  # HBM2 3.9 pJ/bit [ref §5.3]
                   write_energy_pj_per_byte=3.9 * PJ_PER_BIT),
        ),
        links=(Link(name="router", source="edram", destination="edram", bandwidth_bytes_per_s=0,
                    energy_pj_per_byte=20.74 / 32),),  # 20.74 pJ per 256-bit flit [ref §4.1]
        sparse=SparseFeatures(skip_zero_input_rows=True, skip_zero_weight_columns=True,
                              skip_zero_crossbars=True),
    )


# -- reram-neurosim: DNN+NeuroSim V1.4's own values at its Table VII RRAM setting -------------------
# Source: neurosim/DNN_NeuroSim_V1.4@ac828e6, Inference_pytorch/NeuroSIM. Table VII (manual, §11) uses
# "the default setting in the released code" with RRAM (Param.cpp memcelltype = 2), a 4-bit ADC
# (levelOutput = 16), 1 bit/cell, 128×128, 8b×8b and parallel read 32 (main's argv[5]). Values marked
# "computed" are what NeuroSim's own circuit model returns at that setting: printed by a build of that
# commit with print statements added, run on VGG-8 (docs/reram.md, "Reproducing NeuroSim's figures").
NEUROSIM_READ_V = 0.55  # Param.cpp readVoltage, technode 22 (also MultilevelSenseAmp::CalculatePower Vread)
NEUROSIM_R_ON_OHM = 100e3  # Param.cpp resistanceOn = 100e3
NEUROSIM_R_OFF_OHM = 100e3 * 17  # Param.cpp resistanceOff = 100e3*17 (on/off 17, Table VII)
NEUROSIM_LEVELS = 16  # levelOutput: a 4-bit multi-level sense amp (Table VII "ADC precision 4")
NEUROSIM_COL_MUXED = 8  # Param.cpp numColMuxed: columns sharing one sense amp
NEUROSIM_ROWS_PARALLEL = 32  # Table VII "parallel read 32": main.cpp numRowParallel = argv[5]
# computed: synchronous = true (Param.cpp), so main.cpp sets clkFreq = 1/clkPeriod from the sensing delay
NEUROSIM_CLOCK_PERIOD_S = 1.75021e-9
# computed: MultilevelSenseAmp::CalculateLatency/CalculatePower LatencyCol = max(ColumnLatency_Table(Rref))
NEUROSIM_LATENCY_COL_S = 1.07467e-9
# computed: MultilevelSenseAmp::CalculatePower, Column_SwitchingE × (levelOutput − 1) per conversion
NEUROSIM_MLSA_SWITCHING_J = 1.41313e-14
# computed: the reference columns' power, sum of GetColumnPower(Rref[i]) / dumcolshared (the "1.4 update")
NEUROSIM_MLSA_REF_POWER_W = 9.16448e-6
# computed (SubArray::CalculatePower, conventionalParallel): per subarray read of one input bit (numAdd = 4
# row groups of 32, 128 columns), energy per driven row of readDynamicEnergyArray (capRow2·Vdd² ×
# numColMuxed) and of wlNewSwitchMatrix; the switch matrix's part that does not depend on the rows, plus
# mux and mux decoder
NEUROSIM_WL_ARRAY_J_PER_ROW = 5.5141e-14
NEUROSIM_WL_SWITCH_J_PER_ROW = 4.4028e-14
NEUROSIM_READ_FIXED_J = 1.44481e-12 + 6.17256e-14 + 2.29598e-14
# computed: adder + dff + shiftAddWeight + shiftAddInput of one subarray read (constant over the run)
NEUROSIM_ACCUMULATION_J = 2.06908e-12 + 1.51955e-12 + 1.43254e-12 + 4.31065e-13
NEUROSIM_GROUPS = 128 // NEUROSIM_ROWS_PARALLEL  # numAdd: row groups of one subarray read
# Floorplan NeuroSim prints for VGG-8 at this setting ("Desired Novel Mapped Tile Storage Size: 9x512x512"):
# a novel-mapped tile of numPENM = 9 PEs of 512×512, i.e. 4×4 subarrays of 128×128 per PE
NEUROSIM_PES_PER_TILE = 9
NEUROSIM_SUBARRAYS_PER_PE = (512 // 128) ** 2
# Tile buffers (Tile.cpp TileInitialize, novel mapping, chipActivation; Param.cpp tileBufferCoreSizeRow/Col
# = 32, register files): Buffer::CalculateLatency with synchronous = true moves one interface_width line
# per clock cycle, and the tile divides by min(cores, ceil(hTreeNM busWidth / interface_width)).
NEUROSIM_BUFFER_LINE_BITS = 32  # interface_width = tileBufferCoreSizeCol
# numBitSubarrayOutput = log2(levelOutput) + ceil(log2(128 / numRowParallel)) + numBitInput
#   + (numColPerSynapse - 1)·cellBit + 1 = 4 + 2 + 8 + 7 + 1 = 22; numBitPEOutputNM = 22 + ceil(sqrt(16)) = 26
NEUROSIM_PE_OUTPUT_BITS = 4 + 2 + 8 + 7 + 1 + 4
# tile output values: accumulationNM numStage + numAdderBit = ceil(log2(9)) + 26 (AdderTree::Initialize)
NEUROSIM_TILE_OUTPUT_BITS = math.ceil(math.log2(NEUROSIM_PES_PER_TILE)) + NEUROSIM_PE_OUTPUT_BITS
# numInBufferCoreNM = ceil(numPENM·numBitInput·numRowSubArray / (32·32)) = 9; min(9, ceil(9·512 / 32)) = 9
NEUROSIM_IN_BUFFER_CORES = math.ceil(NEUROSIM_PES_PER_TILE * 8 * 128 / 1024)
# numOutBufferCoreNM = ceil((numBitPEOutputNM + ceil(log2 9))·numPENM·numColSubArray/numColMuxed / 1024) = 5
NEUROSIM_OUT_BUFFER_CORES = math.ceil(NEUROSIM_TILE_OUTPUT_BITS * NEUROSIM_PES_PER_TILE * 128 / 8 / 1024)
# Chip.cpp ChipInitialize: the X-Y global bus width NeuroSim computes for this VGG-8 floorplan (printed)
NEUROSIM_GLOBAL_BUS_BITS = 1089


def neurosim_column_power_w(column_ohm: float) -> float:
    """NeuroSim's multi-level sense-amp column power, W: ``MultilevelSenseAmp::GetColumnPower``, current
    mode, LSTP (Param.cpp deviceroadmap = 2), 22 nm branch; the column resistance is rescaled to the
    0.5 V of its Cadence fit, and no current (an open column) costs 1 µW."""
    if column_ohm == float("inf"):
        return 1e-6
    r = column_ohm * 0.5 / NEUROSIM_READ_V
    if r < 4832:
        p = -2.85373e-11 * r + 9.16744e-07
    elif r < 379269:
        p = -1.63133e-07 * math.log(r) + 2.1687e-06
    else:
        p = -5.8712e-08 * math.log(r) + 8.64648e-07
    return p * (NEUROSIM_LEVELS - 1)


def neurosim_conversion_energy_j(column_ohm: float) -> float:
    """Energy of one multi-level sense-amp conversion of one column, J (``MultilevelSenseAmp::
    CalculatePower``, currentMode): the switching energy plus (column + reference power) × LatencyCol."""
    return NEUROSIM_MLSA_SWITCHING_J + (neurosim_column_power_w(column_ohm)
                                        + NEUROSIM_MLSA_REF_POWER_W) * NEUROSIM_LATENCY_COL_S


def reram_neurosim() -> Architecture:
    """NeuroSim V1.4 Table VII RRAM: 22 nm, 1 bit/cell, 4-bit ADC, 128×128, parallel read 32 [ref §4.3]."""
    # The column read in the sense amp: 32 rows driven (dense input bits), half of the 1-bit cells at R_on,
    # the cells in parallel (NeuroSim adds the access transistor and the wire) [assumption]
    column_ohm = 1 / (NEUROSIM_ROWS_PARALLEL * (0.5 / NEUROSIM_R_ON_OHM + 0.5 / NEUROSIM_R_OFF_OHM))
    conversion_pj = neurosim_conversion_energy_j(column_ohm) * 1e12
    read_ns = NEUROSIM_LATENCY_COL_S * 1e9  # one column sensed; NeuroSim's MLSA path charges no read pulse
    group_pj = NEUROSIM_READ_FIXED_J / NEUROSIM_GROUPS * 1e12  # per 32-row read of one crossbar
    drive_pj = (NEUROSIM_WL_ARRAY_J_PER_ROW + NEUROSIM_WL_SWITCH_J_PER_ROW) * 1e12  # per driven row
    conversions_per_subarray_read = NEUROSIM_GROUPS * 128
    return Architecture(
        name="reram-neurosim",
        family="reram",
        description="DNN+NeuroSim V1.4 Table VII RRAM setting (VGG-8, 8b×8b): 22 nm, 128×128 1-bit "
                    "cells, 32 rows read in parallel, 8 columns per 4-bit multi-level sense amp, NeuroSim's "
                    "synchronous clock; read latency and energies are NeuroSim's circuit model evaluated at "
                    "that setting; chip sized for VGG-8 with up to 8 copies per layer (docs/reram.md).",
        clock_hz=1 / NEUROSIM_CLOCK_PERIOD_S,  # computed: 571 MHz (Param.cpp clkFreq 1e9, synchronous)
        tech_nm=22,  # Table VII [ref §4.3]
        reram=ReramCompute(
            # NeuroSim's novel-mapped tile: 9 PEs (IMAs) of 16 subarrays (printed floorplan). 160 tiles:
            # VGG-8 with 8 copies of each conv layer (NeuroSim sizes its chip to the network) [assumption]
            tiles=160, imas_per_tile=NEUROSIM_PES_PER_TILE, crossbars_per_ima=NEUROSIM_SUBARRAYS_PER_PE,
            crossbar=Crossbar(rows=128, cols=128,  # numRowSubArray/numColSubArray, Param.cpp
                              bits_per_cell=1,  # cellBit, Table VII [ref §4.3]
                              read_cycle_ns=read_ns,  # computed LatencyCol: one sense step
                              # switch matrix, mux and mux decoder energy of one 32-row read, spread over the
                              # read cycle (computed, SubArray::CalculatePower)
                              power_mw=group_pj / read_ns,
                              parallel_rows=NEUROSIM_ROWS_PARALLEL),  # "parallel read 32", Table VII
            # numColMuxed = 8 columns per sense amp: 16 per subarray, 64 per PE (Param.cpp)
            adcs_per_ima=NEUROSIM_SUBARRAYS_PER_PE * 128 // NEUROSIM_COL_MUXED,
            adc=Adc(bits=4,  # 4-bit ADC, Table VII [ref §4.3]
                    reference_bits=4,  # the energy below is NeuroSim's at its 16 levels
                    sample_rate_hz=1 / NEUROSIM_LATENCY_COL_S,  # one column per LatencyCol (computed)
                    power_mw=conversion_pj / read_ns),  # MLSA energy per conversion (computed formula)
            # the word-line drive of one row for one input bit: array WL charging × numColMuxed and the
            # switch matrix's per-row part (computed, SubArray::CalculatePower)
            dacs_per_ima=NEUROSIM_SUBARRAYS_PER_PE * 128, dac=Dac(bits=1, power_mw=drive_pj / read_ns),
            input_bits=8, weight_bits=8,  # 8b × 8b, Table VII [ref §4.3]
            # adders, DFFs and the input/weight shift-adds of a subarray read over its conversions (computed)
            accumulation_energy_pj_per_conversion=NEUROSIM_ACCUMULATION_J * 1e12
            / conversions_per_subarray_read,
            signed_weights="offset",  # NeuroSim subtracts a reference column (dumcolshared) [Param.cpp]
            transposed_read=True,  # V2: activation gradients (AG) are read from the same arrays [ref §4.3]
            max_replicas=8,  # speedUpDegree = 8, Param.cpp
            # tile buffers: one 32-bit line per cycle per buffer core (computed above, Tile.cpp)
            tile_input_buffer_bandwidth_bytes_per_s=NEUROSIM_IN_BUFFER_CORES * NEUROSIM_BUFFER_LINE_BITS / 8
            / NEUROSIM_CLOCK_PERIOD_S,
            tile_output_buffer_bandwidth_bytes_per_s=NEUROSIM_OUT_BUFFER_CORES * NEUROSIM_BUFFER_LINE_BITS / 8
            / NEUROSIM_CLOCK_PERIOD_S,
            output_buffer_bits=NEUROSIM_TILE_OUTPUT_BITS,
            # the global X-Y bus, one busWidth of bits per cycle (Chip.cpp GBus; computed width)
            interconnect_bandwidth_bytes_per_s=NEUROSIM_GLOBAL_BUS_BITS / 8 / NEUROSIM_CLOCK_PERIOD_S,
            write=WriteModel(pulse_energy_pj=2**2 / NEUROSIM_R_ON_OHM * 50e-9 * 1e12,  # V²/R·t: 2 V
                             # (Param.cpp writeVoltage) for 50 ns (NeuroSim write pulse [ref §4.3]) at R_on
                             pulse_ns=50.0,  # NeuroSim default write pulse width [ref §4.3]
                             # levels 0: a 1-bit cell switches with one SET or RESET pulse [assumption]
                             endurance_cycles=1e6,  # a parameter; report pulses per cell [ref §4.6]
                             row_parallel=True),  # row-by-row writes [ref §4.6]
            # NeuroSim V2.1 writes every duplicated array (ProcessingUnit.cpp: writeDynamicEnergyWU ×
            # arrayDupRow·arrayDupCol), so its copies stay in training and are rewritten
            replicas_in_training="rewritten",
        ),
        # chip-level ReLU/max-pool (Param.cpp chipActivation): one lane per PE at ISAAC's digital op
        # energy [ref §4.1] [assumption]
        vector_unit=VectorUnit(lanes=160 * NEUROSIM_PES_PER_TILE, op_energy_pj=0.021),
        memories=(
            Memory(name="hbm", kind="hbm", capacity_bytes=0,
                   bandwidth_bytes_per_s=15.2e12 / 8,  # NeuroSim DRAM.cpp 15.2 Tb/s [ref §1.4]
                   read_energy_pj_per_byte=3.9 * PJ_PER_BIT,  # HBM2 3.9 pJ/bit, NeuroSim V2 [ref §4.3]
                   write_energy_pj_per_byte=3.9 * PJ_PER_BIT),
        ),
        sparse=SparseFeatures(skip_zero_input_rows=True, skip_zero_weight_columns=True,
                              skip_zero_crossbars=True),
    )


_BUILDERS = {"edge-npu": edge_npu, "eyeriss-v2-pe": eyeriss_v2_pe, "eyeriss-like": eyeriss_like,
             **GPU_BUILDERS, "reram-isaac": reram_isaac, "reram-neurosim": reram_neurosim}
PRESETS: dict[str, Architecture] = {name: build() for name, build in _BUILDERS.items()}


def twin_path(name: str) -> Path:
    """Where a preset's YAML twin lives."""
    return TWIN_DIR / f"{name}.yaml"


def twin_text(name: str) -> str:
    """The YAML twin's expected contents."""
    from .loader import dump

    header = (f"# {name}: YAML twin of archs/presets.py ({_BUILDERS[name].__doc__})\n"
              "# Copy this file to start a design: `hwsim archs validate my.yaml` checks it.\n"
              "# Regenerate: `python -m archs.presets`; the sources of the numbers are in archs/presets.py\n")
    return header + dump(PRESETS[name])


if __name__ == "__main__":  # regenerate the YAML twins
    for preset in PRESETS:
        twin_path(preset).write_text(twin_text(preset))
        print(f"wrote {twin_path(preset)}", file=sys.stderr)
