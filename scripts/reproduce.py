"""Reproduce the papers' rows that this machine's data allows, and write docs/reproduction.md.

    python scripts/reproduce.py                    # the real runs (`make reproduce`, about an hour)
    python scripts/reproduce.py --smoke --out DIR  # every row for a few iterations (the test suite)
    python scripts/reproduce.py --resume docs/reproduction.json  # run only what an earlier run left

Rows (each with the paper's number, its source, our settings and seeds):

- DST (arXiv 2005.06870, Table 1): MNIST LeNet-300-100 and LeNet-5-Caffe, dense and sparse.
- DSG (arXiv 1810.00859, Fig. 5a and §4): the paper's MLP and LeNet rows are on Fashion-MNIST,
  which is not on this machine; they run on MNIST instead, at γ = 0.5 / 0.8 / 0.9 and dense.
- Multi-level (arXiv 2112.10930, abstract): LeNet-5-Caffe on MNIST at the paper's two average
  levels (5.38 % and 13.38 % of the weights), accuracy and FLOPs at every reroute point, with and
  without rerouting-aware growth.

Rows that need CIFAR-10/100 or Fashion-MNIST are listed with the command to run them. Runs go to
``--workers`` processes (one torch thread each). Deterministic per seed; wall times vary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from reproduction.plans import FULL, SWEEP, Run
from reproduction.report import report
from reproduction.sweep import write_svgs
from reproduction.training import run_one

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="a few iterations per row (tests)")
    p.add_argument("--out", type=Path, default=REPO / "docs", help="directory for reproduction.md/.json")
    p.add_argument("--workers", type=int, default=2, help="parallel runs (default 2)")
    p.add_argument("--rows", default="", help="comma-separated row ids to run (default: all)")
    p.add_argument("--labels", default="",
                   help="comma-separated run labels to run within the chosen rows (e.g. 'α=0.001'; "
                   "default: all)")
    p.add_argument("--sweep", action="store_true",
                   help="run DST's α sweep on MNIST (LeNet-300-100 and LeNet-5-Caffe, 20 epochs per α, "
                   "inputs in [0, 1]) instead of the paper rows; its report brackets Table 1 "
                   "(--budget-min caps it)")
    p.add_argument("--budget-min", type=float, default=60.0,
                   help="wall-clock budget: no run starts after it, single-phase runs stop at the epoch "
                   "that crosses it (default 60)")
    p.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                   help="only write the report from these reproduction.json files (runs split over "
                   "processes); the first file's result wins for a run that appears twice")
    p.add_argument("--wall-min", type=float, help="with --merge: the total wall time to report")
    p.add_argument("--note", default="",
                   help="a sentence on how this run went (machine load, resumed runs), printed at the top")
    p.add_argument("--resume", type=Path, metavar="JSON",
                   help="a reproduction.json from an earlier run: its finished runs (with the epochs "
                        "planned now) are kept in the report and not run again; only the missing ones run")
    args = p.parse_args(argv)
    plan = SWEEP if args.sweep else FULL
    runs = [r for r in plan if not args.rows or r.row in args.rows.split(",")]
    if args.labels:
        wanted = args.labels.split(",")
        unknown = sorted(set(wanted) - {r.label for r in runs})
        if unknown:
            p.error(f"--labels: no run labelled {', '.join(unknown)} in the chosen plan and rows "
                    f"(labels there: {', '.join(r.label for r in runs)})")
        runs = [r for r in runs if r.label in wanted]
    if args.smoke:
        runs = [Run(r.row, r.label, r.model, r.method, r.epochs, r.lr, r.seeds[:1], r.method_params,
                    inputs=r.inputs) for r in runs]
    if args.merge:
        merged: dict[tuple[str, str, int], dict[str, Any]] = {}
        for path in args.merge:
            for res in json.loads(path.read_text()):
                key = (res["row"], res["label"], res["seed"])
                if key not in merged or (merged[key].get("skipped") and not res.get("skipped")):
                    merged[key] = res
        args.out.mkdir(parents=True, exist_ok=True)
        text = report(list(merged.values()), runs, 60 * (args.wall_min or 0.0), args.smoke, args.note)
        tmp = args.out / ".reproduction.md.tmp"
        tmp.write_text(text)
        os.replace(tmp, args.out / "reproduction.md")
        tmp = args.out / ".reproduction.json.tmp"
        tmp.write_text(json.dumps(list(merged.values()), indent=1, default=float))
        os.replace(tmp, args.out / "reproduction.json")
        if args.sweep:
            write_svgs(list(merged.values()), args.out)
        print(f"wrote {args.out / 'reproduction.md'} from {len(merged)} runs")
        return 0
    results: list[dict[str, Any]] = []
    if args.resume:
        if not args.resume.is_file():
            p.error(f"--resume {args.resume}: no such file (a reproduction.json written by this script)")
        planned = {(r.row, r.label): r.epochs for r in [*FULL, *SWEEP]}
        # a run kept from the earlier file must have run the epochs planned now (plans change)
        results = [res for res in json.loads(args.resume.read_text()) if not res.get("skipped")
                   and res.get("epochs_run", 0) >= planned.get((res["row"], res["label"]), 0)]
    finished = {(res["row"], res["label"], res["seed"]) for res in results}
    # priority order, a pool taking them first come: every row's first seed, in the rows' order, then
    # every row's second seed, and so on (a budget cut drops extra seeds before whole rows)
    jobs = [(r, r.seeds[i]) for i in range(max((len(r.seeds) for r in runs), default=0)) for r in runs
            if i < len(r.seeds) and (r.row, r.label, r.seeds[i]) not in finished]
    start = time.perf_counter()
    deadline = time.time() + 60 * args.budget_min
    args.out.mkdir(parents=True, exist_ok=True)

    def write() -> None:  # after every run: a partial report survives an interruption
        wall_s = time.perf_counter() - start
        if args.sweep:
            write_svgs(results, args.out)
        for name, text in (("reproduction.md", report(results, runs, wall_s, args.smoke, args.note)),
                           ("reproduction.json", json.dumps(results, indent=1, default=float))):
            tmp = args.out / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, args.out / name)

    def done(res: dict[str, Any]) -> None:
        results.append(res)
        write()
        what = "skipped (deadline)" if res.get("skipped") else \
            f"best {res['best_accuracy']:.4f}, {res['epochs_run']} epochs in {res['wall_s']:.0f} s"
        print(f"done {res['row']} {res['label']} seed {res['seed']}: {what}", flush=True)

    if args.workers <= 1:
        for r, s in jobs:
            done(run_one(r, s, args.smoke, deadline))
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            futures = [pool.submit(run_one, r, s, args.smoke, deadline) for r, s in jobs]
            for f in futures:
                done(f.result())
    write()
    print(f"wrote {args.out / 'reproduction.md'} ({(time.perf_counter() - start) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
