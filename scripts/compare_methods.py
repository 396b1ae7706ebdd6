"""Sparse-training methods side by side: train, record, replay on every family, one table.

    python scripts/compare_methods.py --out docs                 # `make compare-methods`
    python scripts/compare_methods.py --smoke --out DIR          # digits MLP, a few iterations (tests)

Each method trains the same model on the same data with the same seed and schedule and records a
trace; the last mask iteration of each trace is replayed (every pass) on edge-npu, gpu-a100 and
reram-isaac. The table gives the method's final weight density, its accuracy, the fraction of the
weight gradient it needs, and per family the speedup and energy saving of the replayed step
against the same machine running that step dense (DESIGN.md's dense baseline), per pass and in
total. Writes ``methods_compare.md`` and ``methods_compare.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("edge-npu", "gpu-a100", "reram-isaac")
PASSES = ("forward", "backward_data", "backward_weight")
# (method, parameters): DST at the paper's MNIST α; the baselines at 10 % density, their defaults
METHODS: list[tuple[str, dict[str, Any]]] = [
    ("dense", {}), ("dst", {}), ("set", {}), ("rigl", {}), ("snfs", {}), ("gmp", {}), ("topkast", {}),
    ("nm", {}),
]


def run_method(name: str, params: dict[str, Any], cfg: dict[str, Any], root: Path) -> dict[str, Any]:
    """Train and record one method, replay its last mask iteration on every family."""
    import traces
    from hwsim.simulate import simulate
    from traces.stats.paper_stats import BASELINES
    from traces.training import train

    start = time.perf_counter()
    r = train(method=name, method_params=dict(params), out=root / name, **cfg)
    tr = traces.load(r.trace)
    last = tr.mask_iterations[-1]
    needed = total = 0
    with tr.iteration(last) as it:
        for li, s in enumerate(tr.layers):
            n = s.numel("w", 1)
            mask = it.mask(li, "dw_needed")
            needed += n if mask is None else int(mask.sum())
            total += n
    out: dict[str, Any] = {"method": name, "params": params, "density": r.method.density()
                           if r.method.density() is not None else 1.0,
                           "best_accuracy": r.best_accuracy, "last_accuracy": r.test_accuracy,
                           "iterations": r.iterations, "replayed_iteration": last,
                           "dw_needed_fraction": needed / total, "families": {}}
    if name in BASELINES or name == "dst":
        out["layer_densities"] = r.method.layer_densities()
    for fam in FAMILIES:
        df = simulate(tr, fam, iterations=[last], workers=1).to_frame()
        fam_out = {}
        for ps in (*PASSES, "all"):
            part = df if ps == "all" else df[df["pass"] == ps]
            cyc, dense_cyc = float(part["cycles"].sum()), float(part["dense_cycles"].sum())
            e, dense_e = float(part["energy_pj"].sum()), float(part["dense_energy_pj"].sum())
            fam_out[ps] = {"cycles": cyc, "dense_cycles": dense_cyc,
                           "speedup": dense_cyc / cyc if cyc else None,
                           "energy_pj": e, "energy_saving": dense_e / e if e else None,
                           "effectual_macs": float(part["effectual_macs"].sum())}
        out["families"][fam] = fam_out
    out["wall_s"] = round(time.perf_counter() - start, 1)
    return out


def report(results: list[dict[str, Any]], cfg: dict[str, Any], smoke: bool, wall_s: float,
           note: str = "") -> str:
    lines = ["# Sparse-training methods side by side", ""]
    if smoke:
        lines += ["**Smoke run: a few iterations; these numbers mean nothing.**", ""]
    if note:
        lines += [f"**This run:** {note}", ""]
    lines += [f"Written by `make compare-methods` (scripts/compare_methods.py) in {wall_s / 60:.1f} min. "
              f"Model {cfg['model']} on {cfg['dataset']}, {cfg['epochs']} epoch(s), SGD lr {cfg['lr']}, "
              f"momentum 0.9, batch 64, seed {cfg['seed']}. Baselines at 10 % density with their "
              "papers' defaults (docs/methods.md), DST at α 5e-4, N:M 2:4. The replayed step is each "
              "trace's last mask iteration, every pass, on each family's preset; speedup and energy "
              "saving are against the same machine running that step dense. Weight gradient needed: "
              "the fraction of weight-gradient entries the method computes on that step (1.0: dense).",
              "",
              "| method | weight density | best / last acc % | weight gradient needed | "
              + " | ".join(f"{f}: speedup (fwd / bwd-data / bwd-weight) | {f}: energy saving"
                           for f in FAMILIES)
              + " | wall |", "|" + " --- |" * (5 + 2 * len(FAMILIES))]
    for x in results:
        cells = []
        for fam in FAMILIES:
            f = x["families"][fam]
            per = " / ".join(f"{f[p]['speedup']:.2f}" if f[p]["speedup"] else "—" for p in PASSES)
            cells += [f"**{f['all']['speedup']:.2f}×** ({per})", f"{f['all']['energy_saving']:.2f}×"]
        lines.append(f"| {x['method']} | {x['density']:.3f} | {x['best_accuracy'] * 100:.2f} / "
                     f"{x['last_accuracy'] * 100:.2f} | {x['dw_needed_fraction']:.3f} | " + " | ".join(cells)
                     + f" | {x['wall_s'] / 60:.1f} min |")
    lines += ["", "Per-layer weight densities at the end:", ""]
    for x in results:
        if "layer_densities" in x:
            dens = ", ".join(f"{n} {v:.3f}" for n, v in x["layer_densities"].items())
            lines.append(f"- {x['method']}: {dens}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "docs", help="directory for methods_compare.md/.json")
    p.add_argument("--smoke", action="store_true", help="digits MLP, a few iterations (tests)")
    p.add_argument("--epochs", type=int, default=2, help="training epochs per method (default 2)")
    p.add_argument("--methods", default="", help="comma-separated subset (default: all)")
    p.add_argument("--note", default="", help="a paragraph on how this run went, printed at the top")
    p.add_argument("--from-json", type=Path, metavar="JSON",
                   help="only rewrite the report from an earlier methods_compare.json "
                   "(with --note, --wall-min)")
    p.add_argument("--wall-min", type=float, default=0.0, help="with --from-json: the wall time to report")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.smoke:
        cfg = {"model": "mlp", "dataset": "digits", "epochs": 1, "lr": 0.05, "seed": 0,
               "max_batches": 6, "every": 3}
    else:
        cfg = {"model": "lenet-300-100", "dataset": "mnist", "epochs": args.epochs, "lr": 0.01, "seed": 0,
               "every": 200, "inputs": "unit"}
    chosen = [m for m in METHODS if not args.methods or m[0] in args.methods.split(",")]
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        chosen = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in chosen:
            if name in ("set", "snfs") and args.smoke:
                params = {**params, "update_every": 2}
            if name in ("rigl", "gmp") and args.smoke:
                params = {**params, "delta_t": 2}
            results.append(run_method(name, params, cfg, Path(tmp)))
            print(f"done {name}: {results[-1]['wall_s']:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    wall = 60 * args.wall_min if args.from_json else time.perf_counter() - start
    for fname, text in (("methods_compare.md", report(results, cfg, args.smoke, wall, args.note)),
                        ("methods_compare.json", json.dumps(results, indent=1, default=float))):
        tmp_file = args.out / f".{fname}.tmp"
        tmp_file.write_text(text)
        os.replace(tmp_file, args.out / fname)
    print(f"wrote {args.out / 'methods_compare.md'} ({wall / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
