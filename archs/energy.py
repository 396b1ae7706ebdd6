"""The energy table: energy per action and component, read off an architecture's fields.

Energy = action counts × this table + leakage × time (DESIGN.md); the simulator counts actions,
this module says what each costs. No entry is ever a silent default: an action a machine does
not describe is absent, and asking for it raises ``KeyError``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .architecture import Architecture


@dataclass(frozen=True)
class EnergyEntry:
    """Energy of one action of one component."""

    component: str
    action: str
    energy_pj: float
    per: str  # what one action is: "MAC", "byte", "conversion", ...


def energy_table(arch: Architecture) -> tuple[EnergyEntry, ...]:
    """Every (component, action) energy of ``arch``, in pJ per action."""
    out: list[EnergyEntry] = []
    if arch.compute is not None:
        c = arch.compute
        out += [EnergyEntry("compute", "mac", c.mac_energy_pj, "MAC"),
                EnergyEntry("compute", "gated_mac", c.gated_mac_energy_pj, "MAC")]
    if arch.gpu is not None:
        out.append(EnergyEntry("tensor_core", "fma", arch.gpu.tensor_core.fma_energy_pj, "FMA"))
    if arch.reram is not None:
        r = arch.reram
        read_s = r.crossbar.read_cycle_ns * 1e-9
        out += [EnergyEntry("crossbar", "read", r.crossbar.power_mw * 1e-3 * read_s * 1e12, "crossbar read"),
                EnergyEntry("adc", "conversion", r.adc.conversion_energy_pj, "conversion"),
                EnergyEntry("dac", "drive", r.dac.power_mw * 1e-3 * read_s * 1e12, "word-line drive"),
                EnergyEntry("shift_add", "op", r.shift_add_energy_pj, "partial result"),
                EnergyEntry("cell", "write_pulse", r.write.pulse_energy_pj, "pulse"),
                EnergyEntry("write_driver", "row_pulse", r.write.driver_energy_pj_per_row_pulse,
                            "row phase pulse"),
                EnergyEntry("write_driver", "bit_line_pulse", r.write.driver_energy_pj_per_bit_line_pulse,
                            "bit line × pulse"),
                EnergyEntry("write_driver", "source_line_pulse",
                            r.write.driver_energy_pj_per_source_line_pulse, "source line × pulse"),
                EnergyEntry("write_driver", "crossbar", r.write.driver_energy_pj_per_crossbar,
                            "crossbar written"),
                EnergyEntry("write_verify", "cell", r.write.verify_energy_pj_per_cell, "cell read back"),
                EnergyEntry("digital_mac", "mac", r.digital_mac_energy_pj, "MAC")]
    out.append(EnergyEntry("vector_unit", "op", arch.vector_unit.op_energy_pj, "element op"))
    for m in arch.memories:
        md_r = m.read_energy_pj_per_byte if m.metadata_read_energy_pj_per_byte < 0 \
            else m.metadata_read_energy_pj_per_byte
        md_w = m.write_energy_pj_per_byte if m.metadata_write_energy_pj_per_byte < 0 \
            else m.metadata_write_energy_pj_per_byte
        out += [EnergyEntry(m.name, "read", m.read_energy_pj_per_byte, "byte"),
                EnergyEntry(m.name, "write", m.write_energy_pj_per_byte, "byte"),
                EnergyEntry(m.name, "metadata_read", md_r, "byte"),
                EnergyEntry(m.name, "metadata_write", md_w, "byte")]
    out += [EnergyEntry(ln.name, "transfer", ln.energy_pj_per_byte, "byte") for ln in arch.links]
    return tuple(out)


_TABLES: OrderedDict[int, tuple[Architecture, dict[tuple[str, str], float]]] = OrderedDict()
_TABLES_KEPT = 64  # architectures whose tables stay built (a sweep's designs, one at a time)


def energy_lookup(arch: Architecture) -> dict[tuple[str, str], float]:
    """The energy table as ``{(component, action): pJ}``, built once per architecture object (hashing a
    whole architecture costs more than a lookup; the object is kept so that its id stays its own)."""
    hit = _TABLES.get(id(arch))
    if hit is None or hit[0] is not arch:
        hit = _TABLES[id(arch)] = (arch, {(e.component, e.action): e.energy_pj for e in energy_table(arch)})
        while len(_TABLES) > _TABLES_KEPT:
            _TABLES.popitem(last=False)
    return hit[1]


def energy_pj(arch: Architecture, component: str, action: str) -> float:
    """One entry of the table; ``KeyError`` naming what exists when absent."""
    table = energy_lookup(arch)
    if (component, action) in table:
        return table[(component, action)]
    known = sorted(f"{c}.{a}" for c, a in table)
    raise KeyError(f"{arch.name} has no energy for {component}.{action}; it has {known}")


def leakage_mw(arch: Architecture) -> dict[str, float]:
    """Static power per component (all instances), mW."""
    out = {m.name: m.leakage_mw * m.instances for m in arch.memories}
    out["vector_unit"] = arch.vector_unit.leakage_mw
    if arch.compute is not None:
        out["compute"] = arch.compute.leakage_mw
    if arch.gpu is not None:
        out["sms"] = arch.gpu.sm_leakage_mw * arch.gpu.sms
    if arch.reram is not None:
        r = arch.reram
        out["adc"] = r.adc.leakage_mw * r.adcs_per_ima * r.imas_per_tile * r.tiles
    return out
