"""`hwsim replay`: replay a trace on an architecture and print the summary (see hwsim/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import _bar, _print_frame, check_output


def add_replay(sub: Any) -> None:
    p = sub.add_parser("replay", help="replay a trace on an architecture: cycles, energy, traffic",
                       description="Replay a training trace on an architecture and report cycles, speedup "
                                   "over the same machine running dense, energy and DRAM traffic.")
    p.add_argument("trace", type=Path, help="trace directory")
    p.add_argument("--arch", required=True, help="preset name, YAML file or SCALE-Sim .cfg")
    p.add_argument("--dataflow", choices=["ws", "os", "is"], help="default: the architecture's")
    p.add_argument("--passes", default="fwd,bwd-data,bwd-weight,update",
                   help="comma-separated: fwd, bwd-data, bwd-weight, update (default: all)")
    p.add_argument("--iterations", help="comma-separated iteration numbers (default: every mask iteration)")
    p.add_argument("--backend", choices=["analytic", "event"], default="analytic",
                   help="timing back end (default: analytic; event = simpy)")
    p.add_argument("--out", type=Path, help="write the full results: .parquet or .csv")
    p.set_defaults(func=cmd_replay)


PASS_NAMES = {"fwd": "forward", "bwd-data": "backward_data", "bwd-weight": "backward_weight",
              "update": "update", "forward": "forward", "backward_data": "backward_data",
              "backward_weight": "backward_weight"}


def cmd_replay(args: argparse.Namespace) -> int:
    import traces
    from hwsim.simulate import simulate

    passes = []
    for name in (p.strip() for p in args.passes.split(",") if p.strip()):
        if name not in PASS_NAMES:
            raise ValueError(f"--passes: unknown pass {name!r}; use fwd, bwd-data, bwd-weight, update")
        if PASS_NAMES[name] not in passes:
            passes.append(PASS_NAMES[name])
    if not passes:
        raise ValueError(f"--passes: name at least one pass (fwd, bwd-data, bwd-weight, update), "
                         f"got {args.passes!r}")
    try:
        its = [int(v) for v in args.iterations.split(",")] if args.iterations else None
    except ValueError:
        raise ValueError(f"--iterations: expected numbers like 0,10,20, got {args.iterations!r}") from None
    if args.out is not None and args.out.suffix not in (".parquet", ".csv"):
        raise ValueError(f"--out {args.out}: use a .parquet or .csv file name")
    if args.out is not None:
        check_output(args.out, "--out")  # before minutes of simulation, not after
    import archs

    machine = archs.load(args.arch)  # simulate() refuses a dataflow for machines without a PE array
    tr = traces.load(args.trace)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _bar(total, "replay")
        bar.update(1)

    try:
        report = simulate(tr, machine, dataflow=args.dataflow, passes=passes, iterations=its,
                          backend=args.backend, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if report.to_frame().empty:  # e.g. only bwd-data on a trace that records no input gradients
        raise ValueError(f"{args.trace}: the trace records no work for --passes {args.passes} "
                         "(backward_data needs recorded input gradients, dx; backward_weight and update "
                         "need weight gradients, dw); choose other passes")
    saved = report.save(args.out) if args.out is not None else None  # outputs first, then the summary
    print_summary(report)
    if saved is not None:
        print(f"results written to {saved}")
    return 0


def print_summary(report: Any) -> None:
    """Per pass and total: cycles, speedup, energy, energy saving, DRAM traffic."""
    m = report.meta
    s = report.summary()
    iters = report.to_frame()["iteration"].nunique()
    if m.get("dataflow"):  # PE arrays
        how = f" ({m['dataflow']}, {m['backend']} timing)"
    elif m.get("family") == "reram":  # crossbars: neither a dataflow nor a timing back end applies
        how = ""
    else:
        how = f" ({m.get('family', '')} model, {m['backend']} timing)"
    print(f"{m['trace']} on {m['arch']}{how}, {iters} iteration(s) "
          "replayed exactly; dense = the same machine with every sparse feature off")
    table = {
        "cycles": s["cycles"].map(lambda v: f"{v:,.0f}"),
        "speedup": s["speedup"].map(lambda v: f"{v:.3f}x"),
        "energy (µJ)": (s["energy_pj"] / 1e6).map(lambda v: f"{v:,.3f}"),
        "energy saving": s["energy_saving"].map(lambda v: f"{v:.3f}x"),
        "DRAM (MB)": (s["dram_bytes"] / 1e6).map(lambda v: f"{v:,.4f}"),
    }
    import pandas as pd

    _print_frame(pd.DataFrame(table, index=s.index))
    if m.get("family") == "reram":
        _print_pipeline(report.to_frame(), m["clock_hz"])
        _print_writes(report.to_frame())
    t = report.totals()
    n = t.attrs["iterations_in_run"]
    cyc = t.loc["cycles"]
    print(f"whole run ({n} iterations, extrapolated from {t.attrs['iterations_recorded']}): "
          f"{cyc['run_estimate']:,.0f} cycles = {cyc['run_estimate'] / m['clock_hz'] * 1e3:,.3f} ms "
          f"(per iteration {cyc['per_iteration_mean']:,.0f} ± {cyc['per_iteration_std']:,.0f}), "
          f"speedup {t.loc['dense_cycles', 'run_estimate'] / cyc['run_estimate']:.3f}x")


def _print_writes(df: Any) -> None:
    """ReRAM: cell writes of the recorded updates per layer, and the projected lifetime."""
    if "reram_cell_writes" not in df.columns:
        print("cell writes: the trace records no weights (train with weights recorded to count them)")
        return
    u = df[df["pass"] == "update"].dropna(subset=["reram_cell_writes"])
    if u.empty:
        return
    by = u.groupby("layer", sort=False)
    last = by.last()
    table = {
        "cells written/step": by["reram_cell_writes"].mean().map(lambda v: f"{v:,.0f}"),
        "pulses/step": by["reram_write_pulses"].mean().map(lambda v: f"{v:,.0f}"),
        "max writes/cell/epoch": last["reram_max_cell_writes_per_epoch"].map(lambda v: f"{v:,.1f}"),
        "lifetime (epochs)": last["reram_lifetime_epochs"].map(lambda v: f"{v:,.4g}"),
    }
    import pandas as pd

    print("cell writes of the recorded updates (all copies of each layer; lifetime against the endurance):")
    _print_frame(pd.DataFrame(table))


def _print_pipeline(df: Any, clock_hz: float) -> None:
    """ReRAM: the forward pass layer by layer against the inter-layer pipeline (slowest stage)."""
    fwd = df[df["pass"] == "forward"]
    if fwd.empty:
        return
    per_it = fwd.groupby("iteration")["cycles"]
    worst = fwd.loc[fwd["cycles"].idxmax()]
    print(f"forward, per iteration: {per_it.sum().mean():,.0f} cycles layer by layer; pipelined, the slowest "
          f"stage ({worst['layer']}, {int(worst['reram_replicas'])} copies) sets the rate: "
          f"{per_it.max().mean():,.0f} cycles = {per_it.max().mean() / clock_hz * 1e6:,.2f} µs per batch")
