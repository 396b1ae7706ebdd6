"""`hwsim demo`: the main job — train with sparse methods, replay on the presets, write a report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import _bar, check_output


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job: train with sparse methods, replay on the machine presets",
                       description="Train a small conv net (LeNet-5 on the built-in digits) densely and with "
                                   "the sparse methods, and a small GPT-like model on Shakespeare densely, "
                                   "with 2:4 linears and with top-k attention, while recording traces, "
                                   "replay every trace on the "
                                   "machine presets, and write results.parquet, report.html and a summary "
                                   "that leads with each method against dense training on each machine.")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory (default: out/demo)")
    p.add_argument("--quick", action="store_true", help="a tiny budget (seconds), for tests")
    p.set_defaults(func=cmd_demo)


# Dense first: it is what every method is compared with.
# DST's α at the paper's scale (5e-4): larger ones (1e-3, the default 5e-3) collapse LeNet-5 on digits
# (8 % and 41 % test accuracy after 10 epochs, against 95 % dense).
DEMO_METHODS = (("dense", {}), ("dst", {"alpha": 5e-4}), ("dsg", {"gamma": 0.8}), ("nm", {}))
DEMO_MODEL, DEMO_DATASET = "lenet5", "digits"
# The transformer example: the GPT-like model on Shakespeare, dense, 2:4 linears and top-k attention,
# a short AdamW run (60 steps of 32 windows; masks every 20 steps, the last two replayed).
TRANSFORMER_METHODS = (("dense", {}), ("nm", {}), ("attn-topk", {"k": 8}))
TRANSFORMER_MODEL, TRANSFORMER_DATASET = "gpt-tiny", "shakespeare"
TRANSFORMER_STEPS = (60, 20)  # (steps, mask every)
# Real machines of each simulated family (the single-PE eyeriss-v2-pe is a validation fixture).
DEMO_ARCHS = ("edge-npu", "gpu-a100", "reram-isaac")


def _train_and_replay(args: argparse.Namespace, model: str, dataset: str, methods: Any, picks_max: int,
                      **train_kwargs: Any) -> tuple[list[Any], dict[str, float]]:
    """Train ``model`` on ``dataset`` with each method while recording, replay up to ``picks_max``
    of each trace's mask iterations (spread over the run) on every ``DEMO_ARCHS`` machine."""
    import traces
    from hwsim.simulate import simulate
    from traces.training import train

    frames, accuracy = [], {}
    for method, params in methods:
        path = args.out / f"{method}-{model}-{dataset}.trace"
        bar = _bar(0, f"train {model} {method}")
        result = train(method=method, model=model, dataset=dataset, out=path, overwrite=True,
                       method_params=params, **train_kwargs,
                       progress=lambda info, b=bar: (b.__setattr__("total", info["total"]), b.update(1)))
        bar.close()
        accuracy[method] = result.test_accuracy
        tr = traces.load(path)
        masks = tr.mask_iterations
        picks = masks if len(masks) <= picks_max else \
            [masks[round(i * (len(masks) - 1) / (picks_max - 1))] for i in range(picks_max)]
        for arch in DEMO_ARCHS:
            bar = _bar(len(picks) * len(tr.layers), f"replay {model} {method} on {arch}")
            report = simulate(tr, arch, iterations=picks, progress=lambda d, t, b=bar: b.update(1))
            bar.close()
            frames.append(report.to_frame(meta=True).assign(test_accuracy=result.test_accuracy))
    return frames, accuracy


def cmd_demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from analysis.frames import versus_dense_training
    from analysis.html import write_report
    from hwsim.report import write_frame

    check_output(args.out, "--out", directory=True)  # before minutes of training, not after
    epochs, every = (1, 11) if args.quick else (10, 44)
    frames, accuracy = _train_and_replay(args, DEMO_MODEL, DEMO_DATASET, DEMO_METHODS, 4, epochs=epochs,
                                         every=every)
    steps, every = (3, 1) if args.quick else TRANSFORMER_STEPS
    t_frames, t_accuracy = _train_and_replay(
        args, TRANSFORMER_MODEL, TRANSFORMER_DATASET, TRANSFORMER_METHODS, 2, epochs=1, every=every,
        max_batches=steps, batch_size=32, optimizer="adamw", lr=3e-3, test_samples=2048)
    results = pd.concat(frames + t_frames, ignore_index=True)
    out = write_frame(results, args.out / "results.parquet")  # outputs first, then the summaries
    report = write_report(results, args.out / "report.html",
                          title=f"hwsim demo: dense and sparse training of {DEMO_MODEL} on {DEMO_DATASET} "
                                f"and of {TRANSFORMER_MODEL} on {TRANSFORMER_DATASET}, replayed on "
                                f"{', '.join(DEMO_ARCHS)}")
    v = versus_dense_training(results)
    text = summary_text(v[v["model"] == DEMO_MODEL], accuracy) + (
        f"\nTransformer example: {TRANSFORMER_MODEL} (4 layers, causal attention, tied embeddings) on "
        f"{TRANSFORMER_DATASET} (character level), {steps} AdamW steps; accuracy is next-character "
        "accuracy; attn-topk keeps 8 attention scores per query\n"
        + summary_text(v[v["model"] == TRANSFORMER_MODEL], t_accuracy)) + (
        f"\nresults: {out}  ({len(results)} rows: iteration × layer × pass × machine × method)\n"
        f"report:  {report}  (open it in a browser; it works offline)\n")
    (args.out / "summary.txt").write_text(text, encoding="utf-8")  # what README's excerpt is made from
    print(text, end="")
    return 0


def summary_text(v: Any, accuracy: dict[str, float]) -> str:
    """The demo's two tables: each method against dense training on each machine, then the
    feature-only speedup. ``v``: ``analysis.frames.versus_dense_training`` of the results."""
    import pandas as pd

    def table(columns: dict[str, Any]) -> str:
        df = pd.DataFrame({"method": v["method"], "machine": v["arch"], **columns})
        df = df.set_index(["method", "machine"])
        with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
            return df.to_string() + "\n"

    versus = table({
        "test accuracy": v["method"].map(accuracy).map(lambda x: f"{x:.3f}"),
        "cycles": v["cycles"].map(lambda x: f"{x:,.0f}"),
        "vs dense training": v["speedup_vs_dense_training"].map(lambda x: f"{x:.3f}x"),
        "energy vs dense": v["energy_saving_vs_dense_training"].map(lambda x: f"{x:.3f}x"),
        "off-chip bytes vs dense": v["offchip_saving_vs_dense_training"].map(lambda x: f"{x:.3f}x"),
        "non-GEMM work vs dense": v["vector_ops_vs_dense_training"].map(lambda x: f"{x:.2f}x"),
    })
    features = table({"speedup": v["feature_speedup"].map(lambda x: f"{x:.3f}x")})
    return ("\nWhat each method buys against dense training on the same machine (per training iteration, "
            "the method's own work included; above 1x = cheaper)\n" + versus
            + "\nThe same trace with the machine's sparse features off (feature-only speedup; this baseline "
              "carries the method's own work too)\n" + features)
