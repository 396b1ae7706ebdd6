"""Figures derived from an architecture's fields: peak throughput, ReRAM power budget.

Nothing here is typed in: every figure is arithmetic on the description, so a preset can be
checked against its paper (tests/archs/test_presets.py).
"""

from __future__ import annotations

from .architecture import Architecture
from .components import ReramCompute


def peak_macs_per_s(arch: Architecture, *, structured_sparse: bool = False) -> float:
    """Peak multiply-accumulates per second (dense, or with N:M structured sparsity)."""
    if arch.compute is not None:
        c = arch.compute
        return c.rows * c.cols * c.macs_per_pe_per_cycle * arch.clock_hz
    if arch.gpu is not None:
        g = arch.gpu
        rate = g.sms * g.tensor_cores_per_sm * g.tensor_core.fma_per_cycle * arch.clock_hz
        s = arch.sparse.structured
        return rate * (s.math_speedup if structured_sparse and s is not None else 1.0)
    r = _reram(arch)
    return r.tiles * r.imas_per_tile * ima_macs_per_mvm(r) / (mvm_time_ns(r) * 1e-9)


def peak_ops_per_s(arch: Architecture, *, structured_sparse: bool = False) -> float:
    """Peak operations per second, counting a MAC as two operations (TOPS/TFLOPS convention)."""
    return 2 * peak_macs_per_s(arch, structured_sparse=structured_sparse)


def cells_per_weight(r: ReramCompute) -> int:
    """Cells one weight occupies: its bit slices (``weight_bits``, or ``weight_bits - 1`` magnitude bits
    for a differential pair, over ``bits_per_cell``) times its column sets (1 offset, 2 differential)."""
    diff = r.signed_weights != "offset"
    return -(-(r.weight_bits - diff) // r.crossbar.bits_per_cell) * (2 if diff else 1)


def ima_weights_per_row(r: ReramCompute) -> int:
    """Weights one crossbar row of an IMA holds across its crossbars (slices and column sets)."""
    return r.crossbars_per_ima * r.crossbar.cols // cells_per_weight(r)


def ima_macs_per_mvm(r: ReramCompute) -> int:
    """MACs of one full matrix-vector multiply in an IMA."""
    return r.crossbar.rows * ima_weights_per_row(r)


def mvm_time_ns(r: ReramCompute) -> float:
    """Time of one matrix-vector multiply, ns: input bits streamed through the DACs, one read each
    (``ceil(rows / parallel_rows)`` reads with a partial parallel read); a read lasts at least as
    long as the crossbar's ADCs take to convert its columns."""
    xb = r.crossbar
    groups = -(-xb.rows // xb.parallel_rows) if 0 < xb.parallel_rows < xb.rows else 1
    pair = 2 if r.signed_weights == "differential_subtract" else 1  # a subtracting pair converts once
    adc_ns = -(-xb.cols * r.crossbars_per_ima // (r.adcs_per_ima * pair)) / r.adc.sample_rate_hz * 1e9
    return -(-r.input_bits // r.dac.bits) * groups * max(xb.read_cycle_ns, adc_ns)


def ima_power_mw(r: ReramCompute) -> float:
    """Power of one IMA at full activity: crossbars, ADCs, DACs and its peripherals."""
    return (r.crossbars_per_ima * r.crossbar.power_mw + r.adcs_per_ima * r.adc.power_mw
            + r.dacs_per_ima * r.dac.power_mw + sum(p.count * p.power_mw for p in r.ima_peripherals))


def tile_power_mw(r: ReramCompute) -> float:
    """Power of one tile at full activity."""
    return r.imas_per_tile * ima_power_mw(r) + sum(p.count * p.power_mw for p in r.tile_peripherals)


def adc_power_share(r: ReramCompute) -> float:
    """ADC share of tile power."""
    return r.imas_per_tile * r.adcs_per_ima * r.adc.power_mw / tile_power_mw(r)


def area_by_component_mm2(arch: Architecture) -> dict[str, float]:
    """On-chip area per component, mm² (all instances; the off-chip DRAM/HBM is not on the chip).
    A component whose preset cites no area contributes 0 (``area_mm2`` defaults to 0)."""
    out = {m.name: m.area_mm2 * m.instances for m in arch.memories if not m.off_chip}
    out["vector_unit"] = arch.vector_unit.area_mm2
    if arch.compute is not None:
        out["compute"] = arch.compute.area_mm2
    if arch.gpu is not None:
        out["sms"] = arch.gpu.sms * arch.gpu.sm_area_mm2
    if arch.reram is not None:
        r = arch.reram
        ima = (r.crossbars_per_ima * r.crossbar.area_mm2 + r.adcs_per_ima * r.adc.area_mm2
               + r.dacs_per_ima * r.dac.area_mm2 + sum(p.count * p.area_mm2 for p in r.ima_peripherals))
        out["imas"] = r.tiles * r.imas_per_tile * ima
        out["tile_peripherals"] = r.tiles * sum(p.count * p.area_mm2 for p in r.tile_peripherals)
    return out


def chip_area_mm2(arch: Architecture) -> float:
    """Total on-chip area, mm²: the sum of :func:`area_by_component_mm2`."""
    return float(sum(area_by_component_mm2(arch).values()))


def summary(arch: Architecture) -> dict[str, float]:
    """Headline figures with their units in the keys."""
    out = {"clock_hz": arch.clock_hz, "peak_tops": peak_ops_per_s(arch) / 1e12,
           "off_chip_bandwidth_bytes_per_s": arch.off_chip.bandwidth_bytes_per_s,
           "on_chip_capacity_bytes": sum(m.capacity_bytes * m.instances for m in arch.memories[:-1]),
           "chip_area_mm2": chip_area_mm2(arch)}
    if arch.sparse.structured is not None:
        out["peak_tops_structured_sparse"] = peak_ops_per_s(arch, structured_sparse=True) / 1e12
    if arch.compute is not None:
        out["macs_per_cycle"] = arch.compute.rows * arch.compute.cols * arch.compute.macs_per_pe_per_cycle
    if arch.reram is not None:
        r = arch.reram
        out |= {"ima_power_mw": ima_power_mw(r), "tile_power_mw": tile_power_mw(r),
                "chip_power_w": r.tiles * tile_power_mw(r) / 1e3, "adc_power_share": adc_power_share(r),
                "mvm_time_ns": mvm_time_ns(r), "adc_conversion_energy_pj": r.adc.conversion_energy_pj}
    return out


def _reram(arch: Architecture) -> ReramCompute:
    if arch.reram is None:
        raise ValueError(f"{arch.name} has no compute section")
    return arch.reram
