"""Weight mapping onto crossbars: bit slices, signed weights, crossbars per layer, replication.

A layer's weight of one group is a ``Kr × N`` matrix (``Kr = C·R·S/g`` rows of inputs, ``N =
Kout/g`` output columns). Each weight is spread over ``slices`` cells of ``bits_per_cell`` bits,
one slice per crossbar (ISAAC: 16-bit weights over 8 crossbars of 2-bit cells), and signed weights
either as an offset code in one column set or as a differential pair (two column sets). So one
group needs ``ceil(Kr / rows) × ceil(N / cols) × slices × copies`` crossbars; the crossbars of one
block of ``rows`` inputs are packed into whole IMAs. Spare IMAs of the chip hold copies of layers
(replicas) so that the slowest pipeline stage is as short as possible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from archs import ReramCompute
from traces.format.layer import LayerSpec

from ..errors import MappingError


def slices_per_weight(r: ReramCompute) -> int:
    """Cells (one per crossbar) that hold one weight's bits in one column set."""
    bits = r.weight_bits if r.signed_weights == "offset" else r.weight_bits - 1
    return math.ceil(bits / r.crossbar.bits_per_cell)


def column_sets(r: ReramCompute) -> int:
    """Column sets per weight: 1 (offset code) or 2 (differential pair)."""
    return 1 if r.signed_weights == "offset" else 2


@dataclass(frozen=True)
class LayerMap:
    """Where one layer's weights live: the crossbar grid of one copy, and how many copies."""

    k: int  # reduction rows per group (Kr)
    n: int  # output columns per group (Kout / g)
    groups: int
    k_xbars: int  # crossbars along K (blocks of ``rows`` inputs)
    n_xbars: int  # crossbars along N per slice and column set
    slices: int  # bit slices per weight
    sets: int  # column sets (1 offset, 2 differential)
    imas_per_k_block: int  # IMAs holding the crossbars of one block of K rows
    replicas: int = 1

    @property
    def crossbars(self) -> int:
        """Crossbars of one copy of the layer."""
        return self.groups * self.k_xbars * self.n_xbars * self.slices * self.sets

    @property
    def imas(self) -> int:
        """IMAs of one copy of the layer."""
        return self.groups * self.k_xbars * self.imas_per_k_block


def map_layer(spec: LayerSpec, r: ReramCompute) -> LayerMap:
    """The crossbar grid of one copy of a layer's weights (no replication)."""
    k, n, g = spec.reduction, spec.out_per_group, spec.groups
    kx, nx = math.ceil(k / r.crossbar.rows), math.ceil(n / r.crossbar.cols)
    s, sets = slices_per_weight(r), column_sets(r)
    return LayerMap(k, n, g, kx, nx, s, sets, math.ceil(nx * s * sets / r.crossbars_per_ima))


def chip_imas(r: ReramCompute) -> int:
    """IMAs on the chip."""
    return r.tiles * r.imas_per_tile


def map_model(layers: Sequence[LayerSpec], r: ReramCompute, vectors: Sequence[int], *,
              replicate: bool | None = None) -> dict[str, LayerMap]:
    """Map every layer onto the chip, replicating layers into spare IMAs.

    ``vectors[i]``: input vectors one forward pass streams through layer i (batch × P·Q);
    ``replicate``: copy layers at all (default ``r.replicate_layers``; a training trace under
    ``replicas_in_training: none`` maps one copy). The copy
    count of every layer is the smallest that brings its stage (``ceil(vectors / replicas)`` vectors)
    down to a common bound ``T``; the smallest ``T`` whose copies fit the chip is found by bisection.

    Raises:
        MappingError: the weights do not fit the chip even once; the message names the shortfall.
    """
    maps = [map_layer(s, r) for s in layers]
    need = sum(m.imas for m in maps)
    have = chip_imas(r)
    if need > have:
        per_tile = r.imas_per_tile
        short = need - have
        raise MappingError(
            f"the model's weights need {need:,} IMAs ({sum(m.crossbars for m in maps):,} crossbars of "
            f"{r.crossbar.rows}×{r.crossbar.cols}, {slices_per_weight(r)} slice(s) × {column_sets(r)} "
            f"column set(s) per weight) but the chip has {have:,} ({r.tiles} tiles × {per_tile}): "
            f"short by {short:,} IMAs = {math.ceil(short / per_tile):,} tiles; use a larger chip "
            f"(reram.tiles) or more bits per cell, or set reram.weight_residency: reprogram to write the "
            f"weights into the crossbars in turns")
    vec = [max(int(v), 1) for v in vectors]
    if not (r.replicate_layers if replicate is None else replicate) or not maps:
        return {s.name: m for s, m in zip(layers, maps, strict=True)}

    cap = r.max_replicas or max(vec)

    def copies(t: int) -> list[int]:
        return [min(v, cap, math.ceil(v / t)) for v in vec]

    def fits(t: int) -> bool:
        return sum(c * m.imas for c, m in zip(copies(t), maps, strict=True)) <= have

    lo, hi = 1, max(vec)  # fits(hi) holds: one copy each
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return {s.name: LayerMap(**{**m.__dict__, "replicas": c})
            for s, m, c in zip(layers, maps, copies(lo), strict=True)}
