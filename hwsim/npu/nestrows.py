"""Report rows under a mapping: ``simulate(..., mapping=...)`` / ``hwsim replay --mapping``.

Without a mapping (``fixed``) a row keeps the replay's traffic (``hwsim.npu.mapping``'s fixed loop
order, SCALE-Sim's convention) and its ``mapping`` column names that order. With ``scalesim`` the
traffic above the array is SCALE-Sim 3.0.0's own CALC-mode DRAM reads and writes
(``hwsim.npu.scalesim_traffic``), and the array's writes into the output buffer stay the replay's
too. With ``search`` (the
mapper, ``hwsim.npu.mapper``) or a mapping file, the traffic above the array comes from the loop
nest of the chosen mapping (raw tensors with halos, partial residency, partial-sum and col2im
read-modify-writes, formats at every level, densities from the iteration's masks): the DRAM
level, the buffer fills and drains, the output buffer's accumulation and the links. What the
array itself does stays the replay's, counted from the masks: cycles, MACs, the buffer-to-array
reads of ``a`` and ``b`` (so cycles and SRAM reads keep agreeing with SCALE-Sim). The energy of the
replaced traffic is replaced; the dense baseline is the same machine without sparse features under
its own mapping (search) or the same mapping (file), so an energy saving includes the DRAM bytes
a compressed format saves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from archs import Architecture
from archs.components import SparseFeatures
from traces.format.layer import LayerSpec

from ..energy import traffic_energy
from ..errors import MappingError
from ..pricing import price, ratio
from ..workload import operand_kind
from .loopnest import DIMS, ROLES, ConvShape
from .mapper import NestMapping, NestResult, evaluate, search
from .mapping import buffers, map_gemm
from .mapping_file import MappingFile, load_mapping_file
from .nest_timing import NestTiming, nest_plan, nest_timing
from .pe_tiles import register_files, tiled
from .scalesim_traffic import ScalesimCounts, layer_counts
from .scalesim_traffic import result as scalesim_result
from .tiles import DENSE, TileCosts, tile_costs
from .traffic import link_totals, traffic

# per pass, the recorded tensor whose density each GEMM operand has
DENSITY_OF = {"forward": {"a": "x", "b": "w", "c": "y"},
              "backward_data": {"a": "dy", "b": "w", "c": "dx"},
              "backward_weight": {"a": "x", "b": "dy", "c": "dw"}}
DIRECTIONS = ("read", "write", "transfer")


@dataclass
class MappingContext:
    """How rows are mapped: ``fixed``, ``scalesim``, ``search`` (by ``objective``) or a mapping file."""

    arch: Architecture
    mode: str
    objective: str = "energy"
    file: MappingFile | None = None
    dataflow: str | None = None
    stream_chunk: int | None = None

    def __post_init__(self) -> None:
        self.dense_arch = replace(self.arch, sparse=SparseFeatures())  # the dense baseline's machine
        self.fixed_dense: dict[tuple, dict] = {}
        self.scalesim_cache: dict[tuple, ScalesimCounts] = {}
        self.timings: dict[tuple, NestTiming] = {}
        self.columns: dict[str, tuple[str, str, str, str] | None] = {}  # report column -> traffic key

    @classmethod
    def of(cls, arch: Architecture, mapping: str | Path | None, objective: str, dataflow: str | None,
           stream_chunk: int | None) -> MappingContext:
        """``mapping``: None or ``fixed`` (today's order), ``scalesim`` (SCALE-Sim's DRAM counts),
        ``search``, or a YAML mapping file."""
        df = dataflow or (arch.compute.dataflow if arch.compute is not None else None)
        if mapping is None or mapping == "fixed":
            return cls(arch, "fixed", objective, None, df, stream_chunk)
        if mapping == "search":
            return cls(arch, "search", objective, None, df, stream_chunk)
        if mapping == "scalesim":
            return cls(arch, "scalesim", objective, None, df, stream_chunk)
        f = load_mapping_file(mapping)
        return cls(arch, "file", f.objective, f, df, stream_chunk)

    def apply(self, spec: LayerSpec, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its ``mapping`` column and, unless fixed, the loop nest's traffic."""
        pass_ = row.get("pass")
        if pass_ not in ROLES or pass_ not in spec.gemm_passes:  # the update, an embedding's vector work
            return row
        eb = self.elem_bytes(spec, pass_)
        batch = int(row.get("simulated_batch") or row.get("batch") or 1)
        if self.mode == "fixed":
            g = spec.gemm(pass_, batch)
            mp = map_gemm(g.m, g.k, g.n, self.arch, self.dataflow, eb, self.stream_chunk)
            stream = {"ws": "M", "is": "N", "os": "K"}[mp.dataflow]
            return {**row, "mapping": f"{mp.dataflow} {stream}{mp.stream_chunk} | "
                                      f"C{mp.col_folds} R{mp.row_folds} {stream}{mp.chunks}"}
        shape = ConvShape.of(spec, batch)
        dens = {op: float(row.get(f"density_{t}", 1.0)) for op, t in DENSITY_OF[pass_].items()}
        dense = {"a": 1.0, "b": 1.0, "c": 1.0}
        try:
            if self.mode == "scalesim":
                nm = row.get("structured_nm") if pass_ == "forward" else None
                nm = tuple(int(v) for v in nm.split(":")) if isinstance(nm, str) else None
                counts = self.scalesim_counts(spec, pass_, batch, eb, nm)
                # a compressed filter's words are its kept values: dense in the SRAM's format
                res = scalesim_result(counts, self.arch, eb, {**dens, "b": 1.0} if nm else dens)
                base = scalesim_result(self.scalesim_counts(spec, pass_, batch, eb) if nm else counts,
                                       self.dense_arch, eb, dense)
            else:
                res = self.choose(spec, shape, pass_, self.arch, eb, dens)
                base = self.choose(spec, shape, pass_, self.dense_arch, eb, dense)
        except MappingError as exc:
            raise MappingError(f"layer {spec.name}, {pass_}: {exc}") from None
        out = dict(row)
        if self.mode == "scalesim":  # SCALE-Sim's CALC mode is stall-free by construction
            retime(self.arch, out, row["gemm_cycles"] - row["stall_cycles"], row["compute_cycles"], 0,
                   row["dense_gemm_cycles"] - row["dense_stall_cycles"], row["dense_compute_cycles"], 0)
        else:
            scale = ratio(row["compute_cycles"], row["dense_compute_cycles"], 1.0)
            t = self.timing(shape, pass_, self.arch, res, eb, scale)
            tb = self.timing(shape, pass_, self.dense_arch, base, eb, 1.0)
            quirk = 1 if self.arch.compute.microarchitecture == "systolic" and t.tiles else 0
            retime(self.arch, out, t.total_cycles - quirk, round(t.array_cycles * scale),
                   max(t.total_cycles - t.compute_cycles, 0), tb.total_cycles - quirk, tb.array_cycles,
                   max(tb.total_cycles - tb.compute_cycles, 0))
            out["mapper_gemm_cycles"] = res.cycles - quirk
            out["dense_mapper_gemm_cycles"] = base.cycles - quirk
        old = _totals_of(self.traffic_key, row)
        array_writes = self.mode == "scalesim"  # SCALE-Sim's own array-side ofmap writes: the replay's
        new = merge(self.arch, old, res, array_writes)
        e_old, e_new = traffic_energy(self.arch, old), traffic_energy(self.arch, new)
        for key in [k for k in out if k.endswith("_bytes") and self.traffic_key(k) is not None]:
            del out[key]
        for (comp, op, kind, direction), moved in new.items():
            out[f"{comp}_{op}{'' if kind == 'data' else '_metadata'}_{direction}_bytes"] = moved
        for comp in set(e_old) | set(e_new):
            out[f"energy_{comp}_pj"] = e_new.get(comp, 0.0)
        out["energy_pj"] = out["energy_pj"] - sum(e_old.values()) + sum(e_new.values())
        fixed_dense = self.fixed_dense_totals(spec, pass_, batch, eb)
        d_old = sum(traffic_energy(self.arch, fixed_dense).values())
        d_new = sum(traffic_energy(self.arch, merge(self.arch, fixed_dense, base, array_writes)).values())
        out["dense_energy_pj"] = out["dense_energy_pj"] - d_old + d_new
        out["energy_saving"] = ratio(out["dense_energy_pj"], out["energy_pj"])
        out["mapping"] = res.notation
        out["mapping_source"] = self.mode
        return out

    def traffic_key(self, column: str) -> tuple[str, str, str, str] | None:
        """``_parse`` of a report column, memoized for the run."""
        if column not in self.columns:
            self.columns[column] = _parse(self.arch, column)
        return self.columns[column]

    def scalesim_counts(self, spec: LayerSpec, pass_: str, batch: int, eb: dict[str, float],
                        nm: tuple[int, ...] | None = None) -> ScalesimCounts:
        """SCALE-Sim's DRAM words of this pass (``nm``: its N:M filter compression), cached per
        layer geometry within the run."""
        key = (spec.kind, spec.x_shape, spec.w_shape, spec.y_shape, spec.stride, spec.padding, spec.dilation,
               spec.groups, pass_, batch, tuple(sorted(eb.items())), nm)
        if key not in self.scalesim_cache:
            self.scalesim_cache[key] = layer_counts(spec, pass_, batch, self.arch, self.dataflow, eb, nm)
        return self.scalesim_cache[key]

    def timing(self, shape: ConvShape, pass_: str, arch: Architecture, res: NestResult, eb: dict[str, float],
               scale: float) -> NestTiming:
        """The chosen nest scheduled tile by tile (``nest_timing``), cached within the run."""
        off = arch.off_chip.name
        dram: dict[tuple[str, str], float] = {}
        for (level, op, _kind, direction), moved in res.bytes.items():
            if level == off:
                dram[(op, direction)] = dram.get((op, direction), 0.0) + moved
        key = (shape, pass_, id(arch), res.mapping, tuple(sorted(res.levels.items())),
               tuple(sorted((k, round(v, 3)) for k, v in dram.items())), tuple(sorted(eb.items())),
               round(scale, 9))
        if key not in self.timings:
            plan = nest_plan(shape, pass_, arch, res.mapping.tile, res.mapping.order, res.levels, dram, eb,
                             self.dataflow or arch.compute.dataflow, scale, res.tile_array, res.tile_stream,
                             res.mapping.slide)
            self.timings[key] = nest_timing(plan, arch)
        return self.timings[key]

    def elem_bytes(self, spec: LayerSpec, pass_: str) -> dict[str, float]:
        p = self.arch.compute.precision
        bits = {"activation": p.activation_bits, "weight": p.weight_bits, "gradient": p.gradient_bits}
        return {op: bits[kind] / 8 for op, kind in operand_kind(spec, pass_).items()}

    def choose(self, spec: LayerSpec, shape: ConvShape, pass_: str, arch: Architecture, eb: dict[str, float],
               dens: dict[str, float]) -> NestResult:
        given = self.file.lookup(spec.name, pass_) if self.file is not None else None
        if given is None:  # searched at densities rounded up to 5 % (cached across iterations), then
            # costed at the exact ones: the footprints only shrink, so the choice still fits
            coarse = {op: min(1.0, math.ceil(d * 20 - 1e-9) / 20) for op, d in dens.items()}
            found = search(shape, pass_, arch, eb, coarse, self.objective, self.dataflow)
            if self.objective == "latency":  # the estimate ranks; the schedule decides among the best
                found = self.fastest(shape, pass_, arch, eb, coarse, found)
            if coarse == dens:
                return found
            given = found.mapping
        tile = tuple(t or d for t, d in zip(given.tile, shape.dims, strict=True))
        try:
            mapping = NestMapping(tile, given.order, getattr(given, "pe", None), given.slide)
            return evaluate(shape, pass_, arch, mapping, eb, dens, self.dataflow)
        except MappingError as exc:
            raise MappingError(f"{self.file.path}: {exc}") from None

    def fastest(self, shape: ConvShape, pass_: str, arch: Architecture, eb: dict[str, float],
                dens: dict[str, float], found: NestResult) -> NestResult:
        """Among the latency search's best mappings and the energy search's choice, the one whose
        schedule ends first (ties: the earlier in that list): ``--objective latency`` never
        reports more cycles than ``energy`` on the same machine."""
        energy = search(shape, pass_, arch, eb, dens, "energy", self.dataflow)
        best, best_cycles = found, None
        for mp in (found.mapping, *found.runners_up, energy.mapping):
            res = found if mp == found.mapping else evaluate(shape, pass_, arch, mp, eb, dens, self.dataflow)
            cycles = self.timing(shape, pass_, arch, res, eb, 1.0).total_cycles
            if best_cycles is None or cycles < best_cycles:
                best, best_cycles = res, cycles
        return best

    def fixed_dense_totals(self, spec: LayerSpec, pass_: str, batch: int,
                           eb: dict[str, float]) -> dict[tuple[str, str, str, str], float]:
        """The dense baseline's traffic under the fixed order (what the replay's baseline moved)."""
        from .replay import _residency  # the replay's own residency rule, for its own baseline

        g = spec.gemm(pass_, batch)
        key = (pass_, g.m, g.k, g.n, g.groups, tuple(sorted(eb.items())))  # layers of one shape share it
        if key in self.fixed_dense:
            return self.fixed_dense[key]

        mp = map_gemm(g.m, g.k, g.n, self.arch, self.dataflow, eb, self.stream_chunk)
        t = tile_costs(None, None, None, mp, DENSE, _residency(mp, eb, buffers(self.arch)))
        self.fixed_dense[key] = traffic(self.arch, TileCosts.concat([t] * g.groups), eb, True).totals
        return self.fixed_dense[key]


def merge(arch: Architecture, old: dict[tuple[str, str, str, str], float], res: NestResult,
          keep_array_writes: bool = False) -> dict[tuple[str, str, str, str], float]:
    """The replay's traffic with everything above the array replaced by the loop nest's: the
    buffer-to-array reads of ``a`` and ``b`` and the register files stay (with
    ``keep_array_writes``, also the array's writes into the output buffer); links are recomputed."""
    bufs = {op: name for op, (name, _) in buffers(arch).items()}
    links = {ln.name for ln in arch.links}
    off = arch.off_chip.name
    pe_level = tiled(arch)  # the nest has its own register-file level: it replaces the array side too
    rfs = {rf for rf, _ in register_files(arch).values()} if pe_level else set()
    keep = {}
    for (comp, op, kind, direction), moved in old.items():
        if comp in links or comp == off or comp in rfs:
            continue
        array_side = not pe_level and ((op in ("a", "b") and direction == "read") or
                                       (keep_array_writes and op == "c" and direction == "write"))
        if comp == bufs.get(op) and not array_side:
            continue
        if comp == bufs.get(op) and op == "c" and direction == "write":  # the array's writes only: not
            moved -= old.get((off, "c", kind, "read"), 0.0)  # the old order's partial sums reloaded from DRAM
        keep[(comp, op, kind, direction)] = moved
    for (comp, op, kind, direction), moved in res.bytes.items():
        if not pe_level and comp == bufs.get(op) and op in ("a", "b") and direction == "read":
            continue
        if keep_array_writes and comp == bufs.get(op) and op == "c" and direction == "write":
            continue
        keep[(comp, op, kind, direction)] = keep.get((comp, op, kind, direction), 0.0) + moved
    keep.update(link_totals(arch, keep))
    return keep


def retime(arch: Architecture, out: dict[str, Any], gemm_cycles: int, compute_cycles: int, stall_cycles: int,
           dense_gemm_cycles: int, dense_compute_cycles: int, dense_stall_cycles: int) -> None:
    """Put a nest's schedule into a row: cycles (the GEMM or the vector unit, whichever is longer),
    compute and stall cycles, leakage energy over the new time, utilization and speedup; the same
    for the dense baseline."""
    leak_pj_per_cycle = price(arch, "leakage", "total_mw") * 1e-3 / arch.clock_hz * 1e12
    vec = int(out.get("vector_cycles", 0))
    cycles = max(gemm_cycles, vec)
    old_dense_gemm = out.get("dense_gemm_cycles", out["dense_cycles"])
    dense_vec = out["dense_cycles"] if out["dense_cycles"] > old_dense_gemm else 0
    dense_cycles = max(dense_gemm_cycles, dense_vec)
    out["energy_pj"] += (cycles - out["cycles"]) * leak_pj_per_cycle
    out["dense_energy_pj"] += (dense_cycles - out["dense_cycles"]) * leak_pj_per_cycle
    if "energy_leakage_pj" in out:
        out["energy_leakage_pj"] = cycles * leak_pj_per_cycle
    out.update(cycles=int(cycles), gemm_cycles=int(gemm_cycles), compute_cycles=int(compute_cycles),
               stall_cycles=int(stall_cycles), dense_cycles=int(dense_cycles),
               dense_gemm_cycles=int(dense_gemm_cycles), dense_compute_cycles=int(dense_compute_cycles),
               dense_stall_cycles=int(dense_stall_cycles))
    out["speedup"] = ratio(dense_cycles, cycles)
    pes = arch.compute.rows * arch.compute.cols
    out["utilization"] = out["actual_macs"] / max(cycles * pes, 1)


def _parse(arch: Architecture, column: str) -> tuple[str, str, str, str] | None:
    """``glb_a_metadata_read_bytes`` -> ``("glb", "a", "metadata", "read")``; None if not traffic."""
    names = [m.name for m in arch.memories] + [ln.name for ln in arch.links]
    for comp in sorted(names, key=len, reverse=True):
        if not column.startswith(f"{comp}_"):
            continue
        rest = column[len(comp) + 1:-len("_bytes")].split("_")
        if len(rest) == 2 and rest[0] in "abc" and rest[1] in DIRECTIONS:
            return comp, rest[0], "data", rest[1]
        if len(rest) == 3 and rest[0] in "abc" and rest[1] == "metadata" and rest[2] in DIRECTIONS:
            return comp, rest[0], "metadata", rest[2]
    return None


def _totals_of(key_of: Callable[[str], tuple[str, str, str, str] | None],
               row: dict[str, Any]) -> dict[tuple[str, str, str, str], float]:
    """A row's traffic columns by key (``key_of``: ``MappingContext.traffic_key``)."""
    out = {}
    for col, v in row.items():
        if col.endswith("_bytes"):
            key = key_of(col)
            if key is not None:
                out[key] = float(v)
    return out



__all__ = ["DIMS", "MappingContext", "merge"]
