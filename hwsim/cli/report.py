"""`hwsim report`: a self-contained HTML report from results files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="a self-contained HTML report (plots, tables) from results files",
                       description="Write one self-contained HTML file (plotly embedded; opens offline) "
                                   "from results written by `hwsim replay --out` or `hwsim demo`, or from "
                                   "a sweep directory written by `hwsim sweep` (Pareto front, parallel "
                                   "coordinates, heat maps, per-method comparison).")
    p.add_argument("results", nargs="+", type=Path,
                   help="results files (.parquet or .csv), or one sweep directory")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file (default: report.html)")
    p.add_argument("--title", default="hwsim report")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.html import write_report

    from .common import check_output

    check_output(args.out, "--out")
    if len(args.results) == 1 and args.results[0].is_dir():
        from analysis.sweep.report import write_sweep_report

        title = None if args.title == "hwsim report" else args.title
        path = write_sweep_report(args.results[0], args.out, title=title)
        print(f"sweep report written to {path}")
        return 0
    try:
        path = write_report(args.results, args.out, title=args.title)
    except ValueError as exc:  # unreadable results: name the files when the reader did not
        if any(str(r) in str(exc) for r in args.results):
            raise
        raise ValueError(f"{', '.join(map(str, args.results))}: {exc}; give results files written by "
                         "`hwsim replay --out` or `hwsim demo`") from None
    print(f"report written to {path}")
    return 0
