"""Energy = action counts × the architecture's energy table + leakage × time (never in a loop).

Prices come from ``hwsim.pricing`` (so a sweep can record this arithmetic once and re-price it
for many energy tables, bit for bit)."""

from __future__ import annotations

from collections import defaultdict

from archs import Architecture

from .pricing import price


def pass_energy(arch: Architecture, *, actual_macs: int, gated_macs: int,
                traffic: dict[tuple[str, str, str, str], float], vector_ops: float,
                cycles: int) -> dict[str, float]:
    """Energy per component in pJ: compute, each memory level and link, vector unit, leakage."""
    out: dict[str, float] = defaultdict(float)
    if arch.compute is not None:
        out["compute"] += actual_macs * price(arch, "compute", "mac")
        out["compute"] += gated_macs * price(arch, "compute", "gated_mac")
    for key, pj in traffic_energy(arch, traffic).items():
        out[key] += pj
    out["vector_unit"] += vector_ops * price(arch, "vector_unit", "op")
    seconds = cycles / arch.clock_hz
    out["leakage"] += price(arch, "leakage", "total_mw") * 1e-3 * seconds * 1e12
    return dict(out)


def traffic_energy(arch: Architecture, traffic: dict[tuple[str, str, str, str], float]) -> dict[str, float]:
    """Energy (pJ) of memory and link traffic per component: bytes by (component, operand, data or
    metadata, direction) × the component's energy per byte for that action (a link's: transfer);
    metadata goes to ``<component>_metadata``."""
    links = {ln.name for ln in arch.links}
    out: dict[str, float] = defaultdict(float)
    for (component, _op, kind, direction), moved in traffic.items():
        if component in links:
            out[component] += moved * price(arch, component, "transfer")
            continue
        action = direction if kind == "data" else f"metadata_{direction}"
        key = component if kind == "data" else f"{component}_metadata"
        out[key] += moved * price(arch, component, action)
    return dict(out)
