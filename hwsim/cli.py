"""The ``hwsim`` command line.

User errors (bad traces, bad configs, bad options) print one line and exit 2, never a
traceback; set ``HWSIM_DEBUG=1`` to see the traceback anyway. Long work shows a progress bar
(on a terminal). torch is imported only by the commands that train.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archs import ConfigError
from traces import RecorderError, TraceFormatError

from .cli_archs import add_archs
from .cli_common import _bar, _print_frame
from .cli_replay import add_replay
from .cli_trace import add_trace, add_train

USER_ERRORS = (ConfigError, TraceFormatError, RecorderError, FileExistsError, FileNotFoundError,
               ValueError)  # MappingError is a ValueError


# -- report -----------------------------------------------------------------------------------------

def add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="a self-contained HTML report (plots, tables) from results files",
                       description="Write one self-contained HTML file (plotly embedded; opens offline) "
                                   "from results written by `hwsim replay --out` or `hwsim demo`.")
    p.add_argument("results", nargs="+", type=Path, help="results files (.parquet or .csv)")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file (default: report.html)")
    p.add_argument("--title", default="hwsim report")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.html import write_report

    path = write_report(args.results, args.out, title=args.title)
    print(f"report written to {path}")
    return 0


# -- demo -------------------------------------------------------------------------------------------

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


# -- entry point ------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [add_demo, add_train, add_trace, add_replay, add_report, add_archs]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hwsim",
        description="Trace-driven simulator and cost model for sparse neural-network training.")
    from hwsim import __version__

    p.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error)."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        if os.environ.get("HWSIM_DEBUG"):
            raise
        print(f"hwsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
