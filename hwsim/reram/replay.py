"""ReRAM replay of one layer: crossbar passes, digital passes, the update with its cell writes.

- forward: an in-situ MVM on the layer's crossbars (``crossbar.mvm_costs``), then its activations
  through the tile buffers and the chip interconnect (``crossbar.data_movement_ns``, in series, as
  NeuroSim adds them; the stall cycles of the row);
- backward-data: a transposed read of the same crossbars when ``reram.transposed_read``, else
  on the digital unit (the vector unit, one op per MAC);
- backward-weight: on the digital unit (NeuroSim V2's choice: endurance);
- update: the optimizer on the digital unit (``hwsim.update``) plus the cell writes of the
  recorded update (``writes``); the crossbars are busy while written, so the write latency adds;
- a ``matmul`` (two activations: attention's ``Q·Kᵀ``, ``P·V``): every pass on the digital unit
  (an activation operand would have to be written into the crossbars every step).

Energy: crossbar reads, DAC drives, ADC conversions and their digital accumulation per action;
the IMA and tile peripherals (registers, S+H, shift-and-add, eDRAM buffer, bus, router share...)
as their power × the time their IMAs are busy (a tile's share is the IMA time over the IMAs per
tile); the activation traffic per bit (``traffic.py``); the digital unit per op; leakage × time.
The dense baseline is the same machine with every ``skip_zero_*`` off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from archs import Architecture
from archs.derived import peak_macs_per_s
from traces.format.layer import LayerSpec

from .. import embedding, vector
from ..errors import MappingError
from ..layer_input import LayerInput
from ..pricing import price, prices, ratio, total_pj, value
from ..update import state_tensors, update_ops_per_weight, update_row
from ..vector import VectorWork, gemm_pass_work
from ..workload import effectual, operands
from .activations import crossbar_product
from .crossbar import DENSE, MvmCosts, Skips, data_movement_ns, mvm_costs
from .mapping import LayerMap, map_layer, map_model
from .residency import Part, PartWrites, Residency, plan
from .traffic import TrafficBits, traffic_bits
from .traffic import energy as traffic_energy
from .update import Wear, recorded_counts, update_pass

READS_WEIGHTS = True
NO_TRAFFIC = TrafficBits()  # passes off the crossbars move no activations through the tiles


class Context:
    """What a ReRAM replay keeps across layers and iterations: the chip mapping, the dense
    baselines, and the writes each cell has had so far (wear)."""

    def __init__(self, arch: Architecture, manifest: dict[str, Any]) -> None:
        self.arch, self.r = arch, arch.reram
        self.skips = Skips.of(arch.sparse)
        self.method = manifest["method"]["name"]
        self.state_tensors = state_tensors(manifest)
        self.update_ops = update_ops_per_weight(manifest)  # element ops per weight of a step
        self.counted = bool(manifest.get("vector_ops"))  # non-GEMM work counted by the trace
        batch = int(manifest.get("batch_size") or 1)
        # layers with a weight and GEMMs sit in crossbars; a product of two activations (matmul)
        # does not, nor does an embedding's table (hwsim.embedding)
        specs = [s for s in map(LayerSpec.from_dict, manifest["layers"]) if s.has_weight and s.gemm_passes]
        self.training = manifest.get("optimizer") is not None
        keep = self.r.replicas_in_training == "rewritten"
        replicate = self.r.replicate_layers and (not self.training or keep)
        self.residency: Residency | None = None  # None: every weight stays in the crossbars
        try:
            vectors = [batch * s.rows_per_sample for s in specs]
            self.maps: dict[str, LayerMap] = map_model(specs, self.r, vectors, replicate=replicate)
        except MappingError:
            if self.r.weight_residency != "reprogram":
                raise
            # the weights do not fit: one copy of each, written into the crossbars in turns
            self.maps = {s.name: map_layer(s, self.r) for s in specs}
            self.residency = plan([s.name for s in specs], self.maps, arch)
        self.crossbar_layers = [s.name for s in specs]  # in forward order
        self.steps_per_epoch = int((manifest.get("schedule") or {}).get("iters_per_epoch") or 1)
        self.peak_macs_per_s = peak_macs_per_s(arch)
        self.baselines: dict[tuple, MvmCosts] = {}
        self.wear: dict[str, Wear] = {}  # layer -> pulses and writes per cell so far, and the array's scale
        self.primed: dict[int, dict[str, dict[str, float]]] = {}  # counts-only iteration -> layer -> counts
        self.primed_from: dict[int, int] = {}  # counts-only iteration -> its recorded iteration
        used = sum(m.imas * m.replicas for m in self.maps.values())
        chip = self.r.tiles * self.r.imas_per_tile
        self.meta = {"dataflow": None, "reram_imas_used": used, "reram_chip_imas": chip,
                     "reram_crossbars_used": sum(m.crossbars * m.replicas for m in self.maps.values())}
        # crossbars one copy of the weights holds at any one time (replicas give theirs up to
        # activation products, hwsim/reram/activations.py)
        self.held_crossbars = sum(m.crossbars for m in self.maps.values())
        self.meta["reram_weight_residency"] = "resident"
        if self.residency is not None:
            self.replan(None)

    def replan(self, backward: Sequence[str] | None) -> None:
        """Plan the reprogramming again knowing which layers have a backward-data pass."""
        res = self.residency = plan(self.crossbar_layers, self.maps, self.arch, backward)
        self.held_crossbars = res.crossbars
        self.meta.update(reram_weight_residency="reprogram", reram_programs=len(res.programs),
                         reram_programmings_per_iteration=res.programmings_per_iteration,
                         reram_reprogram_lifetime_iterations=res.lifetime_iterations(self.arch),
                         reram_split_layers=sum(len(p) > 1 for p in res.parts.values()))


def context(arch: Architecture, manifest: dict[str, Any], *, dataflow: str | None = None,
            backend: str = "analytic", stream_chunk: int | None = None,
            memory_budget_bytes: float | None = None) -> Context:
    """The replay context of a ReRAM machine; MappingError when the model does not fit the chip.
    ``dataflow``, ``backend``, ``stream_chunk`` and ``memory_budget_bytes`` do not apply to crossbars
    and are ignored."""
    return Context(arch, manifest)


def prime(ctx: Context, tr: Any, iterations: Sequence[int], layers: Sequence[int]) -> None:
    """Expected-value writes for the counts-only iterations replayed before any recorded one: the
    writes of the recorded iteration nearest each (the earlier one on a tie), read once."""
    if ctx.residency is not None and ctx.r.transposed_read and iterations:
        # backward-data reads the crossbars: which programs it needs depends on the layers that have it
        with tr.iteration(iterations[0]) as it:
            ctx.replan([s.name for li, s in enumerate(tr.layers) if it.count(li, "dx") is not None])
    recorded = [j for j in tr.mask_iterations]
    chosen = set(recorded)
    first = min((i for i in iterations if i in chosen), default=math.inf)
    todo = [i for i in iterations if i not in chosen and i < first]
    if not todo or not recorded or not ctx.training:
        return
    nearest = {i: min(recorded, key=lambda j, i=i: (abs(j - i), j)) for i in todo}
    for j in sorted(set(nearest.values())):
        per: dict[str, dict[str, float]] = {}
        with tr.iteration(j) as it:
            for li in layers:
                weights = it.weights(li)
                if weights is not None:
                    spec = tr.layers[li]
                    per[spec.name] = recorded_counts(ctx, spec, weights, it.mask(li, "w"))
        for i, src in nearest.items():
            if src == j:
                ctx.primed[i], ctx.primed_from[i] = per, j


def layer_rows(ctx: Context, spec: LayerSpec, it: LayerInput, li: int, passes: Sequence[str]) -> list[dict]:
    """Report rows of one layer of one iteration, one per pass that has work."""
    masks = {t: it.mask(li, t) for t in ("x", "w", "y_sel", "dy", "dw_needed")} if it.has_masks else {}
    exact = it.has_masks
    batch = it.mask_batch if exact else it.batch
    cache: dict = {}
    rows = []
    for pass_ in passes:
        if pass_ == "update":
            if it.count(li, "dw") is not None:
                rows.append(update_pass(ctx, spec, it, li, masks.get("w")))
            continue
        need = {"forward": ("x", "w"), "backward_data": ("dy", "w"), "backward_weight": ("x", "dy")}[pass_]
        if exact and any(masks[t] is None for t in need):
            continue
        if any(it.count(li, t) is None for t in need):
            continue
        if (pass_ == "backward_data" and it.count(li, "dx") is None) or \
                (pass_ == "backward_weight" and it.count(li, "dw") is None):
            continue
        row = _gemm_row(ctx, spec, pass_, masks if exact else None, batch, it.layer_stats(li), cache)
        row.update(iteration=it.index, layer=spec.name, simulated_batch=batch, batch=it.batch,
                   mode="exact" if exact else "dense_counts_only")
        rows.append(row)
    return rows


def _gemm_row(ctx: Context, spec: LayerSpec, pass_: str, masks: dict | None, batch: int, stats: dict,
              cache: dict) -> dict:
    r = ctx.r
    g = spec.gemm(pass_, batch)
    vec = gemm_pass_work(spec, pass_, batch, ctx.method, stats, ctx.counted)
    # an activation operand cannot sit in a crossbar without rewriting it every step: a matmul's
    # passes run on the digital unit
    on_crossbar = spec.has_weight and (pass_ == "forward" or (pass_ == "backward_data" and r.transposed_read))
    if not on_crossbar:  # the digital unit, dense: its MAC array, or the vector unit one op per MAC
        if r.digital_macs_per_cycle > 0:
            ns = math.ceil(g.macs / r.digital_macs_per_cycle) / ctx.arch.clock_hz * 1e9
            mac = MvmCosts(algorithmic_macs=g.macs, actual_macs=g.macs, time_ns=ns, digital_macs=g.macs)
            row = _row(ctx, mac, vec, mac, vec)
        else:
            work = VectorWork(vec.ops + g.macs)
            row = _row(ctx, MvmCosts(), work, MvmCosts(), work, digital_macs=g.macs)
            row["vector_ops"] = float(vec.ops)  # non-GEMM work only: the MACs are actual_macs (as on the GPU)
        row["reram_engine"] = "digital"
    else:
        lm = ctx.maps[spec.name]
        transposed = pass_ == "backward_data"
        dims = (g.m, g.k, g.n)
        stored = spec.numel("x", batch) if ctx.training and pass_ == "forward" else 0
        parts = ctx.residency.parts[spec.name] if ctx.residency is not None else ()
        if len(parts) > 1:  # a layer larger than the chip: its parts run one after another
            sparse, base, data, bits = _parts_pass(ctx, spec, pass_, dims, parts, masks, cache, stored)
        else:
            if masks is None:
                sparse = _dense(ctx, spec, pass_, dims, lm, g.groups, transposed)
            else:
                sparse = MvmCosts()
                for op in operands(spec, pass_, masks, cache):
                    sparse = sparse + mvm_costs(op.a, op.b, op.dims, lm, r, ctx.skips, transposed=transposed)
            base = _dense(ctx, spec, pass_, dims, lm, g.groups, transposed)
            data = data_movement_ns(dims, g.groups, lm, r)
            bits = traffic_bits(dims, g.groups, r, dram_values=stored)
        row = _row(ctx, sparse, vec, base, vec, data_ns=data, traffic=bits)
        if ctx.residency is not None:
            _reprogram(ctx, row, ctx.residency.before.get((spec.name, pass_)))
        row["reram_engine"] = "transposed_read" if transposed else "crossbar"
        row["reram_replicas"] = lm.replicas
        row["tiles"] = lm.crossbars * lm.replicas
    if not spec.has_weight:
        row = _activation_product(ctx, g, vec, row)
    row["pass"] = pass_
    if masks is not None:
        row["effectual_macs"], row["effectual_macs_gemm_view"] = effectual(spec, pass_, masks)
    return row


def _activation_product(ctx: Context, g: Any, vec: VectorWork, digital: dict) -> dict:
    """A product of two activations: the digital unit's row, or (``reram.activation_products:
    crossbar_writes``) the per-GEMM writes and MVMs of hwsim/reram/activations.py; both costs shown."""
    out = {"reram_act_path": ctx.r.activation_products, "reram_act_digital_cycles": digital["cycles"],
           "reram_act_digital_energy_pj": digital["energy_pj"]}
    try:
        # replicas give their crossbars up; a reprogrammed chip keeps its largest program's
        cp = crossbar_product(ctx.arch, (g.m, g.k, g.n), g.groups, ctx.held_crossbars)
    except MappingError as exc:
        if ctx.r.activation_products == "crossbar_writes":
            raise
        return {**digital, **out, "reram_act_crossbar_cycles": float("nan"),
                "reram_act_crossbar_energy_pj": float("nan"), "reram_act_crossbar_note": str(exc)}
    row = _row(ctx, cp.mvm, vec, cp.mvm, vec)
    write_cycles = _cycles(ctx, cp.write_ns)
    leak = price(ctx.arch, "leakage", "total_mw") * 1e-3 * write_cycles / ctx.arch.clock_hz * 1e12
    extra = cp.write_energy_pj + leak
    for key in ("cycles", "dense_cycles"):
        row[key] += write_cycles
    for key in ("energy_pj", "dense_energy_pj"):
        row[key] += extra
    row["energy_cell_write_pj"] = cp.write_energy_pj
    row["energy_leakage_pj"] = row.get("energy_leakage_pj", 0.0) + leak
    w = cp.writes
    out.update({"reram_act_crossbar_cycles": row["cycles"], "reram_act_crossbar_energy_pj": row["energy_pj"],
                "reram_act_cells_written": w.cells_written, "reram_act_write_pulses": w.pulses,
                "reram_act_write_cycles": write_cycles, "reram_act_write_energy_pj": cp.write_energy_pj,
                "reram_act_rounds": w.rounds, "reram_act_pulses_per_cell": w.pulses_per_cell,
                "reram_act_lifetime_passes": w.lifetime_passes(ctx.r)})
    if ctx.r.activation_products == "digital":
        return {**digital, **out}
    row["speedup"] = row["dense_cycles"] / max(row["cycles"], 1)
    row["reram_engine"] = "crossbar_writes"
    return {**row, **out}


def _parts_pass(ctx: Context, spec: LayerSpec, pass_: str, dims: tuple[int, int, int], parts: Sequence[Part],
                masks: dict | None, cache: dict, stored: int
                ) -> tuple[MvmCosts, MvmCosts, tuple[float, float], TrafficBits]:
    """A crossbar pass of a layer cut into parts (``residency.split_layer``) that run one after
    another, each in its own programming: per part its groups side by side (``+``), the parts' times
    added. ``dims`` of one whole group; a part of columns ``[c0, c1)`` computes those outputs
    (forward: ``B[:, c0:c1]``) or, transposed (backward-data), reads those rows of the reduction
    (``A[:, c0:c1]``, ``B[c0:c1]``); each part streams the pass's inputs again.
    Returns the sparse and dense costs, the activation traffic's time and its bits."""
    r = ctx.r
    m, k, n = dims
    transposed = pass_ == "backward_data"
    ops = operands(spec, pass_, masks, cache) if masks is not None else None
    sparse, base = MvmCosts(), MvmCosts()
    buffer_ns = ic_ns = 0.0
    bits = TrafficBits()
    for part in parts:
        width = part.c1 - part.c0
        pdims = (m, width, n) if transposed else (m, k, width)
        groups = part.g1 - part.g0
        key = (spec.name, pass_, pdims, "part")
        if key not in ctx.baselines:
            one = mvm_costs(None, None, pdims, part.lm, r, DENSE, transposed=transposed)
            total = MvmCosts()
            for _ in range(groups):
                total = total + one
            ctx.baselines[key] = total
        base = _then(base, ctx.baselines[key])
        if ops is None:
            sparse = _then(sparse, ctx.baselines[key])
        else:
            cost = MvmCosts()
            for op in ops[part.g0:part.g1]:
                if transposed:
                    a, b = op.a[:, part.c0:part.c1], op.b[part.c0:part.c1]
                else:
                    a, b = op.a, op.b[:, part.c0:part.c1]
                cost = cost + mvm_costs(a, b, pdims, part.lm, r, ctx.skips, transposed=transposed)
            sparse = _then(sparse, cost)
        b_ns, i_ns = data_movement_ns(pdims, groups, part.lm, r)
        buffer_ns, ic_ns = buffer_ns + b_ns, ic_ns + i_ns
        pb = traffic_bits(pdims, groups, r)
        bits = TrafficBits(bits.tile_input + pb.tile_input, bits.tile_output + pb.tile_output,
                           bits.chip + pb.chip, bits.dram)
    bits = TrafficBits(bits.tile_input, bits.tile_output, bits.chip, stored * r.input_bits)
    return sparse, base, (buffer_ns, ic_ns), bits


def _then(a: MvmCosts, b: MvmCosts) -> MvmCosts:
    """Two pieces of work one after another on the same crossbars: counts add, and so do times."""
    return MvmCosts(a.algorithmic_macs + b.algorithmic_macs, a.actual_macs + b.actual_macs,
                    a.crossbar_reads + b.crossbar_reads, a.dac_drives + b.dac_drives,
                    a.adc_conversions + b.adc_conversions, a.active_segments + b.active_segments,
                    a.segments + b.segments, a.ima_busy_ns + b.ima_busy_ns, a.time_ns + b.time_ns,
                    a.digital_macs + b.digital_macs, a.over_range_conversions + b.over_range_conversions)


def _reprogram(ctx: Context, row: dict, writes: PartWrites | None) -> None:
    """Add the programming that precedes a crossbar pass (``residency``) to its row, in place: its own
    columns (``reram_reprogram_*``, ``energy_reprogram_*_pj``), and its time and energy in the row's
    cycles and energy, the dense baseline's too (the same chip reprograms either way)."""
    arch = ctx.arch
    w = writes or PartWrites(0, 0.0, 0, 0.0, 0.0, 0, 0.0)
    cycles = _cycles(ctx, w.ns)
    energy = w.energy(arch)
    leak = price(arch, "leakage", "total_mw") * 1e-3 * cycles / arch.clock_hz * 1e12
    extra = total_pj(energy) + leak
    row["energy_leakage_pj"] = row["energy_leakage_pj"] + leak
    for key in ("cycles", "dense_cycles"):
        row[key] += cycles
    for key in ("energy_pj", "dense_energy_pj"):
        row[key] += extra
    row.update({f"energy_{k}_pj": v for k, v in energy.items()})
    row.update(reram_reprogram_cycles=cycles, reram_reprogram_energy_pj=extra,
               reram_reprogram_cells=w.cells, reram_reprogram_pulses=w.pulses,
               reram_reprogram_crossbars=w.crossbars, reram_reprogram_fetch_bytes=w.fetch_bytes,
               reram_programmings_per_iteration=ctx.residency.programmings_per_iteration)
    off = f"{arch.off_chip.name}_b_read_bytes"  # the weights fetched count as off-chip reads too
    row[off] = row.get(off, 0.0) + w.fetch_bytes
    row["speedup"] = ratio(row["dense_cycles"], row["cycles"])
    row["energy_saving"] = ratio(row["dense_energy_pj"], row["energy_pj"])
    seconds = row["cycles"] / arch.clock_hz
    row["utilization"] = row["actual_macs"] / (seconds * ctx.peak_macs_per_s) if seconds else 0.0


def _dense(ctx: Context, spec: LayerSpec, pass_: str, dims: tuple[int, int, int], lm: LayerMap, groups: int,
           transposed: bool) -> MvmCosts:
    """The dense baseline of a crossbar pass (it depends on shapes only: computed once)."""
    key = (spec.name, pass_, dims)
    if key not in ctx.baselines:
        one = mvm_costs(None, None, dims, lm, ctx.r, DENSE, transposed=transposed)
        total = MvmCosts()
        for _ in range(groups):
            total = total + one
        ctx.baselines[key] = total
    return ctx.baselines[key]


def _energy(ctx: Context, c: MvmCosts, vec: VectorWork, cycles: int,
            traffic: TrafficBits) -> dict[str, float]:
    """Energy per component in pJ (prices from ``hwsim.pricing``: the fields' values, re-priceable);
    ``traffic``: the activation bits the pass moves (``traffic.py``), priced per bit."""
    r, arch = ctx.r, ctx.arch
    p = prices(arch)
    read_ns = r.crossbar.read_cycle_ns
    seconds = cycles / arch.clock_hz
    return {
        "crossbar": c.crossbar_reads * p[("crossbar", "power_mw")] * read_ns,  # mW × ns = pJ
        "adc": c.adc_conversions * p[("adc", "conversion")],
        "accumulation": c.adc_conversions * p[("accumulation", "conversion")],
        "dac": c.dac_drives * p[("dac", "power_mw")] * read_ns,
        "ima_peripherals": c.ima_busy_ns * p[("ima_peripherals", "power_mw")],
        "tile_peripherals": c.ima_busy_ns / r.imas_per_tile * p[("tile_peripherals", "power_mw")],
        "vector_unit": vec.ops * p[("vector_unit", "op")],
        "digital_mac": c.digital_macs * p[("digital_mac", "mac")],
        "leakage": p[("leakage", "total_mw")] * 1e-3 * seconds * 1e12,
        **traffic_energy(traffic, p),
    }


def _cycles(ctx: Context, ns: float) -> int:
    """Whole clock cycles of ``ns`` nanoseconds."""
    return math.ceil(round(ns * ctx.arch.clock_hz / 1e9, 6))


def _timed(ctx: Context, c: MvmCosts, vec: VectorWork, data_ns: tuple[float, float] = (0.0, 0.0),
           traffic: TrafficBits = NO_TRAFFIC) -> dict[str, Any]:
    """Cycles and energy of a pass: the crossbar time, then the activation traffic (tile buffers and
    interconnect, ``data_ns``, in series as NeuroSim adds them), against the digital unit's time."""
    gemm_cycles = _cycles(ctx, c.time_ns)
    buffer_cycles, ic_cycles = _cycles(ctx, data_ns[0]), _cycles(ctx, data_ns[1])
    vec_cycles = vec.cycles(ctx.arch)
    cycles = max(gemm_cycles + buffer_cycles + ic_cycles, vec_cycles)
    energy = _energy(ctx, c, vec, cycles, traffic)
    out: dict[str, Any] = {"cycles": int(cycles), "gemm_cycles": int(gemm_cycles),
                           "vector_cycles": int(vec_cycles), "energy_pj": total_pj(energy),
                           "reram_buffer_cycles": int(buffer_cycles),
                           "reram_interconnect_cycles": int(ic_cycles)}
    out.update({f"energy_{k}_pj": value(v) for k, v in energy.items()})
    return out


def _row(ctx: Context, c: MvmCosts, vec: VectorWork, base: MvmCosts, base_vec: VectorWork,
         digital_macs: int = 0, data_ns: tuple[float, float] = (0.0, 0.0),
         traffic: TrafficBits = NO_TRAFFIC) -> dict[str, Any]:
    out, dense = _timed(ctx, c, vec, data_ns, traffic), _timed(ctx, base, base_vec, data_ns, traffic)
    algorithmic = digital_macs or c.algorithmic_macs
    actual = digital_macs or c.actual_macs
    seconds = out["cycles"] / ctx.arch.clock_hz
    return {
        **out, "compute_cycles": out["gemm_cycles"],
        "stall_cycles": out["reram_buffer_cycles"] + out["reram_interconnect_cycles"], "tiles": 0,
        "algorithmic_macs": int(algorithmic), "actual_macs": int(actual), "gated_macs": 0,
        "skipped_macs": int(algorithmic - actual), "vector_ops": float(vec.ops),
        "dense_cycles": dense["cycles"], "dense_gemm_cycles": dense["gemm_cycles"],
        "dense_compute_cycles": dense["gemm_cycles"],
        "dense_stall_cycles": dense["reram_buffer_cycles"] + dense["reram_interconnect_cycles"],
        "dense_energy_pj": dense["energy_pj"],
        "speedup": ratio(dense["cycles"], out["cycles"]),
        "energy_saving": ratio(dense["energy_pj"], out["energy_pj"]),
        "utilization": actual / (seconds * ctx.peak_macs_per_s) if seconds else 0.0,
        "reram_crossbar_reads": c.crossbar_reads, "reram_adc_conversions": c.adc_conversions,
        "reram_dac_drives": c.dac_drives, "reram_dense_adc_conversions": base.adc_conversions,
        "reram_adc_over_range_conversions": c.over_range_conversions,
        "reram_active_segments": c.active_segments, "reram_segments": c.segments,
        "reram_tile_input_bits": traffic.tile_input, "reram_tile_output_bits": traffic.tile_output,
        "reram_chip_bits": traffic.chip, "reram_dram_bits": traffic.dram,
    }


def embedding_rows(ctx: Context, spec: LayerSpec, it: LayerInput, li: int,
                   passes: Sequence[str]) -> list[dict]:
    """An embedding layer (``hwsim.embedding``): its table is not in crossbars (a gather would
    need every row read out digitally anyway), so gather, scatter-add and update run on the
    digital unit through off-chip memory; the update writes no cells."""
    def update() -> dict | None:
        if it.count(li, "dw") is None:
            return None
        row = update_row(ctx.arch, spec, it.index, weight_bits=ctx.r.weight_bits,
                         gradient_bits=ctx.r.input_bits, state=ctx.state_tensors,
                         ops_per_weight=ctx.update_ops)
        return {**row, "mode": "exact" if it.has_masks else "dense_counts_only"}
    return embedding.embedding_rows(ctx.arch, spec, it, li, passes, element_bytes=ctx.r.weight_bits / 8,
                                    update=update)


def vector_op_rows(ctx: Context, table: list[dict], batch: int, index: int,
                   passes: Sequence[str]) -> list[dict]:
    """The trace's counted non-GEMM work (``hwsim.vector.vector_op_rows``) on the chip's digital
    unit, at its input precision."""
    return vector.vector_op_rows(ctx.arch, table, batch, index, passes, ctx.r.input_bits / 8)
