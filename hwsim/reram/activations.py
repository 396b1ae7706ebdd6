"""Products of two activations on a ReRAM chip (``Q·Kᵀ``, ``P·V``, any ``matmul`` record).

A crossbar holds a matrix that stays put while input vectors stream through it: a weight. When both
operands are activations there is no such matrix; ``reram.activation_products`` says what the chip
does instead, and every row reports what the other choice would have cost:

- ``digital``: the GEMM runs on the digital unit (the MAC array at ``digital_macs_per_cycle``, or
  the vector unit, one op per MAC), as the weight gradient does.
- ``crossbar_writes``: per GEMM (one per sample and head), the pass's ``B`` operand (``K × N``) is
  written into spare crossbars (the chip's crossbars one copy of the weights leaves free: layer
  replicas give theirs up), then ``A``'s ``M``
  rows stream through them as an ordinary in-situ MVM. The cells are written with the training
  write model (``reram.write``): ``K × N × slices × column sets`` cells per GEMM; each cell moves
  from the level it held (the previous product's) to its new one. Values are not recorded for
  activations, so the level change is the expectation for two independent uniform levels of
  ``L = 2^bits_per_cell − 1``: ``E|Δ| = L(L + 2) / (3(L + 1))`` levels, ``E|Δ| · N / L`` pulses
  (``N`` = ``levels_ltp`` / ``levels_ltd``, half of the cells potentiated, half depressed; the
  non-linear curve is not applied; each pulse at ``pulse_energy_pj``, the on-state price, an upper
  bound when ``on_off_ratio`` is set). Row-parallel writes take, per crossbar row, a SET phase and a
  RESET phase of the whole range (a row of random levels has a cell near each end). When the GEMMs
  of a pass need more crossbars than are spare, they run in rounds that rewrite the same cells:
  wear per cell per pass = rounds × expected pulses, lifetime = endurance over that, in passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from archs import ReramCompute

from ..errors import MappingError
from ..pricing import price
from .crossbar import DENSE, MvmCosts, mvm_costs
from .mapping import LayerMap, column_sets, slices_per_weight
from .writes import full_range_pulses


@dataclass(frozen=True)
class OperandWrites:
    """Writing the stationary operand of ``groups`` GEMMs (``k × n`` each) into spare crossbars."""

    crossbars_per_group: int  # crossbars one group's operand occupies
    spare_crossbars: int  # crossbars the weights leave free
    rounds: int  # times the spare crossbars are filled per pass
    cells_written: int  # cells programmed per pass (all groups)
    pulses: float  # expected write pulses per pass (all cells)
    row_pulses: int  # row phases (SET + RESET pulses per written row), all rounds
    bit_line_pulses: float  # bit lines charged × pulses (SET cells; RESET phase inhibits), all rounds
    source_line_pulses: float  # source lines × pulses (RESET cells; SET phase inhibits), all rounds
    latency_ns: float  # write time of the pass (all rounds)
    pulses_per_cell: float  # expected pulses one spare cell takes per pass (wear)

    def lifetime_passes(self, r: ReramCompute) -> float:
        """Passes until the most-written spare cell reaches the endurance."""
        return r.write.endurance_cycles / self.pulses_per_cell if self.pulses_per_cell > 0 else math.inf


def expected_level_change(r: ReramCompute) -> float:
    """``E|l1 − l0|`` for independent uniform levels ``0..L``: ``L(L + 2) / (3(L + 1))``."""
    top = 2**r.crossbar.bits_per_cell - 1
    return top * (top + 2) / (3 * (top + 1))


def operand_map(k: int, n: int, r: ReramCompute) -> LayerMap:
    """The crossbar grid of one ``k × n`` operand (one group, one copy)."""
    kx, nx = math.ceil(k / r.crossbar.rows), math.ceil(n / r.crossbar.cols)
    s, sets = slices_per_weight(r), column_sets(r)
    return LayerMap(k, n, 1, kx, nx, s, sets, math.ceil(nx * s * sets / r.crossbars_per_ima))


def operand_writes(r: ReramCompute, k: int, n: int, groups: int, spare_crossbars: int) -> OperandWrites:
    """Writes of ``groups`` operands of ``k × n`` into ``spare_crossbars`` crossbars, per pass."""
    lm = operand_map(k, n, r)
    per_group = lm.crossbars
    if spare_crossbars < per_group:
        raise MappingError(
            f"a {k}×{n} activation operand needs {per_group:,} crossbars but the weights leave "
            f"{spare_crossbars:,} free; set reram.activation_products: digital, or use a larger chip "
            f"(reram.tiles)")
    at_once = spare_crossbars // per_group  # groups whose operands fit the spare crossbars together
    rounds = -(-groups // at_once)
    cells_per_group = k * n * lm.slices * lm.sets
    n_ltp, n_ltd = full_range_pulses(r)
    top = 2**r.crossbar.bits_per_cell - 1
    per_cell = expected_level_change(r) * (n_ltp + n_ltd) / 2 / top  # half LTP, half LTD
    rows_per_group = lm.slices * lm.sets * lm.n_xbars * k  # crossbar rows written, one group
    w = r.write
    step_ns = w.pulse_ns + (w.verify_ns if w.write_verify else 0.0)
    phase = n_ltp + n_ltd  # a row's SET and RESET phases across the whole range
    rows_per_xbar = min(k, r.crossbar.rows)
    pulses_per_xbar = rows_per_xbar * (phase if w.row_parallel else r.crossbar.cols * per_cell)
    xbar_ns = pulses_per_xbar * step_ns
    in_round = min(groups, at_once) * per_group  # crossbars written in one round
    parallel = w.crossbars_in_parallel or in_round
    round_ns = xbar_ns * -(-in_round // parallel)
    # per row phase half of the row's mapped columns are SET (bit lines driven for the SET phase), half
    # RESET (source lines for the RESET phase); inhibiting raises the other half's opposite line
    half = groups * rows_per_group * min(n, r.crossbar.cols) / 2
    inhibit = 1 if w.inhibit_unselected_lines else 0
    bit = half * (n_ltp + inhibit * n_ltd)
    source = half * (n_ltd + inhibit * n_ltp)
    return OperandWrites(per_group, spare_crossbars, rounds, groups * cells_per_group,
                         groups * cells_per_group * per_cell, groups * rows_per_group * phase, bit, source,
                         rounds * round_ns, rounds * per_cell)


def spare_crossbars(arch: Any, used: int) -> int:
    """Crossbars of the chip the weights (``used`` crossbars, all copies) leave free."""
    r = arch.reram
    return r.tiles * r.imas_per_tile * r.crossbars_per_ima - used


@dataclass(frozen=True)
class CrossbarProduct:
    """A pass of ``groups`` products on spare crossbars: the MVMs, the writes, their time and energy."""

    mvm: MvmCosts  # all groups' in-situ MVMs (time_ns: all rounds, writes excluded)
    writes: OperandWrites
    write_ns: float
    write_energy_pj: float


def crossbar_product(arch: Any, dims: tuple[int, int, int], groups: int,
                     used_crossbars: int) -> CrossbarProduct:
    """``groups`` GEMMs ``m × k × n`` run by writing each ``B`` into spare crossbars and streaming ``A``
    (dense: an activation operand's zeros are not known before it is written)."""
    r = arch.reram
    _, k, n = dims
    w = operand_writes(r, k, n, groups, spare_crossbars(arch, used_crossbars))
    lm = operand_map(k, n, r)
    one = mvm_costs(None, None, dims, lm, r, DENSE)
    mvm = MvmCosts(one.algorithmic_macs * groups, one.actual_macs * groups, one.crossbar_reads * groups,
                   one.dac_drives * groups, one.adc_conversions * groups, one.active_segments * groups,
                   one.segments * groups, one.ima_busy_ns * groups, one.time_ns * w.rounds, 0,
                   one.over_range_conversions * groups)
    energy = (w.pulses * price(arch, "cell", "write_pulse")
              + w.row_pulses * price(arch, "write_driver", "row_pulse")
              + w.bit_line_pulses * price(arch, "write_driver", "bit_line_pulse")
              + w.source_line_pulses * price(arch, "write_driver", "source_line_pulse")
              + groups * lm.crossbars * price(arch, "write_driver", "crossbar"))
    return CrossbarProduct(mvm, w, w.latency_ns, float(energy))
