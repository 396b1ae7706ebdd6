"""Activation traffic of a crossbar pass: the bits it moves through each buffer and network level.

Per pass of ``M`` vectors through a ``K × N`` layer (per group; ``groups`` groups side by side), as
NeuroSim V2.1 moves them for one layer (``Tile.cpp`` ``TileCalculatePerformance``, ``Chip.cpp``
``ChipCalculatePerformance``), all dense (zeros are moved too):

- tile input buffers: the ``M·K`` inputs, ``input_bits`` each, written in and read out;
- tile output buffers: the ``M·N`` partial outputs, ``output_buffer_bits`` each (0: ``input_bits``);
- the tile's H-tree: both of these, from the buffers to the crossbars and back;
- the global buffer and the chip interconnect: the ``M·(K + N)`` inputs and outputs, ``input_bits``
  each, between the global buffer and the layer's tiles;
- DRAM: in a training forward pass, the layer's input activations (``x``, ``input_bits`` each) are
  stored off chip for the weight gradient (NeuroSim: "the activation ... of each layer will be sent
  to DRAM").

Each count is priced by its ``reram.*_energy_pj_per_bit`` field (``energy``). Copies do not change
the bits: every input vector goes to one copy. The inputs are im2col rows, so a convolution's input
moves once per kernel position it feeds, as the crossbars read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archs import ReramCompute


@dataclass(frozen=True)
class TrafficBits:
    """Bits a pass moves at each level (integers)."""

    tile_input: int = 0  # into and out of the tile input buffers
    tile_output: int = 0  # into and out of the tile output buffers
    chip: int = 0  # between the global buffer and the tiles (global buffer and interconnect)
    dram: int = 0  # stored off chip


def traffic_bits(dims: tuple[int, int, int], groups: int, r: ReramCompute,
                 dram_values: int = 0) -> TrafficBits:
    """The bits of one pass: ``dims = (M, K, N)`` of one group; ``dram_values``: activations stored off
    chip (0 outside a training forward pass)."""
    m, k, n = dims
    return TrafficBits(tile_input=groups * m * k * r.input_bits,
                       tile_output=groups * m * n * (r.output_buffer_bits or r.input_bits),
                       chip=groups * m * (k + n) * r.input_bits,
                       dram=dram_values * r.input_bits)


def energy(t: TrafficBits, p: dict[Any, Any]) -> dict[str, Any]:
    """Energy per level, pJ: bits × the level's price per bit (``hwsim.pricing`` keys ``(level, "bit")``)."""
    return {
        "tile_buffers": t.tile_input * p[("tile_input_buffer", "bit")]
        + t.tile_output * p[("tile_output_buffer", "bit")],
        "tile_interconnect": (t.tile_input + t.tile_output) * p[("tile_interconnect", "bit")],
        "global_buffer": t.chip * p[("global_buffer", "bit")],
        "interconnect": t.chip * p[("interconnect", "bit")],
        "dram": t.dram * p[("dram", "bit")],
    }
