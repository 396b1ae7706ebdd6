"""hwsim against NeuroSim V2.1 per VGG-8 layer, written as ``comparison.csv`` beside NeuroSim's results.

Usage (after ``scripts/neurosim_v21_reference.py`` has written its CSVs; runs hwsim only, seconds)::

    python scripts/neurosim_v21_compare.py tests/data/neurosim_v21

Per layer, on NeuroSim's own layer shapes, device and traced weight change (``update_hist.csv``, drawn
with the oracle script's ``synthesize_update`` and seed, so both tools write the same cells):

- the weight update: hwsim's cell and write-driver energy and its write latency, with the copies NeuroSim
  writes, against NeuroSim's ``energy_WU`` and ``latency_WU`` (one epoch of ``numIteration`` steps,
  divided by it);
- the forward pass of one image: hwsim's in-array energy (crossbar reads, sense amps, accumulation)
  against NeuroSim's PE energy (``Peak_energy_FW``) and, for reference, its whole forward energy
  (``energy_FW``, with buffers, interconnect and DRAM, which hwsim does not price per bit).

``tests/hwsim/reram/test_neurosim_v21.py`` recomputes every hwsim column, checks the file and asserts the
acceptance bounds; docs/reram.md "NeuroSim V2.1" has the table and what differs.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import archs  # noqa: E402
from archs.reram_presets import (  # noqa: E402
    V21_ACCUMULATION_J,
    V21_CONVERSION_J,
    V21_DRAM_J_PER_BIT,
    V21_GLOBAL_BUFFER_J_PER_BIT,
    V21_GLOBAL_HTREE_J_PER_BIT,
    V21_READ_J,
    V21_TILE_HTREE_J_PER_BIT,
    V21_TILE_INPUT_BUFFER_J_PER_BIT,
    V21_TILE_OUTPUT_BITS,
    V21_TILE_OUTPUT_BUFFER_J_PER_BIT,
    neurosim_v21_write,
)
from hwsim.layer_input import LayerInput  # noqa: E402
from hwsim.reram import context, layer_rows  # noqa: E402
from hwsim.simulate import simulate  # noqa: E402
from traces.synth import conv, linear, write_synthetic  # noqa: E402

# NeuroSIM/NetWork.csv @18289cb (VGG-8): (Kr = C·R·S, Kout) per layer
SHAPES = {"Conv0_": (27, 128), "Conv1_": (1152, 128), "Conv3_": (1152, 256), "Conv4_": (2304, 256),
          "Conv6_": (2304, 512), "Conv7_": (4608, 512), "FC1_": (8192, 1024), "FC2_": (1024, 10)}
# NeuroSIM/NetWork.csv @18289cb: the same layers as convs on their input maps; NeuroSim reads (IFM - K + 1)²
# positions per image (no padding), so do these
VGG8 = [conv("Conv0_", 3, 32, 32, 128, 3), conv("Conv1_", 128, 32, 32, 128, 3),
        conv("Conv3_", 128, 16, 16, 256, 3), conv("Conv4_", 256, 16, 16, 256, 3),
        conv("Conv6_", 256, 8, 8, 512, 3), conv("Conv7_", 512, 8, 8, 512, 3),
        linear("FC1_", 8192, 1024), linear("FC2_", 1024, 10)]
IN_ARRAY = ("energy_crossbar_pj", "energy_adc_pj", "energy_dac_pj", "energy_accumulation_pj")
TRAFFIC = ("energy_tile_buffers_pj", "energy_tile_interconnect_pj", "energy_global_buffer_pj",
           "energy_interconnect_pj")
# NetWork.csv @18289cb: input map height × width per layer (FC: 1 × 1); NeuroSim's forward DRAM term in
# training is 2 × H·W·numBitInput bits (Chip.cpp dataLoadIn) at V21_DRAM_J_PER_BIT
IFM_HW = {"Conv0_": 32 * 32, "Conv1_": 32 * 32, "Conv3_": 16 * 16, "Conv4_": 16 * 16, "Conv6_": 8 * 8,
          "Conv7_": 8 * 8, "FC1_": 1, "FC2_": 1}
COLUMNS = ["layer", "weights", "copies", "cells_written", "hwsim_update_energy_j",
           "neurosim_update_energy_j", "update_energy_ratio", "hwsim_update_latency_s",
           "neurosim_update_latency_s", "update_latency_ratio", "hwsim_forward_energy_j",
           "neurosim_forward_pe_energy_j", "forward_energy_ratio", "neurosim_forward_energy_j",
           "hwsim_forward_traffic_energy_j", "hwsim_forward_dram_energy_j", "hwsim_forward_total_energy_j",
           "forward_total_ratio", "neurosim_forward_dram_energy_j", "forward_on_chip_ratio"]


def oracle_script():
    """``scripts/neurosim_v21_reference.py`` as a module (its ``synthesize_update`` and readers)."""
    spec = importlib.util.spec_from_file_location("neurosim_v21_reference",
                                                  REPO / "scripts" / "neurosim_v21_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def v21_machine() -> archs.Architecture:
    """NeuroSim V2.1's write setting on the reram-neurosim chip: RRAM 1T1R at 32 nm, one 5-bit cell per
    5-bit weight (train.py cellBit, wl_weight), 60 levels, 128×128 subarrays, 8 written at once."""
    w = neurosim_v21_write()
    changes = {f"reram.write.{k}": getattr(w, k) for k in w.__dataclass_fields__}
    changes.update({"reram.write.crossbars_in_parallel": 8,  # numArrayWriteParallel (docs/reram.md)
                    "reram.crossbar.bits_per_cell": 5, "reram.weight_bits": 5,
                    "reram.weight_range_max": 15 / 16,  # WAGE C() at 5 bits: codes ±15 of 1/16
                    "reram.replicate_layers": False, "reram.tiles": 2000})
    return archs.replace(archs.PRESETS["reram-neurosim"], changes)


def v21_read_machine() -> archs.Architecture:
    """The same chip reading as NeuroSim V2.1 does: all 128 rows of a subarray at once, 5-bit cells,
    8-bit inputs bit-serially, a 6-bit sense amp per 8 columns; per read and per conversion the energies
    NeuroSim printed for its first layer (archs/reram_presets.py ``V21_*_J``)."""
    base = v21_machine()
    read_s = base.reram.crossbar.read_cycle_ns * 1e-9
    return archs.replace(base, {
        "reram.crossbar.parallel_rows": 0, "reram.crossbar.power_mw": V21_READ_J / read_s * 1e3,
        "reram.adc.bits": 6, "reram.adc.reference_bits": 6,  # levelOutput 64
        "reram.adc.power_mw": V21_CONVERSION_J * base.reram.adc.sample_rate_hz * 1e3,
        "reram.dac.power_mw": 0.0,  # the word lines are in the per-read energy
        "reram.accumulation_energy_pj_per_conversion": V21_ACCUMULATION_J * 1e12,
        # the activation traffic, per bit as NeuroSim printed it for Conv0
        "reram.output_buffer_bits": V21_TILE_OUTPUT_BITS,
        "reram.tile_input_buffer_energy_pj_per_bit": V21_TILE_INPUT_BUFFER_J_PER_BIT * 1e12,
        "reram.tile_output_buffer_energy_pj_per_bit": V21_TILE_OUTPUT_BUFFER_J_PER_BIT * 1e12,
        "reram.tile_interconnect_energy_pj_per_bit": V21_TILE_HTREE_J_PER_BIT * 1e12,
        "reram.global_buffer_energy_pj_per_bit": V21_GLOBAL_BUFFER_J_PER_BIT * 1e12,
        "reram.interconnect_energy_pj_per_bit": V21_GLOBAL_HTREE_J_PER_BIT * 1e12,
        "reram.dram_energy_pj_per_bit": V21_DRAM_J_PER_BIT * 1e12})


def written_copies(layer: str, speed_up: int) -> int:
    """The copies whose writes NeuroSim charges: its printed speed-up for the novel-mapped conv layers
    (``ProcessingUnit.cpp`` × ``arrayDupRow·arrayDupCol``, ``Tile.cpp`` × ``speedUpRow·speedUpCol``);
    one for the fully connected layers on its conventional tiles, where ``Tile.cpp`` divides the read
    latency by the speed-up but does not multiply the write energy (FC2: speed-up 8, and its
    ``energy_WU`` is 1.37× one copy's printed write energy, the rest the delta-weight transfer)."""
    return speed_up if layer.startswith("Conv") else 1


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    """A CSV with a ``layer`` column as ``{layer: row}``."""
    with path.open() as f:
        return {r["layer"]: r for r in csv.DictReader(f)}


def update_rows(data: Path) -> list[dict]:
    """Per layer: hwsim's update energy and latency for NeuroSim's cells and copies, and NeuroSim's."""
    mod = oracle_script()
    hist = mod.read_hist(data / "update_hist.csv")
    with (data / "params.csv").open() as f:
        params = {r["field"]: r["value"] for r in csv.DictReader(f)}
    seed, iterations = int(params["seed"]), int(params["numIteration"])
    ns = read_csv(data / "layers.csv")
    plan = read_csv(data / "floorplan.csv")
    arch = v21_machine()
    out = []
    for i, (name, (kr, kout)) in enumerate(SHAPES.items()):
        old, new = mod.synthesize_update(hist[name], (kr, kout), seed + i)
        w = (old.T / 16).astype(np.float16)  # (Kout, Kr), exact in float16
        dw = ((new.T.astype(np.int16) - old.T) / 16).astype(np.float16)
        spec = linear(name, kr, kout)
        manifest = {"method": {"name": "dense"}, "batch_size": 1, "layers": [spec.to_dict()],
                    "optimizer": {"name": "SGD"}}
        ctx = context(arch, manifest)
        copies = written_copies(name, int(plan[name]["speed_up"]))
        ctx.maps[name] = replace(ctx.maps[name], replicas=copies)  # NeuroSim's floorplan, rewritten
        inp = LayerInput(0, 1, 1, True, {"w": w.size, "dw": w.size}, {"w": None}, {}, (w, dw))
        row = layer_rows(ctx, spec, inp, 0, ["update"])[0]
        energy = (row["energy_cell_write_pj"] + row["energy_write_driver_pj"]) * 1e-12
        latency = row["reram_write_cycles"] / arch.clock_hz
        ns_energy = float(ns[name]["energy_WU(J)"]) / iterations
        ns_latency = float(ns[name]["latency_WU(s)"]) / iterations
        out.append({"layer": name, "weights": kr * kout, "copies": copies,
                    "cells_written": row["reram_cell_writes"],
                    "hwsim_update_energy_j": energy, "neurosim_update_energy_j": ns_energy,
                    "update_energy_ratio": energy / ns_energy,
                    "hwsim_update_latency_s": latency, "neurosim_update_latency_s": ns_latency,
                    "update_latency_ratio": latency / ns_latency})
    return out


def forward_rows(data: Path) -> dict[str, dict]:
    """Per layer: hwsim's in-array forward energy of one dense image on ``v21_read_machine``; NeuroSim's
    energy of its PEs (``Peak_energy_FW``: subarrays, adder trees, accumulation) and its whole forward
    energy (``energy_FW``: with buffers, interconnect and DRAM), per image (÷ numIteration · batchSize)."""
    with (data / "params.csv").open() as f:
        params = {r["field"]: r["value"] for r in csv.DictReader(f)}
    images = int(params["numIteration"]) * int(params["batchSize"])
    ns = read_csv(data / "layers.csv")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_synthetic(VGG8, Path(tmp) / "vgg8", batch=1)  # dense: every input bit read
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["optimizer"] = {"name": "SGD", "params": {}}  # training: inputs stored in DRAM
        (path / "manifest.json").write_text(json.dumps(manifest))
        df = simulate(path, v21_read_machine(), passes=["forward"]).to_frame()
    out = {}
    for spec in VGG8:
        row = df[df["layer"] == spec.name]
        energy = float(row[list(IN_ARRAY)].sum().sum()) * 1e-12
        pe = float(ns[spec.name]["Peak_energy_FW(J)"]) / images
        traffic = float(row[list(TRAFFIC)].sum().sum()) * 1e-12
        dram = float(row["energy_dram_pj"].sum()) * 1e-12
        whole = float(ns[spec.name]["energy_FW(J)"]) / images
        ns_dram = 2 * IFM_HW[spec.name] * 8 * V21_DRAM_J_PER_BIT
        total = energy + traffic + dram
        out[spec.name] = {"hwsim_forward_energy_j": energy, "neurosim_forward_pe_energy_j": pe,
                          "forward_energy_ratio": energy / pe, "neurosim_forward_energy_j": whole,
                          "hwsim_forward_traffic_energy_j": traffic,
                          "hwsim_forward_dram_energy_j": dram,
                          "hwsim_forward_total_energy_j": total, "forward_total_ratio": total / whole,
                          "neurosim_forward_dram_energy_j": ns_dram,
                          "forward_on_chip_ratio": (energy + traffic) / (whole - ns_dram)}
    return out


def comparison(data: Path) -> list[dict]:
    """The rows of ``comparison.csv``."""
    fw = forward_rows(data)
    return [{**r, **fw[r["layer"]]} for r in update_rows(data)]


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "data" / "neurosim_v21"
    rows = comparison(data)
    with (data / "comparison.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    print(f"wrote {data / 'comparison.csv'}", file=sys.stderr)


if __name__ == "__main__":
    main()
