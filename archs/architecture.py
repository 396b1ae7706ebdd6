"""The whole machine: one spec language for the edge-NPU, GPU-like and ReRAM families."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .components import (
    ComputeArray,
    GpuCompute,
    Link,
    Memory,
    ReramCompute,
    SparseFeatures,
    VectorUnit,
)
from .fields import MAX_HZ, MAX_MACS_PER_CYCLE, MIN_HZ, spec

FAMILIES = ("edge_npu", "gpu", "reram")
_FAMILY_SECTION = {"edge_npu": "compute", "gpu": "gpu", "reram": "reram"}


@dataclass(frozen=True)
class Architecture:
    """A machine description. Build one with :func:`archs.load` or a preset; vary it with
    :func:`archs.replace`."""

    name: str = spec(doc="short name")
    family: Literal["edge_npu", "gpu", "reram"] = spec(doc="edge_npu, gpu or reram")
    clock_hz: float = spec(doc="core clock, Hz", ge=MIN_HZ, le=MAX_HZ)
    memories: tuple[Memory, ...] = spec(doc="memory levels, innermost first, off-chip last")
    vector_unit: VectorUnit = spec(doc="runs the non-GEMM work")
    description: str = spec("", doc="what this machine is and where its numbers come from")
    tech_nm: int = spec(45, doc="technology node of the energy figures, nm", gt=0, le=10**4)
    compute: ComputeArray | None = spec(None, doc="edge NPU: the PE array")
    gpu: GpuCompute | None = spec(None, doc="GPU-like: SMs and tensor cores")
    reram: ReramCompute | None = spec(None, doc="ReRAM: tiles, IMAs, crossbars")
    links: tuple[Link, ...] = spec((), doc="transfer paths between memories")
    sparse: SparseFeatures = spec(SparseFeatures(), doc="sparse acceleration features")

    def memory(self, name: str) -> Memory:
        """A memory level by name."""
        for m in self.memories:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} has no memory {name!r}; it has {[m.name for m in self.memories]}")

    @property
    def off_chip(self) -> Memory:
        """The outermost (DRAM/HBM) level."""
        return self.memories[-1]

    def check(self) -> list[str]:
        """Cross-field problems as ``path: message`` strings (empty when consistent)."""
        problems: list[str] = []
        section = _FAMILY_SECTION[self.family]
        for fam, sec in _FAMILY_SECTION.items():
            present = getattr(self, sec) is not None
            if sec == section and not present:
                problems.append(f"{sec}: a {self.family} machine needs a {sec} section")
            elif sec != section and present:
                problems.append(f"{sec}: only {fam} machines have a {sec} section; this one is {self.family}")
        names = [m.name for m in self.memories]
        if not names:
            problems.append("memories: at least one memory level (the off-chip DRAM/HBM) is needed")
        for i, n in enumerate(names):
            if n in names[:i]:
                problems.append(f"memories[{i}].name: {n!r} is used twice; names must be unique")
        if names and not self.memories[-1].off_chip:
            problems.append(f"memories: the last level must be dram or hbm, got {self.memories[-1].kind}")
        for m in self.memories[:-1]:
            if m.off_chip:
                problems.append(f"memories.{m.name}: off-chip level {m.name!r} must be the last one")
        known = set(names)
        link_names = [ln.name for ln in self.links]
        for i, ln in enumerate(self.links):
            for end in ("source", "destination"):
                if getattr(ln, end) not in known:
                    problems.append(f"links.{ln.name}.{end}: no memory named {getattr(ln, end)!r}; "
                                    f"memories are {names}")
            if ln.name in link_names[:i]:
                problems.append(f"links[{i}].name: {ln.name!r} is used twice")
        for m in self.memories:
            problems += _duplicates(m.operands, f"memories.{m.name}.operands")
        for ln in self.links:
            problems += _duplicates(ln.operands, f"links.{ln.name}.operands")
        if self.compute is not None:
            c = self.compute
            macs = c.rows * c.cols * c.macs_per_pe_per_cycle
            for side in ("unroll_rows", "unroll_cols"):
                problems += _duplicates(getattr(c, side), f"compute.{side}")
                if getattr(c, side) and not c.register_file_tiling:
                    problems.append(f"compute.{side}: unrolling is chosen by the register-file level's "
                                    "mapper; set compute.register_file_tiling: true or remove it")
            if len(c.unroll_rows) == len(c.unroll_cols) == 1 and c.unroll_rows == c.unroll_cols:
                problems.append(f"compute.unroll_cols: {c.unroll_cols[0]} is also the only row dimension; "
                                "unroll another dimension over the columns")
            if macs > MAX_MACS_PER_CYCLE:
                problems.append(f"compute: rows × cols × macs_per_pe_per_cycle = {macs:.3g} MACs per cycle "
                                f"exceeds 2**30; describe a smaller array")
        stored: dict[tuple[str, str], int] = {}
        for i, f in enumerate(self.sparse.formats):
            if f.level not in known:
                problems.append(f"sparse.formats[{i}].level: no memory named {f.level!r}; "
                                f"memories are {names}")
            first = stored.setdefault((f.level, f.operand), i)
            if first != i:
                problems.append(f"sparse.formats[{i}]: a second format for operand {f.operand!r} at "
                                f"{f.level!r} (sparse.formats[{first}] is "
                                f"{self.sparse.formats[first].format}); keep one")
            elif f.level in known and f.operand not in self.memory(f.level).operands:
                problems.append(f"sparse.formats[{i}]: {f.level!r} does not hold operand {f.operand!r} "
                                f"(its operands are {list(self.memory(f.level).operands)})")
        seen_actions: dict[tuple, int] = {}
        for i, a in enumerate(self.sparse.actions):
            if a.level != "compute" and a.level not in known:
                problems.append(f"sparse.actions[{i}].level: {a.level!r} is neither 'compute' nor a memory")
            if not a.condition_on:
                problems.append(f"sparse.actions[{i}].condition_on: name at least one operand")
            problems += _duplicates(a.condition_on, f"sparse.actions[{i}].condition_on")
            first = seen_actions.setdefault((a.kind, a.level, a.target), i)
            if first != i:
                problems.append(f"sparse.actions[{i}]: {a.kind} of {a.target!r} at {a.level!r} is already "
                                f"sparse.actions[{first}]; keep one (list every condition operand there)")
        s = self.sparse.structured
        if s is not None and s.n > s.m:
            problems.append(f"sparse.structured: n={s.n} must not exceed m={s.m}")
        if s is not None and (s.kernel_tile_m == 0) != (s.kernel_tile_n == 0):
            problems.append(f"sparse.structured: kernel_tile_m={s.kernel_tile_m} and kernel_tile_n="
                            f"{s.kernel_tile_n}: give both (a fixed N:M kernel tile) or neither (0, 0: the "
                            "dense GEMM heuristic's tiles)")
        for curve in ("kernel_efficiency", "cusparse_efficiency"):
            dens = [p.density for p in getattr(self.sparse, curve)]
            if dens != sorted(set(dens)):
                problems.append(f"sparse.{curve}: densities must be strictly increasing")
        if self.reram is not None:
            problems += _reram_problems(self.reram)
        g = self.gpu
        if g is not None and g.short_k_stages and not g.short_k_tile_k:
            problems.append(f"gpu: short_k_stages={g.short_k_stages} needs short_k_tile_k, the shipped "
                            "multistage kernels' K step (got 0); or set short_k_stages to 0: no short-K "
                            "regime")
        if self.family == "gpu" and self.compute is None and self.sparse.actions:
            problems.append("sparse.actions: GPU-like machines use sparse.structured and "
                            "sparse.kernel_efficiency, not gating/skipping actions")
        return problems


def _reram_problems(r: ReramCompute) -> list[str]:
    """An IMA must hold at least one weight per crossbar row: its cells (bit slices × column sets)
    side by side across the IMA's crossbars (a weight never spans IMAs)."""
    from .derived import cells_per_weight

    cells = cells_per_weight(r)
    row = r.crossbars_per_ima * r.crossbar.cols
    if row < cells:
        return [f"reram: an IMA's crossbar rows hold crossbars_per_ima × crossbar.cols = {row} cells, fewer "
                f"than the {cells} cells of one weight ({r.weight_bits}-bit weights over "
                f"{r.crossbar.bits_per_cell}-bit cells, signed_weights {r.signed_weights}): give the IMA "
                "more crossbars or columns, or the cells more bits"]
    return []


def _duplicates(items: tuple[str, ...], path: str) -> list[str]:
    """``path: 'a' listed twice`` for every repeated entry of an operand list."""
    twice = sorted({x for i, x in enumerate(items) if x in items[:i]})
    return [f"{path}: {x!r} listed twice; list each once" for x in twice]
