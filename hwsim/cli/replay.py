"""`hwsim replay`: replay a trace on an architecture and print the summary (see hwsim/cli.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NamedTuple

from archs.units import format_size
from hwsim.errors import MappingError
from hwsim.memory import MemoryBudgetError, keep_freed_memory_small, rss_bytes

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
    p.add_argument("--dense-trained", type=Path, metavar="TRACE",
                   help="the dense-trained trace of the same model, data and batch: replayed on the same "
                        "machine, it leads the summary (what the method buys, its own work included) and "
                        "its rows join --out")
    p.add_argument("--memory-budget", metavar="SIZE",
                   help="peak memory (resident) of the whole process, e.g. 512MiB, 8GiB or 4e9 (default: "
                        "half of this machine's memory); what the process holds before replaying (~125 MB) "
                        "counts, and a layer that would not fit is refused up front with the estimate")
    p.add_argument("--mapping", default="fixed", metavar="fixed|scalesim|search|FILE",
                   help="edge NPU: how each layer's data moves above the array: fixed (the fixed loop order, "
                        "SCALE-Sim's), scalesim (SCALE-Sim 3.0.0's own CALC-mode DRAM reads and writes), "
                        "search (the mapper picks tiles and loop order per layer and pass, by --objective) "
                        "or a YAML mapping file (docs/mapping.md); default fixed")
    p.add_argument("--objective", choices=["energy", "latency", "edp", "dram"], default="energy",
                   help="what --mapping search minimises (default energy)")
    p.add_argument("--show-mapping", action="store_true",
                   help="print the mapping of every layer and pass (notation: docs/mapping.md)")
    p.add_argument("--out", type=Path, help="write the full results: .parquet or .csv")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="replay a trace whose recording did not finish (killed, disk full, an error "
                        "in the step): only the iterations it holds")
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

    if str(args.arch).endswith(".cfg"):
        from archs.scalesim import bandwidth_mode

        if bandwidth_mode(args.arch) == "USER":
            raise archs.ConfigError([
                "[run_presets] InterfaceBandwidth: USER (SCALE-Sim's bandwidth-limited prefetch and stall "
                "model) is not modelled; use CALC (stall-free, reproduced exactly), or save the machine as "
                "YAML (hwsim archs show --yaml FILE.cfg) to time its links with hwsim's own model"],
                str(args.arch))
    machine = archs.load(args.arch)  # simulate() refuses a dataflow for machines without a PE array
    tr = traces.load(args.trace)
    check_complete(tr, args.trace, args.allow_incomplete)
    if not tr.complete:
        unsealed = f" ({len(tr.unsealed)} files not sealed by digests)" if tr.unsealed else ""
        print(f"{args.trace}: incomplete trace, replaying the {len(tr)} iterations it holds{unsealed}",
              file=sys.stderr)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _bar(total, "replay")
        bar.update(1)

    dense_tr = _comparable_dense(tr, args.dense_trained) if args.dense_trained is not None else None
    if dense_tr is not None:
        check_complete(dense_tr, args.dense_trained, args.allow_incomplete)
    budget = process_budget(args.memory_budget)
    held = _held_before_replay(machine, args.out, args.backend)
    replay_budget = budget.total - held - REPORT_RESERVE_BYTES
    if replay_budget <= 0:
        raise ValueError(f"{budget.option}: this process holds {format_size(held)} before the replay starts "
                         f"(Python, numpy, pandas, pyarrow, the trace's manifest) and keeps "
                         f"{format_size(REPORT_RESERVE_BYTES)} for the report; give more than "
                         f"{format_size(held + REPORT_RESERVE_BYTES)}")
    try:
        mapping = args.mapping if args.mapping in ("fixed", "scalesim", "search") else Path(args.mapping)
        report = simulate(tr, machine, dataflow=args.dataflow, passes=passes, iterations=its,
                          backend=args.backend, memory_budget_bytes=replay_budget, progress=progress,
                          mapping=mapping, mapping_objective=args.objective)
        dense = None if dense_tr is None else simulate(dense_tr, machine, dataflow=args.dataflow,
                                                       passes=passes, backend=args.backend,
                                                       memory_budget_bytes=replay_budget, mapping=mapping,
                                                       mapping_objective=args.objective)
    except MemoryBudgetError as exc:
        raise ValueError(f"{budget.option}: layer {exc.layer} needs about {format_size(exc.need_bytes)} to "
                         f"replay, beside the {format_size(held)} this process holds before replaying and "
                         f"{format_size(REPORT_RESERVE_BYTES)} kept for the report; give at least "
                         f"{format_size(held + REPORT_RESERVE_BYTES + exc.need_bytes)}, or replay fewer "
                         "samples (record with --mask-samples)") from None
    except MappingError as exc:
        if "memory budget" not in str(exc):
            raise
        raise MappingError(f"{exc} (the replay's part of {budget.option}: this process holds "
                           f"{format_size(held)} before replaying)") from None
    finally:
        if bar is not None:
            bar.close()
    if report.to_frame().empty:  # e.g. only bwd-data on a trace that records no input gradients
        raise ValueError(f"{args.trace}: the trace records no work for --passes {args.passes} "
                         "(backward_data needs recorded input gradients, dx; backward_weight and update "
                         "need weight gradients, dw); choose other passes")
    saved = None
    if args.out is not None:  # outputs first, then the summary
        import pandas as pd

        from hwsim.report import write_frame

        frames = [r.to_frame(meta=True) for r in (report, dense) if r is not None]
        saved = write_frame(pd.concat(frames, ignore_index=True), args.out)
    if dense is not None:
        print_versus_dense_training(report, dense)
    print_summary(report)
    if args.show_mapping:
        print_mapping(report)
    if saved is not None:
        print(f"results written to {saved}")
    return 0


def check_complete(tr: Any, path: Path, allowed: bool) -> None:
    """ValueError for a trace whose recording did not close it (killed, disk full, an error in the
    training step), unless ``allowed``: a replay would extrapolate from what is left."""
    if tr.complete or allowed:
        return
    its = tr.iterations
    masks = len(tr.mask_iterations)
    held = f"iterations {its[0]}..{its[-1]} ({masks} with masks)" if its else "no iterations"
    raise ValueError(f"{path}: incomplete trace: its recording did not finish (killed, disk full or an "
                     f"error in the training step); it holds {held}; replay those with --allow-incomplete")


# What the summary and the results file take after the replay (frames of a few thousand rows, the
# Parquet writer's buffers): measured 5-12 MB on ResNet-18 replays; 32 MiB leaves a margin.
REPORT_RESERVE_BYTES = 32 * 2**20


class _Budget(NamedTuple):
    total: float  # bytes the whole process may reach
    option: str  # how to name it in a message


def process_budget(text: str | None) -> _Budget:
    """``--memory-budget`` in bytes (default: half of this machine's memory)."""
    from hwsim.simulate import default_memory_budget_bytes

    if text is None:
        total = default_memory_budget_bytes()
        return _Budget(total, f"the default memory budget ({format_size(total)}, half of the memory)")
    from archs.units import parse as parse_size

    try:
        total = parse_size(text, "memory_budget_bytes")
    except ValueError as exc:
        raise ValueError(f"--memory-budget: {exc}") from None
    if not 0 < total < float("inf"):
        raise ValueError(f"--memory-budget: must be a positive, finite size, got {text!r}")
    return _Budget(total, f"--memory-budget {format_size(total)}")


def _held_before_replay(machine: Any, out: Path | None, backend: str) -> int:
    """What this process holds before the replay: the libraries the replay and its outputs use are
    imported first, so that what comes after is the replay's and the report's."""
    import importlib

    import pandas  # noqa: F401 - the report's frames
    import tqdm  # noqa: F401 - the progress bar

    from hwsim.simulate import family_of

    if out is not None and out.suffix == ".parquet":
        importlib.import_module("pyarrow.parquet")
    family_of(machine)  # the family's package and what it imports (simpy for the event engine)
    if backend == "event":
        importlib.import_module("hwsim.engines.event")  # simpy
    keep_freed_memory_small()
    return rss_bytes()


def _comparable_dense(tr: Any, path: Path) -> Any:
    """The dense-trained trace at ``path``, checked to be the same model, data and batch as ``tr``."""
    import traces

    dense = traces.load(path)
    if dense.manifest["method"]["name"] != "dense":
        raise ValueError(f"--dense-trained {path}: that trace was trained with "
                         f"{dense.manifest['method']['name']!r}; give a trace trained with --method dense")
    for key, what in (("model", "model"), ("dataset", "data set")):
        a, b = (tr.manifest.get(key) or {}).get("name"), (dense.manifest.get(key) or {}).get("name")
        if a != b:
            raise ValueError(f"--dense-trained {path}: its {what} is {b!r}, the replayed trace's is {a!r}; "
                             "compare traces of the same model and data")
    def geometry(t: Any) -> list[tuple]:  # names and GEMM shapes (a method may wrap the module class)
        return [(s.name, s.kind, *(s.gemm(p, 1) for p in s.gemm_passes)) for s in t.layers]

    if geometry(tr) != geometry(dense):
        raise ValueError(f"--dense-trained {path}: its layer table differs from {tr.path}'s; compare traces "
                         "of the same model")
    if tr.manifest.get("batch_size") != dense.manifest.get("batch_size"):
        raise ValueError(f"--dense-trained {path}: batch {dense.manifest.get('batch_size')} against "
                         f"{tr.manifest.get('batch_size')}; record both with the same batch size")
    return dense


def print_versus_dense_training(report: Any, dense: Any) -> None:
    """The headline: the method against dense training on the same machine, per training iteration."""
    import pandas as pd

    from analysis.frames import versus_dense_training

    v = versus_dense_training(pd.concat([report.to_frame(meta=True), dense.to_frame(meta=True)],
                                        ignore_index=True))
    row = v[v["method"] == report.meta["method"]].iloc[0]
    print(f"{report.meta['method']} against dense training ({dense.meta['trace']}) on {report.meta['arch']}, "
          "per training iteration, the method's own work included (above 1x: cheaper):")
    _print_frame(pd.DataFrame({
        "method": [f"{row['cycles']:,.0f}", f"{row['energy_pj'] / 1e6:,.3f}",
                   f"{row['offchip_bytes'] / 1e6:,.4f}", f"{row.get('vector_ops', 0):,.0f}"],
        "dense training": [f"{row['dense_training_cycles']:,.0f}",
                           f"{row['dense_training_energy_pj'] / 1e6:,.3f}",
                           f"{row['dense_training_offchip_bytes'] / 1e6:,.4f}",
                           f"{row.get('dense_training_vector_ops', 0):,.0f}"],
        "ratio": [f"{row['speedup_vs_dense_training']:.3f}x",
                  f"{row['energy_saving_vs_dense_training']:.3f}x",
                  f"{row['offchip_saving_vs_dense_training']:.3f}x",
                  f"{row.get('vector_ops_vs_dense_training', float('nan')):.2f}x (method / dense)"],
    }, index=["cycles", "energy (µJ)", "off-chip (MB)", "non-GEMM ops"]))
    print()


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
    print(f"{m['trace']} on {m['arch']}{how}, {iters} iteration(s) replayed; sparse features on against "
          "off for the same trace (it still carries the method's own work; --dense-trained compares with "
          "dense training)")
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
        _print_pipeline(report.to_frame(), m["clock_hz"], m)
        _print_writes(report.to_frame())
    t = report.totals()
    n = t.attrs["iterations_in_run"]
    cyc = t.loc["cycles"]
    print(f"whole run ({n} iterations, extrapolated from {t.attrs['iterations_recorded']}): "
          f"{cyc['run_estimate']:,.0f} cycles = {cyc['run_estimate'] / m['clock_hz'] * 1e3:,.3f} ms "
          f"(per iteration {cyc['per_iteration_mean']:,.0f} ± {cyc['per_iteration_std']:,.0f}), "
          f"speedup {t.loc['dense_cycles', 'run_estimate'] / cyc['run_estimate']:.3f}x")


def print_mapping(report: Any) -> None:
    """The mapping of every layer and pass (the last replayed iteration's), with its DRAM bytes."""
    df = report.to_frame()
    if "mapping" not in df.columns:
        print(f"mappings: {report.meta['arch']} is a {report.meta.get('family')} machine; mappings apply to "
              "PE arrays (edge_npu)")
        return
    off = report.meta.get("off_chip", "dram")
    dram = [c for c in df.columns if c.startswith(f"{off}_") and c.endswith("_bytes")]
    rows = df.dropna(subset=["mapping"]).groupby(["layer", "pass"], sort=False).last()
    import pandas as pd

    mode = report.meta.get("mapping", "fixed")
    notation = {"scalesim": "dataflow | column and row folds | read windows | ofmap drain, in words",
                "fixed": "dataflow and stream chunk | folds and chunks"}.get(
        mode, "tile | DRAM loops outermost first")
    print(f"mappings ({mode}; {notation}, docs/mapping.md):")
    _print_frame(pd.DataFrame({"mapping": rows["mapping"],
                               "DRAM (kB)": rows[dram].sum(axis=1).map(lambda v: f"{v / 1e3:,.1f}")}))


def _print_writes(df: Any) -> None:
    """ReRAM: cell writes of the recorded updates per layer, and the projected lifetime."""
    if "reram_cell_writes" not in df.columns:
        print("cell writes: no recorded update to take them from (train with weights recorded to count them)")
        return
    u = df[df["pass"] == "update"].dropna(subset=["reram_cell_writes"])
    if u.empty:
        return
    by = u.groupby("layer", sort=False)
    last = by.last()
    table = {
        "cells written/step": by["reram_cell_writes"].mean().map(lambda v: f"{v:,.0f}"),
        "pulses/step": by["reram_write_pulses"].mean().map(lambda v: f"{v:,.0f}"),
    }
    if "reram_lifetime_epochs" in last.columns:  # wear is kept on recorded updates only
        table["max pulses/cell/epoch"] = last["reram_max_cell_pulses_per_epoch"].map(
            lambda v: "-" if v != v else f"{v:,.1f}")
        table["lifetime (epochs)"] = last["reram_lifetime_epochs"].map(
            lambda v: "-" if v != v else f"{v:,.4g}")
    else:
        table["lifetime (epochs)"] = by["reram_cell_writes"].mean().map(
            lambda v: "- (no recorded update replayed)")
    import pandas as pd

    print("cell writes per step (recorded updates, or their expected value on counts-only iterations; all "
          "copies of each layer; lifetime in pulses against the endurance):")
    _print_frame(pd.DataFrame(table))


def _print_pipeline(df: Any, clock_hz: float, meta: dict) -> None:
    """ReRAM: the forward pass layer by layer against the inter-layer pipeline (slowest stage); a
    reprogrammed chip (weights written in turns) has no pipeline: what its programmings cost."""
    fwd = df[df["pass"] == "forward"]
    if fwd.empty:
        return
    per_it = fwd.groupby("iteration")["cycles"]
    if meta.get("reram_weight_residency") == "reprogram":
        its = df["iteration"].nunique()
        cyc, pj = df["reram_reprogram_cycles"].sum() / its, df["reram_reprogram_energy_pj"].sum() / its
        times = meta["reram_programmings_per_iteration"]
        print(f"the weights need {meta['reram_imas_used']:,} IMAs of the chip's {meta['reram_chip_imas']:,}: "
              f"written in turns, {meta['reram_programs']} programs, {times} programmings per iteration "
              f"({cyc:,.0f} cycles, {pj / 1e6:,.3f} µJ per iteration; no cell written more than {times} "
              f"times: {meta['reram_reprogram_lifetime_iterations']:,.4g} iterations to the endurance); "
              f"forward "
              f"{per_it.sum().mean():,.0f} cycles, layer by layer (no inter-layer pipeline)")
        return
    worst = fwd.loc[fwd["cycles"].idxmax()]
    copies = worst.get("reram_replicas")  # NaN or absent: a layer on the digital unit (a matmul)
    where = f"{int(copies)} copies" if copies is not None and copies == copies else "digital unit"
    print(f"forward, per iteration: {per_it.sum().mean():,.0f} cycles layer by layer; pipelined, the slowest "
          f"stage ({worst['layer']}, {where}) sets the rate: "
          f"{per_it.max().mean():,.0f} cycles = {per_it.max().mean() / clock_hz * 1e6:,.2f} µs per batch")
