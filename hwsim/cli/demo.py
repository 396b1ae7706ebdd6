"""`hwsim demo`: the main job — train with sparse methods, replay on the presets, write a report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import _bar, _print_frame


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job: train with sparse methods, replay on every preset",
                       description="Train small models with dense, DST and DSG on the built-in digits while "
                                   "recording traces, replay every trace on every architecture preset the "
                                   "simulator supports, and write results.parquet and a summary.")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory (default: out/demo)")
    p.add_argument("--quick", action="store_true", help="a tiny budget (seconds), for tests")
    p.set_defaults(func=cmd_demo)


DEMO_METHODS = (("dense", {}), ("dst", {}), ("dsg", {"gamma": 0.8}))
DEMO_ARCHS = ("edge-npu", "eyeriss-v2-pe")  # the presets the simulator models today


def cmd_demo(args: argparse.Namespace) -> int:
    import pandas as pd

    import traces
    from hwsim.report import write_frame
    from hwsim.simulate import simulate
    from traces.training import train

    epochs, every = (1, 11) if args.quick else (6, 22)
    frames = []
    for method, params in DEMO_METHODS:
        path = args.out / f"{method}-mlp-digits.trace"
        bar = _bar(0, f"train {method}")
        result = train(method=method, model="mlp", dataset="digits", epochs=epochs, every=every, out=path,
                       overwrite=True, method_params=params,
                       progress=lambda info, b=bar: (b.__setattr__("total", info["total"]), b.update(1)))
        bar.close()
        print(f"{method:6s} trained: {result.iterations} iterations, test accuracy "
              f"{result.test_accuracy:.3f}, trace {path}")
        tr = traces.load(path)
        picks = tr.mask_iterations if len(tr.mask_iterations) <= 4 else \
            [tr.mask_iterations[round(i * (len(tr.mask_iterations) - 1) / 3)] for i in range(4)]
        for arch in DEMO_ARCHS:
            bar = _bar(len(picks) * len(tr.layers), f"replay {method} on {arch}")
            report = simulate(tr, arch, iterations=picks, progress=lambda d, t, b=bar: b.update(1))
            bar.close()
            frames.append(report.to_frame(meta=True).assign(method=method,
                                                            test_accuracy=result.test_accuracy))
    results = pd.concat(frames, ignore_index=True)
    out = write_frame(results, args.out / "results.parquet")
    cols = ["cycles", "dense_cycles", "energy_pj", "dense_energy_pj"]
    summary = results.groupby(["method", "arch"])[cols].sum()
    table = pd.DataFrame({"cycles": summary["cycles"].map(lambda v: f"{v:,.0f}"),
                          "speedup": (summary["dense_cycles"] / summary["cycles"]).map(lambda v: f"{v:.3f}x"),
                          "energy saving": (summary["dense_energy_pj"] / summary["energy_pj"]).map(
                              lambda v: f"{v:.3f}x")})
    print("\nSpeedup and energy saving over the same machine running dense (replayed iterations, all passes)")
    _print_frame(table)
    from analysis.html import write_report

    report = write_report(results, args.out / "report.html",
                          title="hwsim demo: dense, DST and DSG training replayed on the edge-NPU presets")
    print(f"\nresults: {out}  ({len(results)} rows: iteration × layer × pass × architecture × method)")
    print(f"report:  {report}  (open it in a browser; it works offline)")
    return 0
