"""Run the real AccelForge (1.0.467, Timeloop's successor) and commit what it says:
tests/data/accelforge/reference.csv.

For every layer of tests/data/accelforge/layers.csv (three ResNet-18 convolutions and two BERT-base
GEMMs, batch 1, 8-bit values) on a PE-array machine with a per-PE register file (pe_array below:
DRAM -> 192 KiB global buffer -> 32×32 PEs with a 64-byte register file each -> one MAC per PE;
per-action energies given, no component models), AccelForge's mapper (FFM) picks the mapping of
least energy. The spatial unrolling is constrained to input channels over the rows and output
channels over the columns, each filling its 32 PEs (every layer's C and K are multiples of 32),
every buffer keeps every tensor (no bypass) and a register file keeps
whole filter windows (R, S): hwsim's twin (tests/data/accelforge/pe_array_hwsim.yaml) maps the same
way. The CSV keeps, per layer: energy (total and per component), latency (the maximum over the
components, in cycles: DRAM 8 B/cycle, one MAC per PE per cycle), the reads and writes of each
tensor at DRAM, the global buffer and the register file (elements: every value is 8 bits and one
action moves 8 bits), and the chosen mapping.
tests/hwsim/test_accelforge_agreement.py compares hwsim's mapper against it.

Run with `make accelforge-reference` (it makes .venv-accelforge with Python 3.12). Nothing here is
imported by hwsim.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import platform
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import accelforge as af

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "accelforge"
DRAM_BYTES_PER_CYCLE = 8

ARCH = """
arch:
  nodes:
  - !Memory
    name: MainMemory
    size: inf
    leak_power: 0
    area: 0
    tensors: {keep: All}
    actions:
    - {name: read, energy: 64, latency: 1 / %(dram_bw)d, bits_per_action: 8}
    - {name: write, energy: 64, latency: 1 / %(dram_bw)d, bits_per_action: 8}
  - !Memory
    name: GlobalBuffer
    size: 192 * 1024 * 8
    leak_power: 0
    area: 0
    tensors: {keep: All}
    actions:
    - {name: read, energy: 2.5, latency: 0, bits_per_action: 8}
    - {name: write, energy: 2.5, latency: 0, bits_per_action: 8}
  - !Container
    name: PE
    spatial:
    - name: rows
      fanout: 32
      min_usage: 1
      loop_bounds: [{expression: ~c, operator: ==, value: 1}]
    - name: cols
      fanout: 32
      min_usage: 1
      loop_bounds: [{expression: ~k, operator: ==, value: 1}]
  - !Memory
    name: RF
    size: 64 * 8
    leak_power: 0
    area: 0
    tensors:
      keep: All
      tile_shape: [{expression: r, operator: ==, value: %(fy)d}, {expression: s, operator: ==, value: %(fx)d}]
    actions:
    - {name: read, energy: 0.3, latency: 0, bits_per_action: 8}
    - {name: write, energy: 0.3, latency: 0, bits_per_action: 8}
  - !Compute
    name: MAC
    leak_power: 0
    area: 0
    actions:
    - {name: compute, energy: 0.3, latency: 1}
"""

WORKLOAD = """
workload:
  rank_sizes: {B: 1, K: %(k)d, C: %(c)d, P: %(oy)d, Q: %(ox)d, R: %(fy)d, S: %(fx)d, H: %(ih)d, W: %(iw)d}
  bits_per_value: {All: 8}
  einsums:
  - name: Layer
    tensor_accesses:
    - name: I
      projection: {B: b, C: c, H: %(s)d * p + r, W: %(s)d * q + s}
    - {name: Wt, projection: {K: k, C: c, R: r, S: s}}
    - {name: O, projection: {B: b, K: k, P: p, Q: q}, output: True}
    renames: {input: I, weight: Wt, output: O}
"""

TENSORS = {"I": "a", "Wt": "b", "O": "c"}
LEVELS = {"MainMemory": "dram", "GlobalBuffer": "glb", "RF": "rf"}


def layers() -> list[dict[str, str]]:
    lines = [ln for ln in (DATA / "layers.csv").read_text().splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines))


def run(row: dict[str, str], folder: Path) -> dict[str, object]:
    v = {key: int(row[key]) for key in ("k", "c", "oy", "ox", "fy", "fx")}
    v["s"] = int(row["stride"])
    v["ih"] = (v["oy"] - 1) * v["s"] + v["fy"]
    v["iw"] = (v["ox"] - 1) * v["s"] + v["fx"]
    arch, wl = folder / f"{row['name']}.arch.yaml", folder / f"{row['name']}.workload.yaml"
    arch.write_text(ARCH % {**v, "dram_bw": DRAM_BYTES_PER_CYCLE})
    wl.write_text(WORKLOAD % v)
    start = time.perf_counter()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        spec = af.Spec.from_yaml(str(arch), str(wl))
        found = spec.map_workload_to_arch(print_progress=False)
    wall = time.perf_counter() - start
    out: dict[str, object] = {"layer": row["name"], "kind": row["kind"],
                              "energy_pj": round(float(found.energy()), 3),
                              "latency_cycles": round(float(found.latency()), 3)}
    for comp, lat in sorted(found.latency(per_component=True).items()):
        out[f"{LEVELS.get(comp, comp.lower())}_latency_cycles"] = round(float(lat), 3)
    for comp, pj in sorted(found.energy(per_component=True).items()):
        out[f"{LEVELS.get(comp, comp.lower())}_energy_pj"] = round(float(pj), 3)
    for (comp, tensor, action), n in sorted(found.actions(per_tensor=True).items()):
        if comp in LEVELS and tensor in TENSORS:
            key = f"{LEVELS[comp]}_{TENSORS[tensor]}_{action}"
            out[key] = round(float(n)) + int(out.get(key, 0))
        elif comp == "MAC" and action == "compute":
            out["macs"] = round(float(n))
    out["mapping"] = " ".join(str(found.render()).split())
    out["wall_s"] = round(wall, 1)
    return out


def main() -> int:
    af.set_n_parallel_jobs(int(os.environ.get("ACCELFORGE_JOBS", "2")))
    # the mapper draws every chosen mapping with graphviz's `dot` (not a Python dependency): a text
    # rendering instead, which is also the CSV's mapping column
    af.mapping.Mapping.render = lambda self, *args, **kwargs: self.compact_str()
    names = set(sys.argv[1:])
    rows = []
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the mapper writes mapping.svg where it runs
        for row in layers():
            if names and row["name"] not in names:
                continue
            rows.append(run(row, Path(tmp)))
            print(f"{row['name']}: {rows[-1]['energy_pj']} pJ, {rows[-1]['latency_cycles']} cycles in "
                  f"{rows[-1]['wall_s']} s", file=sys.stderr)
        os.chdir(here)
    target = DATA / "reference.csv"
    with open(DATA / ".reference.lock", "w") as lock:  # several runs of a few layers each may write it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if names and target.exists():  # keep the other layers' rows
            kept = [ln for ln in target.read_text().splitlines() if not ln.startswith("#")]
            rows += [r for r in csv.DictReader(kept) if r["layer"] not in names]
        order = [r["name"] for r in layers()]
        rows.sort(key=lambda r: order.index(r["layer"]))
        fields = sorted({k for r in rows for k in r}, key=lambda k: (k in ("mapping", "wall_s"), k))
        tmp_target = target.with_suffix(".tmp")
        with open(tmp_target, "w", newline="") as f:
            f.write(f"# accelforge 1.0.467 (FFM mapper, least energy) on {platform.platform()}, "
                    f"{os.cpu_count()} cores, python {platform.python_version()}; "
                    "regenerate: make accelforge-reference\n")
            w = csv.DictWriter(f, fieldnames=fields, restval=0)
            w.writeheader()
            w.writerows(rows)
        tmp_target.replace(target)
    print(f"wrote {target} ({len(rows)} rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
