"""The ReRAM update pass: the optimizer on the digital unit, then the cell writes of the step.

One row per parameter update (``writes.step_writes`` of the recorded ``W`` and ``ΔW``). The
array's quantization step is fixed for the run (``reram.weight_range_max``, or the layer's max|W|
at its first recorded update); with ``rescale_every_step`` it is recomputed each step and the
re-encoded cells are written. Copies of a layer (``replicas_in_training: rewritten``) are written
too: the writes and their energy times the copies, the changed weights sent once to every extra copy
over the first link; the copies write in parallel, so the latency is one copy's.

Iterations without weights (counts-only) replay their writes in expected-value mode: the mean of
the recorded steps of the same layer that the replay has seen, or, when it has seen none, of the
recorded iteration nearest to it (``prime``). The row says which (``reram_writes_source``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from traces.format.layer import LayerSpec

from ..layer_input import LayerInput
from ..pricing import price, ratio
from ..update import update_row
from .writes import StepWrites, lifetime_epochs, per_crossbar, range_scale, step_writes

# the counts of one step that price its writes (one copy), averaged in expected-value mode
COUNTS = ("cell_writes", "set_pulses", "reset_pulses", "pulse_units", "rows_written", "row_pulses",
          "bit_line_pulses", "source_line_pulses", "verified_cells", "latency_ns", "weights_changed",
          "crossbars_written")


@dataclass
class Wear:
    """What the replay keeps per layer across steps: pulses and writes per cell, the array's scale,
    and running sums of the recorded steps' counts."""

    scale: float
    pulses: np.ndarray | None = None  # (cells, Kout, Kr) uint32: pulses each cell has taken
    writes: np.ndarray | None = None  # (cells, Kout, Kr) uint32: times each cell was written
    steps: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0.0))


def _counts(sw: StepWrites) -> dict[str, float]:
    """The pricing counts of one step (one copy)."""
    changed_weights = int(sw.changed.any(axis=0).sum())
    return {"cell_writes": sw.cell_writes, "set_pulses": sw.set_pulses, "reset_pulses": sw.reset_pulses,
            "pulse_units": sw.pulse_units, "rows_written": sw.rows_written, "row_pulses": sw.row_pulses,
            "bit_line_pulses": sw.bit_line_pulses, "source_line_pulses": sw.source_line_pulses,
            "verified_cells": sw.verified_cells, "latency_ns": sw.latency_ns,
            "weights_changed": changed_weights, "crossbars_written": sw.crossbars_written}


def recorded_counts(ctx: Any, spec: LayerSpec, weights: tuple[np.ndarray, np.ndarray],
                    w_mask: np.ndarray | None) -> dict[str, float]:
    """The counts of one recorded update, without touching the wear (for ``prime``)."""
    w, dw, w_mask = _crossbar_layout(spec, *weights, w_mask)
    r = ctx.r
    scale = range_scale(w, w_mask, r)
    return _counts(step_writes(w, dw, w_mask, ctx.maps[spec.name], r, scale))


def update_pass(ctx: Any, spec: LayerSpec, it: LayerInput, li: int, w_mask: np.ndarray | None) -> dict:
    """The update row of one layer: the optimizer on the digital unit, then the cell writes."""
    r, arch = ctx.r, ctx.arch
    row = update_row(arch, spec, it.index, weight_bits=r.weight_bits, gradient_bits=r.input_bits,
                     state=ctx.state_tensors, ops_per_weight=ctx.update_ops,
                     w_nnz=it.count(li, "w") or 0,
                     mask_changed=it.weight_mask_changed())
    row["mode"] = "exact" if it.has_masks else "dense_counts_only"
    lm = ctx.maps[spec.name]
    reps = lm.replicas
    extra: dict[str, Any] = {}
    # a reprogrammed chip (``residency``): only the part of the layer still in the crossbars at the
    # update is written now; the rest gets its new weights when it is next programmed
    share = 1.0 if ctx.residency is None else ctx.residency.update_share.get(spec.name, 1.0)
    if share == 0.0:
        row.update(reram_writes_recorded=it.weights is not None, reram_cell_writes=0, reram_write_pulses=0,
                   reram_write_cycles=0, reram_update_resident_fraction=0.0,
                   reram_writes_source="reprogrammed: the layer's next programming writes its new weights")
        return row
    if it.weights is not None:
        counts, extra = _record(ctx, spec, it.weights, w_mask)
        source = "recorded"
    else:
        wear = ctx.wear.get(spec.name)
        if wear is not None and wear.steps:
            counts = {k: v / wear.steps for k, v in wear.sums.items()}
            source = f"expected: mean of {wear.steps} recorded step(s)"
        elif spec.name in ctx.primed.get(it.index, {}):
            counts = ctx.primed[it.index][spec.name]
            source = f"expected: recorded iteration {ctx.primed_from[it.index]}"
        else:
            row["reram_writes_recorded"] = False
            row["reram_writes_source"] = "none: no recorded update to take the writes from"
            return row
    if share < 1.0:  # the resident crossbars' share of the writes (the latency: crossbars write in parallel)
        counts = {k: v if k == "latency_ns" else v * share for k, v in counts.items()}
        extra["reram_update_resident_fraction"] = share
    write_cycles = math.ceil(round(counts["latency_ns"] * arch.clock_hz / 1e9, 6))
    e_cell = counts["pulse_units"] * reps * price(arch, "cell", "write_pulse")
    e_driver = (counts["row_pulses"] * price(arch, "write_driver", "row_pulse")
                + counts["bit_line_pulses"] * price(arch, "write_driver", "bit_line_pulse")
                + counts["source_line_pulses"] * price(arch, "write_driver", "source_line_pulse")
                + counts["crossbars_written"] * price(arch, "write_driver", "crossbar")) * reps
    e_verify = counts["verified_cells"] * reps * price(arch, "write_verify", "cell")
    e_copy = 0.0
    if reps > 1 and arch.links:
        copy_bytes = counts["weights_changed"] * (reps - 1) * r.weight_bits / 8
        e_copy = copy_bytes * price(arch, arch.links[0].name, "transfer")
    energy = e_cell + e_driver + e_verify + e_copy
    # the chip leaks during the write latency too (leakage × time, like every other row)
    leak = price(arch, "leakage", "total_mw") * 1e-3 * write_cycles / arch.clock_hz * 1e12
    row["energy_leakage_pj"] = row.get("energy_leakage_pj", 0.0) + leak
    row.update({
        "cycles": row["cycles"] + write_cycles, "dense_cycles": row["dense_cycles"] + write_cycles,
        "energy_pj": row["energy_pj"] + energy + leak,
        "dense_energy_pj": row["dense_energy_pj"] + energy + leak,
        "energy_cell_write_pj": e_cell, "energy_write_driver_pj": e_driver,
        "energy_write_verify_pj": e_verify,
        "energy_replica_copy_pj": e_copy,
        "reram_writes_recorded": source == "recorded", "reram_writes_source": source,
        "reram_replicas": reps,
        "reram_cell_writes": counts["cell_writes"] * reps,
        "reram_write_pulses": (counts["set_pulses"] + counts["reset_pulses"]) * reps,
        "reram_set_pulses": counts["set_pulses"] * reps, "reram_reset_pulses": counts["reset_pulses"] * reps,
        "reram_rows_written": counts["rows_written"] * reps, "reram_row_pulses": counts["row_pulses"] * reps,
        "reram_write_cycles": write_cycles,
        "reram_cells": lm.slices * lm.sets * lm.groups * lm.k * lm.n * reps,
        **extra,
    })
    row["speedup"] = ratio(row["dense_cycles"], row["cycles"])
    row["energy_saving"] = ratio(row["dense_energy_pj"], row["energy_pj"])
    return row


def _crossbar_layout(spec: LayerSpec, w: np.ndarray, dw: np.ndarray, w_mask: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The weight, its update and its mask as the crossbars hold them: ``(groups·N, K)``, one
    column per forward output (a transposed conv's weight is ``(Cin, Cout/g, *k)``: transposed)."""
    def lay(a: np.ndarray) -> np.ndarray:
        return spec.geometry.gemm_weight(spec, a)
    return lay(w), lay(dw), None if w_mask is None else lay(w_mask)


def _record(ctx: Any, spec: LayerSpec, weights: tuple[np.ndarray, np.ndarray], w_mask: np.ndarray | None
            ) -> tuple[dict[str, float], dict[str, Any]]:
    """Writes of a recorded update; updates the layer's wear. Returns its counts and wear columns."""
    r = ctx.r
    lm = ctx.maps[spec.name]
    w, dw, w_mask = _crossbar_layout(spec, *weights, w_mask)
    wear = ctx.wear.get(spec.name)
    if wear is None:
        wear = ctx.wear[spec.name] = Wear(scale=range_scale(w, w_mask, r))
    before = wear.scale
    if r.rescale_every_step:
        wear.scale = range_scale(w + dw.astype(np.float32), w_mask, r)
    sw = step_writes(w, dw, w_mask, lm, r, wear.scale, before)
    if wear.pulses is None:
        wear.pulses = np.zeros(sw.changed.shape, np.uint32)
        wear.writes = np.zeros(sw.changed.shape, np.uint32)
    wear.pulses += sw.pulses_per_cell.astype(np.uint32)
    wear.writes += sw.changed
    wear.steps += 1
    counts = _counts(sw)
    for k, v in counts.items():
        wear.sums[k] += v
    heat = per_crossbar(sw.changed, lm, r)  # (cells, G, n_x, k_x): cells written per crossbar
    steps_per_epoch = ctx.steps_per_epoch
    max_pulses = int(wear.pulses.max(initial=0))
    max_writes = int(wear.writes.max(initial=0))
    per_epoch_pulses = max_pulses / wear.steps * steps_per_epoch
    reps = lm.replicas
    return counts, {
        "reram_cells_written_fraction": sw.cell_writes / max(sw.changed.size, 1),
        "reram_crossbars_written": int((heat > 0).sum()) * reps,
        "reram_max_crossbar_cell_writes": int(heat.max(initial=0)),
        # cells written on each crossbar of one copy, C order over (sets × slices, groups, n, k):
        # the report's heat map of writes per crossbar (text, so CSV results keep it too)
        "reram_crossbar_writes": " ".join(map(str, heat.ravel().tolist())),
        "reram_max_cell_writes": max_writes, "reram_max_cell_pulses": max_pulses,
        "reram_steps_seen": wear.steps,
        "reram_writes_per_cell_per_epoch": float(wear.writes.mean()) / wear.steps * steps_per_epoch,
        "reram_max_cell_writes_per_epoch": max_writes / wear.steps * steps_per_epoch,
        "reram_max_cell_pulses_per_epoch": per_epoch_pulses,
        "reram_lifetime_epochs": lifetime_epochs(per_epoch_pulses, r),
        "reram_weight_scale": wear.scale,
    }
