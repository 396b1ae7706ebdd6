"""Run the real AccelForge (1.0.467, Timeloop's successor) and commit what it says:
tests/data/accelforge/reference.csv.

For every layer of tests/data/accelforge/layers.csv (four ResNet-18 convolutions and two BERT-base
GEMMs, batch 1, 8-bit values) on a PE-array machine with a per-PE register file (pe_array below:
DRAM -> 192 KiB global buffer -> 32×32 PEs with a 64-byte register file each -> one MAC per PE;
per-action energies given, no component models), AccelForge's mapper (FFM) picks the mapping of
least energy. The spatial unrolling is constrained to input channels over the rows and output
channels over the columns, each filling its 32 PEs (every layer's C and K are multiples of 32),
every buffer keeps every tensor (no bypass) and a register file keeps
whole filter windows (R, S): hwsim's twin (tests/data/accelforge/pe_array_hwsim.yaml) maps the same
way. Loop permutations are limited (`explore_loop_orders: False`): between two storage nodes the
mapper tries one canonical order of the loops instead of one order per choice of the loop over P,
Q, R or S that a tile is lowered through (slides along, keeping the overlap of consecutive input
windows); it still lowers through the first of them. That is what makes a convolution's search
finish on this machine (36 mapping templates of 30-60 s each instead of 576); a GEMM (no sliding
windows) has nothing to permute and its search is unchanged. The restricted optimum costs at
least the unrestricted one's energy; the comparison is against this restricted mapper
(docs/validation.md §3c). The CSV keeps, per layer: energy
(total and per component), latency (the maximum over the
components, in cycles: DRAM 8 B/cycle, one MAC per PE per cycle), the reads and writes of each
tensor at DRAM, the global buffer and the register file (elements: every value is 8 bits and one
action moves 8 bits), and the chosen mapping.
tests/hwsim/test_accelforge_agreement.py compares hwsim's mapper against it.

`--given` (`make accelforge-given`, a minute per layer instead of hours on a busy 2-core machine)
instead gives AccelForge's model hwsim's own chosen mapping of each layer (hwsim's `search` on the
twin, imported here: buffer tile, DRAM loop order, where each tensor's buffer slice sits, spatial
unrolling, register-file tile and buffer-level loops, translated into AccelForge's mapping nodes)
and writes tests/data/accelforge/given.csv: the same columns, the model alone (no search).

A held-out machine (``--machine tests/data/accelforge/held_out_16x16``: 16×16 PEs with a 32-byte
register file each, a 96 KiB global buffer, DRAM 4 B/cycle, other per-byte energies) is AccelForge's
``pe_array.yaml`` in that folder (the same template: the register file's filter window is filled in per
layer) beside hwsim's twin ``*_hwsim.yaml``; the same layer list is read (the layers named on the command
line, or all), and its reference.csv / given.csv are written there. It was added after hwsim's
register-file level was matched on the 32×32 machine and is checked by
tests/hwsim/test_accelforge_held_out.py. The register file's whole-window constraint binds the loops
between the array and the register file only: on that machine the mapper splits l2_3x3_s2's filter
columns above the array (docs/validation.md §3c).

``--all-orders`` lets the mapper explore every loop order (``reference_all_orders.csv``; for the
layers where the limited mapper misses a mapping its own model prices lower, held_out_per_operand_rf).

Four more held-out machines (``held_out_per_operand_rf``, ``held_out_weight_bypass``,
``held_out_input_bypass``, ``held_out_output_bypass``; tests/hwsim/test_accelforge_per_operand_rf.py)
give each PE one register file per tensor (AccelForge ``WeightSpad``, ``InputSpad``, ``PsumSpad``, each
``keep``-ing one tensor; summed in the CSV's ``rf`` columns), and in the last three the global buffer
keeps no weights, inputs or outputs (``keep: ~Wt``, ...): ``holders`` reads which component keeps each
tensor and ``given_mapping`` places each tensor's nodes there (none at a level it bypasses). The
mapper nests the storage nodes of sibling scratchpads in their declaration order, so it runs once per
order (``pe_memory_orders``) and keeps the least energy (the CSV's ``rf_order``).

Run with `make accelforge-reference` (it makes .venv-accelforge with Python 3.12). Nothing here is
imported by hwsim.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import io
import itertools
import os
import platform
import re
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
# AccelForge component -> level of the CSV columns: a machine with one register file per tensor
# (held_out_per_operand_rf: Eyeriss-style scratchpads) sums its scratchpads into the ``rf`` columns
LEVELS = {"MainMemory": "dram", "GlobalBuffer": "glb", "RF": "rf", "WeightSpad": "rf", "InputSpad": "rf",
          "PsumSpad": "rf"}
MACHINE = DATA  # the folder of the machine (its AccelForge pe_array.yaml, if any, and hwsim's twin) and CSVs


def arch_template() -> str:
    """AccelForge's machine: the folder's pe_array.yaml (a held-out machine); ARCH for the default one."""
    path = MACHINE / "pe_array.yaml"
    return path.read_text() if MACHINE != DATA and path.exists() else ARCH


def holders() -> dict[tuple[str, str], str]:
    """``(tensor, "glb" | "rf") -> AccelForge component`` keeping it in the machine's template (its
    ``!Memory`` nodes' ``keep``: ``All``, one tensor, or ``~Wt``); a tensor no component of a level
    keeps bypasses it (held_out_per_operand_rf's Eyeriss-style variant: the weights skip the buffer)."""
    out: dict[tuple[str, str], str] = {}
    for block in arch_template().split("- !")[1:]:
        name = re.search(r"^\s*name: (\w+)", block, re.M)
        keep = re.search(r"keep: ([~\w]+)", block)
        if not block.startswith("Memory") or name is None or keep is None:
            continue
        level = LEVELS.get(name.group(1))
        kept = keep.group(1)
        for t in TENSORS:
            if level in ("glb", "rf") and (kept in ("All", t) or (kept.startswith("~") and kept[1:] != t)):
                out.setdefault((t, level), name.group(1))
    return out


def twin() -> Path:
    """hwsim's twin of the machine: the folder's one ``*_hwsim.yaml``."""
    found = sorted(MACHINE.glob("*_hwsim.yaml"))
    if len(found) != 1:
        raise SystemExit(f"{MACHINE}: expected one *_hwsim.yaml twin, found {len(found)}")
    return found[0]


def layers() -> list[dict[str, str]]:
    lines = [ln for ln in (DATA / "layers.csv").read_text().splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines))


RANKS = {"B": "b", "K": "k", "C": "c", "OY": "p", "OX": "q"}


def given_mapping(row: dict[str, str]) -> tuple[str, str]:
    """hwsim's chosen mapping of the layer on the twin as AccelForge mapping nodes, and its notation."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import archs
    from hwsim.npu.loopnest import DIMS, ConvShape
    from hwsim.npu.mapper import search

    s = int(row["stride"])
    shape = ConvShape(1, int(row["k"]), int(row["c"]), int(row["oy"]), int(row["ox"]), int(row["fy"]),
                      int(row["fx"]), s, s)
    res = search(shape, "forward", archs.load(twin()), {"a": 1.0, "b": 1.0, "c": 1.0})
    mp, dims = res.mapping, dict(zip(DIMS, shape.dims, strict=True))
    tile = dict(zip(DIMS, mp.tile, strict=True))
    (rd, rf), (cd, cf) = mp.pe.spatial
    per_pe = {d: tile[d] // (rf if d == rd else cf if d == cd else 1) for d in DIMS}
    rf_tile = dict(zip(DIMS, mp.pe.tile, strict=True))
    # every loop above the register files, outermost first: (node, dimension, temporal, DRAM position)
    loops = [(f"- !Temporal {{rank_variable: {RANKS[d]}, tile_shape: {tile[d]}}}", d, True, q)
             for q, d in enumerate(mp.order) if dims[d] > tile[d]]
    loops += [(f"- !Spatial {{rank_variable: {RANKS[d]}, tile_shape: {per_pe[d]}, name: {name}, "
               "component: PE}", d, False, 5) for name, d, f in (("rows", rd, rf), ("cols", cd, cf)) if f > 1]
    first_pe = len(loops)
    loops += [(f"- !Temporal {{rank_variable: {RANKS[d]}, tile_shape: {rf_tile[d]}}}", d, True, 5 + q)
              for q, d in enumerate(mp.pe.order) if per_pe[d] > rf_tile[d]]  # 5 + buffer-level position
    relevant = {"I": {"B", "C", "OY", "OX"}, "Wt": {"K", "C"}, "O": {"B", "K", "OY", "OX"}}
    names = {"a": "I", "b": "Wt", "c": "O"}
    at: dict[int, list[str]] = {}  # node index -> storage nodes placed above the loop at that index
    comp = holders()  # (tensor, level) -> the component keeping it there
    # the DRAM loop the buffer's input slice slides along (`OY4~` in the notation), if any
    slides = next((tok.rstrip("~").rstrip("0123456789") for tok in res.notation.split("||")[0].split()
                   if tok.endswith("~")), None)
    for op, t in names.items():
        # hwsim keeps a tile while the loops outside it that do not index it turn: in AccelForge the
        # storage node sits just below the innermost loop that indexes it (buffer: among the DRAM loops
        # outside its residency level; register file: among every temporal loop, below the spatials)
        outer = [i for i, (_, d, temporal, q) in enumerate(loops) if temporal and q < res.levels[op]
                 and d in relevant[t]]
        glb = f"- !Storage {{tensors: [{t}], component: {comp.get((t, 'glb'))}}}"
        if (t, "glb") not in comp:  # the tensor bypasses the buffer
            pass
        elif t == "I" and outer and loops[outer[-1]][1] == slides:  # hwsim's buffer keeps the overlap
            # of windows along that DRAM loop: the node sits just above it (below the other nodes
            # there) and AccelForge lowers the buffer's input tile through it
            at.setdefault(outer[-1], []).append(glb + " ")
        else:
            at.setdefault(outer[-1] + 1 if outer else 0, []).append(glb)
        # register file: its slice spans the buffer-level loops from its residency level in
        # (`res.rf_levels`), so its node sits below the innermost indexing loop outside that level
        inner = [i for i, (_, d, temporal, q) in enumerate(loops) if temporal and d in relevant[t]
                 and q < 5 + res.rf_levels.get(t.replace("Wt", "W"), 5)]
        place = max(inner[-1] + 1 if inner else 0, first_pe)
        node = f"- !Storage {{tensors: [{t}], component: {comp[(t, 'rf')]}}}"
        if (t == "I" and inner and inner[-1] >= first_pe and loops[inner[-1]][1] in ("OY", "OX")
                and (shape.fy > s if loops[inner[-1]][1] == "OY" else shape.fx > s)):
            place = inner[-1]  # hwsim keeps the overlap of windows sliding along that loop: the node
            # sits just above it (below the other nodes there) and AccelForge lowers its tile through it
            node += " "
        at.setdefault(place, []).append(node)
    nodes = ["- !Storage {tensors: [I, Wt, O], component: MainMemory}"]
    for i in range(len(loops) + 1):
        # a buffer above a register file, a register file whose tile slides just above its loop
        nodes += [n.strip() for n in sorted(at.get(i, []), key=lambda n: (LEVELS[n.split()[-1].rstrip("} ")]
                                                                          == "rf", n.endswith(" ")))]
        if i < len(loops):
            nodes.append(loops[i][0])
    for d in DIMS:
        if rf_tile[d] > 1:
            nodes.append(f"- !Temporal {{rank_variable: {RANKS[d]}, tile_shape: 1}}")
    for rank, size in (("r", shape.fy), ("s", shape.fx)):
        if size > 1:
            nodes.append(f"- !Temporal {{rank_variable: {rank}, tile_shape: 1}}")
    nodes.append("- !Compute {einsum: Layer, component: MAC}")
    return "mapping:\n  nodes:\n" + "".join(f"  {n}\n" for n in nodes), res.notation


def pe_memory_orders(text: str) -> list[tuple[str, str]]:
    """The machine's arch text once per order of its memories below the PE array, as
    ``(names outermost first, text)``; one entry (``""``, the text) when it has one such memory.

    AccelForge's mapper keeps the storage nodes of the memories it is given in the order they are
    declared (``force_memory_hierarchy_order``: the first above the second), so sibling
    scratchpads of one tensor each (held_out_per_operand_rf) would be searched in one nesting
    only; hwsim's per-operand register files have no order between them. The mapper runs once per
    order and the least energy is kept (the ``rf_order`` column)."""
    blocks = text.split("  - !")
    pe = next(i for i, b in enumerate(blocks) if b.startswith("Container"))
    below = [i for i in range(pe + 1, len(blocks)) if blocks[i].startswith("Memory")]
    if len(below) < 2:
        return [("", text)]
    out = []
    for perm in itertools.permutations(below):
        reordered = list(blocks)
        for slot, i in zip(below, perm, strict=True):
            reordered[slot] = blocks[i]
        names = [re.search(r"name: (\w+)", blocks[i]).group(1) for i in perm]
        out.append((">".join(names), "  - !".join(reordered)))
    return out


def run(row: dict[str, str], folder: Path, given: bool = False,
        all_orders: bool = False) -> dict[str, object]:
    v = {key: int(row[key]) for key in ("k", "c", "oy", "ox", "fy", "fx")}
    v["s"] = int(row["stride"])
    v["ih"] = (v["oy"] - 1) * v["s"] + v["fy"]
    v["iw"] = (v["ox"] - 1) * v["s"] + v["fx"]
    arch, wl = folder / f"{row['name']}.arch.yaml", folder / f"{row['name']}.workload.yaml"
    arch.write_text(arch_template() % {**v, "dram_bw": DRAM_BYTES_PER_CYCLE})
    wl.write_text(WORKLOAD % v)
    start = time.perf_counter()
    notation = ""
    if given:
        text, notation = given_mapping(row)
        mapping = folder / f"{row['name']}.mapping.yaml"
        mapping.write_text(text)
    rf_order = ""
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        if given:
            found = af.Spec.from_yaml(str(arch), str(wl), str(mapping)).evaluate_mapping()
        else:
            found = None
            for order, text in pe_memory_orders(arch.read_text()):
                arch.write_text(text)
                spec = af.Spec.from_yaml(str(arch), str(wl))
                spec.mapper.explore_loop_orders = all_orders  # default no partial-reuse orders: see
                # the docstring
                this = spec.map_workload_to_arch(print_progress=False)
                if found is None or float(this.energy()) < float(found.energy()):
                    found, rf_order = this, order
    wall = time.perf_counter() - start
    out: dict[str, object] = {"layer": row["name"], "kind": row["kind"],
                              "energy_pj": round(float(found.energy()), 3),
                              "latency_cycles": round(float(found.latency()), 3)}
    for comp, lat in sorted(found.latency(per_component=True).items()):  # a level's slowest component
        key = f"{LEVELS.get(comp, comp.lower())}_latency_cycles"
        out[key] = max(round(float(lat), 3), float(out.get(key, 0)))
    for comp, pj in sorted(found.energy(per_component=True).items()):  # a level's components summed
        key = f"{LEVELS.get(comp, comp.lower())}_energy_pj"
        out[key] = round(float(pj) + float(out.get(key, 0)), 3)
    for (comp, tensor, action), n in sorted(found.actions(per_tensor=True).items()):
        if comp in LEVELS and tensor in TENSORS:
            key = f"{LEVELS[comp]}_{TENSORS[tensor]}_{action}"
            out[key] = round(float(n)) + int(out.get(key, 0))
        elif comp == "MAC" and action == "compute":
            out["macs"] = round(float(n))
    if rf_order:
        out["rf_order"] = rf_order
    out["mapping"] = " ".join(str(found.render()).split())
    if given:
        out["hwsim_mapping"] = notation
    out["wall_s"] = round(wall, 1)
    return out


def main() -> int:
    global MACHINE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layers", nargs="*", help="layer names of layers.csv to run (default: all); the "
                        "CSV keeps the other layers' rows")
    parser.add_argument("--given", action="store_true", help="AccelForge's model on hwsim's chosen mappings")
    parser.add_argument("--all-orders", action="store_true",
                        help="the mapper explores every loop order (explore_loop_orders; several times "
                             "slower on a convolution) and writes reference_all_orders.csv")
    parser.add_argument("--machine", type=Path, default=DATA,
                        help="folder of the machine (pe_array.yaml, *_hwsim.yaml); its CSVs are written "
                             "there (default: tests/data/accelforge)")
    args = parser.parse_args()
    MACHINE = args.machine.resolve()
    af.set_n_parallel_jobs(int(os.environ.get("ACCELFORGE_JOBS", "2")))
    # the mapper draws every chosen mapping with graphviz's `dot` (not a Python dependency): a text
    # rendering instead, which is also the CSV's mapping column
    af.mapping.Mapping.render = lambda self, *args, **kwargs: self.compact_str()
    given = args.given
    names = set(args.layers)
    rows = []
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the mapper writes mapping.svg where it runs
        for row in layers():
            if names and row["name"] not in names:
                continue
            rows.append(run(row, Path(tmp), given, args.all_orders))
            print(f"{row['name']}: {rows[-1]['energy_pj']} pJ, {rows[-1]['latency_cycles']} cycles in "
                  f"{rows[-1]['wall_s']} s", file=sys.stderr)
        os.chdir(here)
    target = MACHINE / ("given.csv" if given else "reference_all_orders.csv" if args.all_orders
                        else "reference.csv")
    with open(MACHINE / ".reference.lock", "w") as lock:  # several runs of a few layers each may write it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if names and target.exists():  # keep the other layers' rows
            kept = [ln for ln in target.read_text().splitlines() if not ln.startswith("#")]
            rows += [r for r in csv.DictReader(kept) if r["layer"] not in names]
        order = [r["name"] for r in layers()]
        rows.sort(key=lambda r: order.index(r["layer"]))
        fields = sorted({k for r in rows for k in r},
                        key=lambda k: (k in ("rf_order", "mapping", "hwsim_mapping", "wall_s"), k))
        tmp_target = target.with_suffix(".tmp")
        with open(tmp_target, "w", newline="") as f:
            how = ("its model on hwsim's mappings" if given else "FFM mapper, least energy"
                   + (", every loop order" if args.all_orders else ""))
            f.write(f"# accelforge 1.0.467 ({how}) on {platform.platform()}, "
                    f"{os.cpu_count()} cores, python {platform.python_version()}; "
                    + (f"machine {MACHINE.name}; " if MACHINE != DATA else "")
                    + f"regenerate: make accelforge-{'given' if given else 'reference'}"
                    + (" (--all-orders)" if args.all_orders else "") + "\n")
            w = csv.DictWriter(f, fieldnames=fields, restval=0)
            w.writeheader()
            w.writerows(rows)
        tmp_target.replace(target)
    print(f"wrote {target} ({len(rows)} rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
