"""ReRAM training presets from NeuroSim V2.1 (neurosim/DNN_NeuroSim_V2.1@18289cb, Training_pytorch).

``neurosim_v21_write`` is NeuroSim V2.1's RRAM write model at its 32 nm setting (``memcelltype = 2``,
1T1R), used by ``reram-isaac`` (same node) and by the comparison machine of
scripts/neurosim_v21_compare.py. "Param.cpp" values are read in the source; "printed" values are
NeuroSim's own circuit model at this setting, taken from a run of it by
scripts/neurosim_v21_reference.py (tests/data/neurosim_v21/, docs/reram.md "NeuroSim V2.1").
"""

from __future__ import annotations

import math

from .components import WriteModel

V21_R_ON_OHM = 240e3  # Param.cpp resistanceOn
V21_ON_OFF = 100  # Param.cpp resistanceOff = 240e3*100
V21_WRITE_V = 4.0 * math.sqrt(2)  # ProcessingUnit.cpp: sqrt(V_LTP² + V_LTD²), both Param.cpp writeVoltage = 4
V21_PULSE_S = 50e-9  # Param.cpp writePulseWidth
V21_LEVELS = 60  # Param.cpp maxNumLevelLTP = maxNumLevelLTD = 60
# NeuroSim's own subarray quantities at this setting (RRAM, 1T1R), printed by a build of @18289cb with
# print statements added (ProcessingUnit.cpp GetWriteUpdateEstimation; docs/reram.md "NeuroSim V2.1"):
V21_CAP_COL_F = 8.18074e-15  # subArray->capCol: one source line
V21_CAP_ROW1_F = 3.2768e-15  # subArray->capRow1: one bit line
V21_CAP_ROW2_F = 5.19139e-15  # subArray->capRow2: one word line
V21_VDD = 0.9  # tech.vdd at 32 nm, LSTP
# a line charged to V_w for one pulse of its row phase: the SET cells' bit lines and the RESET cells' source
# lines, and, to inhibit the other mapped columns, their source lines in SET and bit lines in RESET
V21_BIT_LINE_PULSE_J = V21_CAP_ROW1_F * V21_WRITE_V**2
V21_SOURCE_LINE_PULSE_J = V21_CAP_COL_F * V21_WRITE_V**2
V21_ROW_PULSE_J = V21_CAP_ROW2_F * V21_VDD**2  # the selected word line, per row phase pulse
# decoders and switch matrices of one written subarray: writeDynamicEnergy - writeDynamicEnergyArray, the
# mean over the RRAM run's 792 written 128-column subarrays (sd 9 pJ; 32 pJ on FC2's 10-column ones)
V21_CROSSBAR_J = 105e-12

# NeuroSim V2.1's read of one 128×128 subarray of 5-bit RRAM cells for one input bit (all rows in
# parallel, 8 columns per 6-bit multi-level sense amp, levelOutput 64), printed by the same build for the
# first VGG-8 layer (Conv0: 27 rows, 128 columns, 7200 reads of one image, no activation-gradient pass to
# mix in): ADC 2.74381e-7 J, accumulation 6.96278e-8 J, other 2.4204e-8 J (SubArray.cpp
# readDynamicEnergyADC, ...Accum, ...Other). Per conversion (128 columns a read) and per read:
V21_CONVERSION_J = 2.74381e-7 / (7200 * 128)  # the MLSA: 0.298 pJ
V21_ACCUMULATION_J = 6.96278e-8 / (7200 * 128)  # adders and shift-adds behind it: 0.0756 pJ
V21_READ_J = 2.4204e-8 / 7200  # word lines, switch matrices, mux and decoders of one read: 3.36 pJ

# NeuroSim V2.1's activation traffic for one image of the same layer (Conv0, on a conventional tile),
# printed by a build with print statements after the forward buffer and H-tree energies of Tile.cpp
# TileCalculatePerformance and Chip.cpp ChipCalculatePerformance (inputBufferCM, outputBufferCM, hTreeCM,
# globalBuffer, GhTree: readDynamicEnergy + writeDynamicEnergy) with the bits each was given. The bits:
# 27 rows × 900 positions × 8 bits into the tile input buffer (194,400); 128 outputs × 900 × 19 bits
# (1 + the tile adder's numAdderBit) through the output buffer (2,188,800); both over the tile's H-tree;
# 27·8·900 + 128·8·900 = 1,116,000 bits through the global buffer and the global H-tree. Per bit:
V21_TILE_INPUT_BUFFER_J_PER_BIT = 1.31829e-9 / 194400  # 0.00678 pJ
V21_TILE_OUTPUT_BUFFER_J_PER_BIT = 1.29421e-8 / 2188800  # 0.00591 pJ
V21_TILE_HTREE_J_PER_BIT = 2.30692e-7 / (194400 + 2188800)  # 0.0968 pJ
V21_GLOBAL_BUFFER_J_PER_BIT = 3.9623e-9 / 1116000  # 0.00355 pJ
V21_GLOBAL_HTREE_J_PER_BIT = 5.44444e-7 / 1116000  # 0.488 pJ
V21_TILE_OUTPUT_BITS = 19  # 1 + numAdderBit of the tile's accumulation here (printed bits / outputs)
V21_DRAM_J_PER_BIT = 3.9e-12  # DRAM.cpp energyperbit, HBM2 (dramType 2); printed 3.19488e-8 J / 8192 b


def neurosim_v21_write(*, levels_ltp: int = V21_LEVELS, levels_ltd: int = V21_LEVELS) -> WriteModel:
    """NeuroSim V2.1's RRAM writes (32 nm, 1T1R): V_w²·G_on·t per pulse scaled by the cell's conductance,
    SET and RESET phases per row, the selected and inhibited lines of each phase, the word line and the
    subarray's decoders and switch matrices."""
    return WriteModel(
        pulse_energy_pj=V21_WRITE_V**2 / V21_R_ON_OHM * V21_PULSE_S * 1e12,
        pulse_ns=V21_PULSE_S * 1e9, endurance_cycles=1e6,  # a parameter [ref §4.6]
        levels_ltp=levels_ltp, levels_ltd=levels_ltd, on_off_ratio=float(V21_ON_OFF), row_parallel=True,
        driver_energy_pj_per_row_pulse=V21_ROW_PULSE_J * 1e12,
        driver_energy_pj_per_bit_line_pulse=V21_BIT_LINE_PULSE_J * 1e12,
        driver_energy_pj_per_source_line_pulse=V21_SOURCE_LINE_PULSE_J * 1e12,
        # ProcessingUnit.cpp charges "Unselected SLs" in SET and "Unselected BL" in RESET
        inhibit_unselected_lines=True,
        driver_energy_pj_per_crossbar=V21_CROSSBAR_J * 1e12)
