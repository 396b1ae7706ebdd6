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

USER_ERRORS = (ConfigError, TraceFormatError, RecorderError, FileExistsError, FileNotFoundError,
               ValueError)  # MappingError is a ValueError


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="it", disable=None, file=sys.stderr, leave=False)


def _print_frame(df: Any) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
        print(df.to_string())


# -- train ------------------------------------------------------------------------------------------

def add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a built-in model with a sparse method, recording a trace",
                       description="Train a built-in model on built-in data while recording a trace.")
    p.add_argument("--method", default="dense", choices=["dense", "dsg", "dst", "mlevel"],
                   help="training method (default: dense)")
    p.add_argument("--model", default="mlp",
                   help="built-in model: mlp, lenet5, vgg8, resnet (default: mlp)")
    p.add_argument("--dataset", default="digits", help="built-in dataset: digits, synthetic-cifar "
                   "(default: digits)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per iteration (default: 64)")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (default: 0.1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--every", type=int, default=10,
                   help="exact masks every N iterations, plus first/last of each epoch (default: 10)")
    p.add_argument("--mask-samples", type=int, default=None,
                   help="store activation/gradient masks for the first B samples only")
    p.add_argument("--lr-milestones", default="", help="epochs at which the lr drops 10x, e.g. 40,60")
    p.add_argument("--out", required=True, type=Path, help="trace directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing trace at --out")
    g = p.add_argument_group("DSG (--method dsg)")
    g.add_argument("--gamma", type=float, help="fraction of outputs dropped per row (default 0.8)")
    g.add_argument("--eps", type=float, help="JL distortion; sets the projection size k (default 0.3)")
    g.add_argument("--selection", choices=["drs", "oracle", "random"],
                   help="how outputs are chosen (default drs)")
    g.add_argument("--share-threshold", action="store_true", default=None,
                   help="one batch-shared top-k threshold (kept counts become approximate)")
    g = p.add_argument_group("DST (--method dst)")
    g.add_argument("--alpha", type=float, help="threshold regularizer weight (default: 5e-3 on digits, "
                   "5e-5 on synthetic-cifar; the papers' values scaled for small data)")
    g.add_argument("--no-collapse-reset", dest="collapse_reset", action="store_false", default=None,
                   help="do not reset the thresholds of a layer that keeps <= 1%% of its weights")
    g = p.add_argument_group("multi-level (--method mlevel)")
    g.add_argument("--levels", help="weight density per level, sparsest first (default 0.05,0.15)")
    p.set_defaults(func=cmd_train)


def _method_params(args: argparse.Namespace) -> dict[str, Any]:
    keys = {"dsg": ("gamma", "eps", "selection", "share_threshold"), "dst": ("alpha", "collapse_reset"),
            "mlevel": ("levels",), "dense": ()}[args.method]
    given = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    other = [k for ks in (("gamma", "eps", "selection", "share_threshold"), ("alpha", "collapse_reset"),
                          ("levels",)) for k in ks if k not in keys and getattr(args, k) is not None]
    if other:
        raise ValueError(f"--{other[0].replace('_', '-')} does not apply to --method {args.method}")
    if "levels" in given:
        try:
            given["levels"] = tuple(float(v) for v in given["levels"].split(","))
        except ValueError:
            raise ValueError(f"--levels: expected densities like 0.05,0.15, "
                             f"got {given['levels']!r}") from None
    return given


def cmd_train(args: argparse.Namespace) -> int:
    from traces.training import train

    bar = None

    def progress(info: dict[str, Any]) -> None:
        nonlocal bar
        if bar is None:
            bar = _bar(info["total"], f"train {args.model}/{args.method}")
        post = {"epoch": info["epoch"], "loss": f"{info['loss']:.3f}", "acc": f"{info['accuracy']:.2f}"}
        if info.get("density") is not None:
            post["density"] = f"{info['density']:.3f}"
        if info.get("phase") not in (None, "train"):
            post["phase"] = info["phase"]
        bar.set_postfix(post, refresh=False)
        bar.update(1)

    try:
        milestones = tuple(int(v) for v in args.lr_milestones.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--lr-milestones: expected epochs like 40,60, got {args.lr_milestones!r}") from None
    params = _method_params(args)
    try:
        result = train(model=args.model, dataset=args.dataset, method=args.method, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, seed=args.seed, out=args.out,
                       every=args.every, mask_samples=args.mask_samples, overwrite=args.overwrite,
                       lr_milestones=milestones, method_params=params, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    print(f"trained {args.model} with {args.method} on {args.dataset}: {result.iterations} iterations, "
          f"final loss {result.final_loss:.4f}, test accuracy {result.test_accuracy:.3f}")
    for row in result.evaluation.get("levels", []):
        print(f"  level {row['level']} (density {row['density']}): accuracy {row['accuracy']:.3f}")
    print(f"trace written to {result.trace}")
    return 0


# -- trace info / validate ----------------------------------------------------------------------------

def add_trace(sub: Any) -> None:
    p = sub.add_parser("trace", help="inspect and check traces",
                       description="Inspect and check recorded traces.")
    tsub = p.add_subparsers(dest="trace_command", metavar="COMMAND", required=True)
    info = tsub.add_parser("info", help="layers, iterations and densities of a trace")
    info.add_argument("path", type=Path, help="trace directory")
    info.add_argument("--no-macs", action="store_true", help="skip the effectual-MAC table")
    info.set_defaults(func=cmd_trace_info)
    syn = tsub.add_parser("synth", help="a synthetic trace from a layer table or SCALE-Sim topology",
                          description="Write a trace whose masks are drawn at given densities, without "
                                      "training (e.g. 'ResNet-50 at 80%% activation sparsity').")
    src = syn.add_mutually_exclusive_group(required=True)
    src.add_argument("--layers", type=Path, help="CSV: name, conv2d, C, H, W, K, kernel, stride, padding, "
                     "groups  |  name, linear, in, out")
    src.add_argument("--scalesim-topology", type=Path, help="a SCALE-Sim topology CSV (conv or GEMM rows)")
    syn.add_argument("--density", default="", help="e.g. x=0.2,w=0.5,dy=0.3 or one number for x and dy "
                     "(default: dense)")
    syn.add_argument("--per-channel", action="store_true", help="draw one density per channel around it")
    syn.add_argument("--batch", type=int, default=1, help="samples per iteration (default: 1)")
    syn.add_argument("--iterations", type=int, default=1, help="iterations (default: 1)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--out", required=True, type=Path, help="trace directory to write")
    syn.add_argument("--overwrite", action="store_true")
    syn.set_defaults(func=cmd_trace_synth)
    stats = tsub.add_parser("stats", help="the method paper's own accounting (MACs, memory, densities)")
    stats.add_argument("path", type=Path, help="trace directory")
    stats.add_argument("--csv", type=Path, help="also write the full per-iteration table(s) here")
    stats.set_defaults(func=cmd_trace_stats)
    val = tsub.add_parser("validate", help="check every file, mask and count of a trace")
    val.add_argument("path", type=Path, help="trace directory")
    val.set_defaults(func=cmd_trace_validate)


def describe(trace: Any) -> list[str]:
    """Header lines that say what a trace is."""
    m = trace.manifest
    model, method, data = m["model"], m["method"], m["dataset"]
    opt = m.get("optimizer")
    lines = [
        f"trace      {trace.path}  (format {m['format_version']}, "
        f"{'complete' if trace.complete else 'INCOMPLETE: recording did not finish'})",
        f"model      {model.get('name')} ({model.get('class', '?')}, "
        f"{model.get('parameters', '?')} parameters)",
        f"method     {method.get('name')} {method.get('params') or ''}".rstrip(),
        f"dataset    {data.get('name')}  seed {m.get('seed')}  batch {m.get('batch_size')}",
    ]
    if opt:
        params = " ".join(f"{k}={v}" for k, v in opt["params"].items() if k in ("lr", "momentum",
                                                                                 "weight_decay", "betas"))
        lines.append(f"optimizer  {opt['name']} {params}  state {opt.get('state_dtypes') or {}}")
    samples = m["schedule"].get("mask_samples")
    lines.append(f"iterations {len(trace)} ({len(trace.mask_iterations)} with exact masks"
                 f"{f', first {samples} samples' if samples else ''})")
    return lines


def cmd_trace_info(args: argparse.Namespace) -> int:
    import traces
    from traces import summary

    tr = traces.load(args.path)
    print("\n".join(describe(tr)))
    print("\nLayers (GEMM dims for the manifest batch size)")
    _print_frame(summary.layer_table(tr))
    if len(tr):
        print("\nDensity per tensor: mean over all iterations (min–max)")
        _print_frame(summary.density_table(tr))
    if not args.no_macs and tr.mask_iterations:
        macs = summary.mac_table(tr)
        print(f"\nEffectual / algorithmic MACs per pass, iteration {int(macs['iteration'].iloc[0])} "
              f"({int(macs['batch'].iloc[0])} samples)")
        frac = macs.pivot(index="layer", columns="pass", values="effectual_fraction")
        frac = frac.reindex(index=[s.name for s in tr.layers],
                            columns=[p for p in summary.SHORT if p in frac.columns])
        _print_frame(frac.rename(columns=summary.SHORT).map(lambda v: f"{v:.3f}"))
    return 0


def parse_density(text: str) -> dict[str, float]:
    """``x=0.2,w=0.5`` or a single number (activations and gradients)."""
    text = text.strip()
    if not text:
        return {}
    try:
        if "=" not in text:
            d = float(text)
            return {"x": d, "dy": d}
        return {k.strip(): float(v) for k, v in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise ValueError(f"--density: expected e.g. x=0.2,w=0.5,dy=0.3 or 0.2, got {text!r}") from None


def cmd_trace_synth(args: argparse.Namespace) -> int:
    from traces.synth import read_layer_table, read_scalesim_topology, write_synthetic

    layers = read_scalesim_topology(args.scalesim_topology) if args.scalesim_topology else \
        read_layer_table(args.layers)
    if not layers:
        raise ValueError("the layer file lists no layers")
    path = write_synthetic(layers, args.out, batch=args.batch, density=parse_density(args.density),
                           per_channel=args.per_channel, iterations=args.iterations, seed=args.seed,
                           overwrite=args.overwrite)
    print(f"synthetic trace with {len(layers)} layers, {args.iterations} iteration(s) written to {path}")
    return 0


def cmd_trace_stats(args: argparse.Namespace) -> int:
    import traces
    from traces.paper_stats import paper_stats

    tr = traces.load(args.path)
    print("\n".join(describe(tr)))
    tables = paper_stats(tr)
    if not tables:
        print("\nno paper accounting for method 'dense'; see `hwsim trace info` for densities and MACs")
        return 0
    for name, df in tables.items():
        if name == "dsg":
            print("\nDSG accounting (arXiv 1810.00859): mean over all iterations; weight gradient dense "
                  "as in the paper, sparse alternative over mask iterations")
            cols = ["training_mac_reduction", "inference_mac_reduction", "training_memory_reduction",
                    "activation_memory_reduction", "inference_memory_reduction"]
            cols += [c for c in ("training_mac_reduction_sparse_wgrad",) if c in df]
            _print_frame(df[cols].mean().to_frame("mean").map(lambda v: f"{v:.3f}x"))
        elif name == "dst":
            print("\nDST remaining-weight ratio (arXiv 2005.06870): first, middle and last iterations")
            picks = sorted({0, len(df) // 2, len(df) - 1})
            _print_frame(df.iloc[picks].set_index("iteration").map(lambda v: f"{v:.4f}"))
        else:
            print(f"\nmulti-level {name} (arXiv 2112.10930)")
            _print_frame(df)
        if args.csv:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            path = args.csv if len(tables) == 1 else args.csv.with_name(f"{args.csv.stem}-{name}.csv")
            df.to_csv(path, index=False)
            print(f"wrote {path}")
    return 0


def cmd_trace_validate(args: argparse.Namespace) -> int:
    import traces
    from traces.validate import validate

    tr = traces.load(args.path)
    bar = _bar(len(tr), "validate")
    try:
        s = validate(tr, progress=lambda n, total: bar.update(1))
    finally:
        bar.close()
    state = "complete" if s.complete else "incomplete (recording did not finish; all files read)"
    print(f"OK {tr.path}: {s.layers} layers, {s.iterations} iterations, "
          f"{s.mask_iterations} with masks, {state}")
    return 0


# -- replay -----------------------------------------------------------------------------------------

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
        passes.append(PASS_NAMES[name])
    try:
        its = [int(v) for v in args.iterations.split(",")] if args.iterations else None
    except ValueError:
        raise ValueError(f"--iterations: expected numbers like 0,10,20, got {args.iterations!r}") from None
    if args.out is not None and args.out.suffix not in (".parquet", ".csv"):
        raise ValueError(f"--out {args.out}: use a .parquet or .csv file name")
    tr = traces.load(args.trace)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _bar(total, "replay")
        bar.update(1)

    try:
        report = simulate(tr, args.arch, dataflow=args.dataflow, passes=passes, iterations=its,
                          backend=args.backend, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    print_summary(report)
    if args.out is not None:
        print(f"results written to {report.save(args.out)}")
    return 0


def print_summary(report: Any) -> None:
    """Per pass and total: cycles, speedup, energy, energy saving, DRAM traffic."""
    m = report.meta
    s = report.summary()
    iters = report.to_frame()["iteration"].nunique()
    print(f"{m['trace']} on {m['arch']} ({m['dataflow']}, {m['backend']} timing), {iters} iteration(s) "
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
    t = report.totals()
    n = t.attrs["iterations_in_run"]
    cyc = t.loc["cycles"]
    print(f"whole run ({n} iterations, extrapolated from {t.attrs['iterations_recorded']}): "
          f"{cyc['run_estimate']:,.0f} cycles = {cyc['run_estimate'] / m['clock_hz'] * 1e3:,.3f} ms "
          f"(per iteration {cyc['per_iteration_mean']:,.0f} ± {cyc['per_iteration_std']:,.0f}), "
          f"speedup {t.loc['dense_cycles', 'run_estimate'] / cyc['run_estimate']:.3f}x")


# -- archs ------------------------------------------------------------------------------------------

def add_archs(sub: Any) -> None:
    p = sub.add_parser("archs", help="list, show and validate architecture descriptions",
                       description="Architecture presets and YAML descriptions (see docs/architectures.md).")
    asub = p.add_subparsers(dest="archs_command", metavar="COMMAND", required=True)
    asub.add_parser("list", help="the presets").set_defaults(func=cmd_archs_list)
    show = asub.add_parser("show", help="components, peak figures and energy table")
    show.add_argument("arch", help="preset name, YAML file or SCALE-Sim .cfg")
    show.add_argument("--yaml", action="store_true", help="print the full description as YAML instead")
    show.set_defaults(func=cmd_archs_show)
    val = asub.add_parser("validate", help="check a YAML description (every problem, with its path)")
    val.add_argument("file", type=Path, help="YAML file or SCALE-Sim .cfg")
    val.set_defaults(func=cmd_archs_validate)


def cmd_archs_list(args: argparse.Namespace) -> int:
    import pandas as pd

    import archs

    rows = [{"name": n, "family": a.family, "peak TOPS": f"{archs.peak_ops_per_s(a) / 1e12:.4g}",
             "clock": _si(a.clock_hz, "Hz"), "description": a.description.split(":")[0].split(" (")[0]}
            for n, a in archs.PRESETS.items()]
    _print_frame(pd.DataFrame(rows).set_index("name"))
    return 0


def cmd_archs_show(args: argparse.Namespace) -> int:
    import archs
    from archs import derived

    a = archs.load(args.arch)
    if args.yaml:
        print(archs.dump(a), end="")
        return 0
    import pandas as pd

    print(f"{a.name}  ({a.family}, {_si(a.clock_hz, 'Hz')}, {a.tech_nm} nm)\n{a.description}\n")
    print("Components")
    _print_frame(pd.DataFrame(_component_rows(a)).set_index("component"))
    print("\nPeak figures (derived from the fields)")
    for key, value in derived.summary(a).items():
        print(f"  {key:34s} {value:.6g}")
    print("\nEnergy per action")
    table = pd.DataFrame([vars(e) for e in archs.energy_table(a)])
    _print_frame(table.rename(columns={"energy_pj": "pJ"}).set_index(["component", "action"]))
    feats = a.sparse
    print("\nSparse acceleration features")
    lines = [f"  format {f.format} for {f.operand} at {f.level} ({f.metadata_bits}-bit metadata)"
             for f in feats.formats]
    lines += [f"  {x.kind} of {x.target} at {x.level} on zero {'/'.join(x.condition_on)}"
              for x in feats.actions]
    if feats.structured:
        s = feats.structured
        lines.append(f"  {s.n}:{s.m} structured on {s.operand}: {s.math_speedup}x math, "
                     f"{s.metadata_bits_per_nonzero}-bit metadata per non-zero")
    skips = ("skip_zero_input_rows", "skip_zero_weight_columns", "skip_zero_crossbars")
    lines += [f"  skip all-zero {k.removeprefix('skip_zero_').replace('_', ' ')}"
              for k in skips if getattr(feats, k)]
    print("\n".join(lines) or "  none (a dense machine)")
    return 0


def _component_rows(a: Any) -> list[dict[str, str]]:
    rows = []
    if a.compute is not None:
        c = a.compute
        rows.append({"component": "compute", "what": f"{c.rows}×{c.cols} {c.microarchitecture}, "
                     f"{c.dataflow}, "
                     f"{c.macs_per_pe_per_cycle} MAC/PE/cycle, {c.precision.activation_bits}/"
                     f"{c.precision.weight_bits}-bit act/weight"})
    if a.gpu is not None:
        g = a.gpu
        rows.append({"component": "gpu", "what": f"{g.sms} SMs × {g.tensor_cores_per_sm} tensor cores × "
                     f"{g.tensor_core.fma_per_cycle} FMA/clock; thread block {g.threadblock_m}×"
                     f"{g.threadblock_n}×{g.threadblock_k}"})
    if a.reram is not None:
        r = a.reram
        rows.append({"component": "reram", "what": f"{r.tiles} tiles × {r.imas_per_tile} IMAs × "
                     f"{r.crossbars_per_ima} crossbars {r.crossbar.rows}×{r.crossbar.cols}, "
                     f"{r.crossbar.bits_per_cell} b/cell, {r.adcs_per_ima} {r.adc.bits}-bit ADCs per IMA"})
    v = a.vector_unit
    rows.append({"component": "vector_unit", "what": f"{v.lanes} lanes"})
    for m in a.memories:
        size = "unbounded" if m.capacity_bytes == 0 else _si(m.capacity_bytes, "B", 1024)
        bw = "unlimited" if m.bandwidth_bytes_per_s == 0 else _si(m.bandwidth_bytes_per_s, "B/s")
        rows.append({"component": m.name, "what": f"{m.kind} {size} × {m.instances}, {bw}, "
                     f"operands {','.join(m.operands)}{', double-buffered' if m.double_buffered else ''}"})
    for ln in a.links:
        bw = "unlimited" if ln.bandwidth_bytes_per_s == 0 else _si(ln.bandwidth_bytes_per_s, "B/s")
        rows.append({"component": ln.name, "what": f"link {ln.source} → {ln.destination}, {bw}"})
    return rows


def _si(value: float, unit: str, base: int = 1000) -> str:
    prefixes = ["", "K", "M", "G", "T", "P"] if base == 1000 else ["", "Ki", "Mi", "Gi", "Ti", "Pi"]
    i = 0
    while abs(value) >= base and i < len(prefixes) - 1:
        value /= base
        i += 1
    return f"{value:.4g} {prefixes[i]}{unit}"


def cmd_archs_validate(args: argparse.Namespace) -> int:
    import archs

    a = archs.load(args.file) if args.file.suffix == ".cfg" else archs.load_file(args.file)
    print(f"OK {args.file}: {a.name} ({a.family}), peak {archs.peak_ops_per_s(a) / 1e12:.4g} TOPS")
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
    print(f"\nresults: {out}  ({len(results)} rows: iteration × layer × pass × architecture × method)")
    return 0


# -- entry point ------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [add_demo, add_train, add_trace, add_replay, add_archs]


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
