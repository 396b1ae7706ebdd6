"""ReRAM training presets from NeuroSim V2.1 (neurosim/DNN_NeuroSim_V2.1@18289cb, Training_pytorch).

``neurosim_v21_write`` is NeuroSim V2.1's RRAM write model at its 32 nm setting, used by
``reram-isaac`` (same node) and ``reram-neurosim-v21``; ``reram_neurosim_v21`` is NeuroSim V2.1's
own training chip (VGG-8 on CIFAR-10, 5-bit weights in one 5-bit cell, 8-bit activations), the
machine of the comparison in docs/reram.md. "Param.cpp" values are read in the source; "fitted"
values are NeuroSim's own circuit model at this setting, taken from a run of it by
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
# NeuroSim's own subarray quantities at this setting, printed by a build of @18289cb with print
# statements added (ProcessingUnit.cpp GetWriteUpdateEstimation; docs/reram.md "NeuroSim V2.1"):
V21_CAP_COL_F = 8.18074e-15  # subArray->capCol: one bit/source line
V21_CAP_ROW2_F = 5.19139e-15  # subArray->capRow2: one word line
V21_VDD = 0.9  # tech.vdd at 32 nm, LSTP
# a selected line is charged to V_w for each pulse of its row phase (the fit of NeuroSim's array write
# energy over its 800 VGG-8 subarrays gives 0.270 pJ (SET) and 0.262 pJ (RESET) per line-pulse,
# residual 0.01 %)
V21_LINE_PULSE_J = V21_CAP_COL_F * V21_WRITE_V**2
V21_ROW_PULSE_J = V21_CAP_ROW2_F * V21_VDD**2  # the selected word line, per row phase pulse
# decoders and switch matrices of one written subarray: writeDynamicEnergy - writeDynamicEnergyArray
# of the first two subarrays printed (114.5 pJ and 119.8 pJ)
V21_CROSSBAR_J = 117e-12
# NeuroSim's cell term (V_w²/R_avg·t·pulses, ProcessingUnit.cpp) comes out 6.2e-4 to 6.9e-4 of that formula
# evaluated on the same conductances in every layer of the run (6.8e-4 in the largest); the preset that
# reproduces NeuroSim's numbers scales the pulse energy by it, reram-isaac keeps the formula
V21_CELL_AS_REPORTED = 6.8e-4


def neurosim_v21_write(*, levels_ltp: int = V21_LEVELS, levels_ltd: int = V21_LEVELS,
                       cell_scale: float = 1.0) -> WriteModel:
    """NeuroSim V2.1's RRAM writes (32 nm): V_w²·G_on·t per pulse scaled by the cell's conductance
    (× ``cell_scale``), SET and RESET phases per row, line, word-line and subarray driver energies."""
    return WriteModel(
        pulse_energy_pj=V21_WRITE_V**2 / V21_R_ON_OHM * V21_PULSE_S * 1e12 * cell_scale,
        pulse_ns=V21_PULSE_S * 1e9, endurance_cycles=1e6,  # a parameter [ref §4.6]
        levels_ltp=levels_ltp, levels_ltd=levels_ltd, on_off_ratio=float(V21_ON_OFF), row_parallel=True,
        driver_energy_pj_per_row_pulse=V21_ROW_PULSE_J * 1e12,
        driver_energy_pj_per_line_pulse=V21_LINE_PULSE_J * 1e12,
        driver_energy_pj_per_crossbar=V21_CROSSBAR_J * 1e12)
