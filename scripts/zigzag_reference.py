"""Run the real ZigZag (zigzag-dse 3.9.1) and commit what it says: tests/data/zigzag/reference.csv.

For every layer of tests/data/zigzag/layers.csv (every distinct layer of ResNet-18's forward pass,
its classifier included, and three BERT GEMMs) on the machine of tests/data/zigzag/systolic_32x32.yaml
(a 32×32 weight-stationary array with three 64 KiB SRAMs and a 1-byte DRAM port, mirrored by
tests/data/zigzag/systolic_32x32_hwsim.yaml), ZigZag's LOMA search picks the temporal mapping of
least energy; the CSV keeps, per layer: the energy (total, MAC, and per operand and memory level),
the latency (``latency_total2``: ideal compute, stall slack, on- and off-loading), the bytes each
memory level reads and writes per operand (every port is one byte wide, so ZigZag's word accesses
are bytes), and the chosen loop nest (innermost first).
tests/hwsim/test_zigzag_agreement.py compares hwsim's mapper against it.

A second, held-out machine (``--machine tests/data/zigzag/held_out_16x16``: a 16×16 array with
three 32 KiB SRAMs of 128-bit ports, the same per-byte energies and DRAM port) reads the same layer
list and writes its own reference.csv beside its machine files; it was added after hwsim's mapper
and schedule were tuned on the 32×32 machine, and is checked by tests/hwsim/test_zigzag_held_out.py.

Run with `make zigzag-reference` (it makes .venv-zigzag). Nothing here is imported by hwsim.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import platform
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import yaml
from zigzag.api import get_hardware_performance_zigzag
from zigzag.mapping.data_movement import DataDirection, DataMoveAttr

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "zigzag"
DIRECTIONS = {"rd_out_to_low": "read_down", "wr_in_by_low": "write_from_below",
              "rd_out_to_high": "read_up", "wr_in_by_high": "write_from_above"}


MACHINE = DATA  # the folder of the oracle machine (systolic_32x32.yaml, mapping.yaml) and its CSV


def machine_file() -> Path:
    """The ZigZag machine of the folder: its one ``systolic_*.yaml`` that is not an hwsim twin."""
    found = [p for p in sorted(MACHINE.glob("systolic_*.yaml")) if not p.stem.endswith("_hwsim")]
    if len(found) != 1:
        raise SystemExit(f"{MACHINE}: expected one systolic_*.yaml ZigZag machine, found {len(found)}")
    return found[0]


def layers() -> list[dict[str, str]]:
    lines = [ln for ln in (DATA / "layers.csv").read_text().splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines))


def workload(row: dict[str, str]) -> list[dict]:
    s = int(row["stride"])
    return [{
        "id": 0, "name": row["name"], "operator_type": "Conv",
        "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
        "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
        "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
        "loop_sizes": [1, int(row["k"]), int(row["c"]), int(row["oy"]), int(row["ox"]), int(row["fy"]),
                       int(row["fx"])],
        "operand_precision": {"W": 8, "I": 8, "O": 8, "O_final": 8},
        "operand_source": {"I": 0},
    }]


def run(row: dict[str, str], folder: Path) -> dict[str, object]:
    wl = folder / f"{row['name']}.yaml"
    wl.write_text(yaml.safe_dump(workload(row)))
    start = time.perf_counter()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        _, _, cmes = get_hardware_performance_zigzag(
            workload=str(wl), accelerator=str(machine_file()),
            mapping=str(MACHINE / "mapping.yaml"),
            opt="energy", dump_folder=str(folder / row["name"]), loma_show_progress_bar=False)
    wall = time.perf_counter() - start
    cme = cmes[0][1][0][0]
    out: dict[str, object] = {"layer": row["name"], "kind": row["kind"],
                              "energy_pj": round(float(cme.energy_total), 3),
                              "mac_energy_pj": round(float(cme.mac_energy), 3),
                              "latency_cycles": int(cme.latency_total2)}
    hier = cme.accelerator.memory_hierarchy
    names = {"I": "a", "W": "b", "O": "c"}
    for layer_op in sorted(cme.memory_word_access, key=str):
        op = names[str(layer_op)]
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        levels = hier.get_memory_levels(mem_op=mem_op)
        for lv, (lvl, pj) in enumerate(zip(levels, cme.mem_energy_breakdown[layer_op], strict=True)):
            move = cme.mapping.unit_mem_data_movement[layer_op][lv]
            amount = move.get_attribute(DataMoveAttr.DATA_TRANS_AMOUNT_PER_PERIOD)
            bits = move.get_attribute(DataMoveAttr.DATA_PRECISION)
            periods = move.get_attribute(DataMoveAttr.DATA_TRANS_PERIOD_COUNT)
            units = cme.mapping.spatial_mapping.unit_count[layer_op][lv + 1]
            for d in DataDirection:  # bytes = elements per period × bits / 8 × periods × instances
                moved = amount.get(d) * bits.get(d) / 8 * periods.get(d) * units
                out[f"{lvl.name}_{op}_{DIRECTIONS[d.name.lower()]}_bytes"] = round(moved)
            out[f"{lvl.name}_{op}_energy_pj"] = round(float(pj), 3)
    out["temporal_mapping"] = " ".join(str(cme.temporal_mapping).split())
    out["wall_s"] = round(wall, 2)
    return out


def main() -> int:
    global MACHINE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", type=Path, default=DATA,
                        help="folder holding the ZigZag machine (systolic_*.yaml, mapping.yaml); "
                             "its reference.csv is written there (default: tests/data/zigzag)")
    MACHINE = parser.parse_args().machine.resolve()
    logging.disable(logging.CRITICAL)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in layers():
            rows.append(run(row, Path(tmp)))
            print(f"{row['name']}: {rows[-1]['energy_pj']} pJ in {rows[-1]['wall_s']} s", file=sys.stderr)
    fields = sorted({k for r in rows for k in r}, key=lambda k: (k not in rows[0], list(rows[0]).index(k)
                                                                 if k in rows[0] else 0, k))
    target = MACHINE / "reference.csv"
    tmp_target = target.with_suffix(".tmp")
    with open(tmp_target, "w", newline="") as f:
        f.write(f"# zigzag-dse 3.9.1 (LOMA, opt=energy) on {platform.platform()}, {os.cpu_count()} cores, "
                f"python {platform.python_version()}; machine {MACHINE.name}; "
                f"regenerate: make zigzag-reference\n")
        w = csv.DictWriter(f, fieldnames=fields, restval=0)
        w.writeheader()
        w.writerows(rows)
    tmp_target.replace(target)
    print(f"wrote {target} ({len(rows)} rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
