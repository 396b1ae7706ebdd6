"""The AccelForge comparison tables of docs/validation.md §3c, from the committed CSVs and hwsim's
search today (`make accelforge-tables`; runs in the project's venv, not AccelForge's).

For each machine (the 32×32 twin, and a held-out one with ``--machine``: 16×16, per-operand register
files, weight bypass): AccelForge's model on
hwsim's mapping (given.csv: its counts, which hwsim's equal, and the two latencies) and AccelForge's
own mapper (reference.csv: hwsim / AccelForge per tensor and level, reads + writes), printed as
Markdown, with the reads and writes outside 1.25× listed below.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import archs  # noqa: E402
from hwsim.npu.mapper import search  # noqa: E402
from tests.hwsim.test_accelforge_agreement import ONE, _rows, schedule_cycles, shape_of  # noqa: E402

TENSORS = {"a": "I", "b": "W", "c": "O"}


def accesses(res, level: str, op: str, direction: str) -> float:
    """hwsim's accesses of one tensor at a level; ``rf``: every register file (one per tensor on the
    per-operand machines) summed, as the CSVs' ``rf`` columns sum AccelForge's scratchpads."""
    return sum(v for (lv, o, _k, d), v in res.bytes.items()
               if (lv.startswith("rf") if level == "rf" else lv == level) and o == op and d == direction)


def _both(r: dict[str, str], level: str, op: str) -> float:
    return sum(float(r.get(f"{level}_{op}_{d}") or 0) for d in ("read", "write"))


def tables(machine: str | None) -> str:
    folder = "" if machine is None else f"{Path(machine).name}/"
    arch_file = (sorted((ROOT / machine).glob("*_hwsim.yaml"))[0] if machine
                 else ROOT / "tests/data/accelforge/pe_array_hwsim.yaml")
    arch = archs.load(arch_file)
    given = _rows(f"{folder}given.csv")
    ran = (ROOT / "tests/data/accelforge" / folder / "reference.csv").exists()  # the mapper's run
    reference = _rows(f"{folder}reference.csv") if ran else []
    res = {r["layer"]: search(shape_of(r["layer"]), "forward", arch, ONE) for r in given}
    lines = ["| layer | DRAM I / W / O (r+w) | GLB I / W / O (r+w) | RF I / W / O (r+w) | energy µJ | "
             "AccelForge cycles | hwsim cycles | ratio | hwsim mapping |", "|---" * 9 + "|"]
    for r in given:
        ours = schedule_cycles(arch, shape_of(r["layer"]), res[r["layer"]])
        theirs_cycles = float(r["latency_cycles"])
        cells = [" / ".join(f"{_both(r, lv, op):,.0f}" for op in "abc") for lv in ("dram", "glb", "rf")]
        mapping = r["hwsim_mapping"].replace("|", "\\|")
        lines.append(f"| {r['layer']} | {' | '.join(cells)} | {float(r['energy_pj']) / 1e6:.2f} | "
                     f"{theirs_cycles:,.0f} | {ours:,} | {ours / theirs_cycles:.2f} | `{mapping}` |")
    lines += ["", "| layer | search min | energy µJ (AccelForge) | energy | DRAM I / W / O | GLB I / W / O | "
              "RF I / W / O | AccelForge cycles | hwsim cycles | latency |", "|---" * 10 + "|"]
    outside = []
    for r in reference:
        mine = res[r["layer"]]
        ours = schedule_cycles(arch, shape_of(r["layer"]), mine)
        theirs_cycles = float(r["latency_cycles"])
        cells = []
        for lv in ("dram", "glb", "rf"):
            ratios = []
            for op in "abc":
                theirs = _both(r, lv, op)
                both = sum(accesses(mine, lv, op, d) for d in ("read", "write"))
                ratios.append("–" if theirs == both == 0 else f"{both / max(theirs, 1):.2f}")
                for d in ("read", "write"):
                    t, o = float(r.get(f"{lv}_{op}_{d}") or 0), accesses(mine, lv, op, d)
                    if (t or o) and not 0.8 <= o / max(t, 1) <= 1.25:
                        outside.append(f"{r['layer']} {lv} {TENSORS[op]} {d} {o / max(t, 1):.2f}")
            cells.append(" / ".join(ratios))
        lines.append(f"| {r['layer']} | {float(r['wall_s']) / 60:.1f} | {float(r['energy_pj']) / 1e6:.2f} | "
                     f"{mine.energy_pj / float(r['energy_pj']):.3f} | {' | '.join(cells)} | "
                     f"{theirs_cycles:,.0f} | {ours:,} | {ours / theirs_cycles:.2f} |")
    lines += ["", f"Reads and writes outside 1.25× of AccelForge's mapper: {len(outside)}"
              + "".join(f"\n- {x}" for x in outside)]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machine", help="a held-out machine's folder (tests/data/accelforge/held_out_16x16, "
                    "held_out_per_operand_rf, held_out_weight_bypass)")
    print(tables(ap.parse_args().machine))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
