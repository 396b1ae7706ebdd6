"""DST's two MNIST LSTM rows (Table 1, arXiv 2005.06870) and their dense baselines.

    python scripts/dst_lstm.py --out docs/dst_lstm                  # `make dst-lstm` (budgeted)
    python scripts/dst_lstm.py --epochs 20 --out DIR                # the paper's 20 epochs
    python scripts/dst_lstm.py --smoke --out DIR                    # lstm-tiny, a few steps (tests)

The paper's setting (reference §2.4): MNIST read row by row (28 steps × 28 pixels), two LSTM
layers of hidden 128 (LSTM-a) or 256 (LSTM-b), Adam at lr 1e-3, batch 100, 20 epochs, α = 1e-4
(the official LSTM script's default), a threshold per hidden unit for each of the 8 gate matrices
(traces/zoo/recurrent.py). Inputs [0, 1] (``transforms.ToTensor()``, as the official MNIST code
feeds them). Writes ``dst_lstm.json`` (every epoch's test accuracy and remaining-weight ratio)
and ``dst_lstm.md`` (both pairings: remaining at the best epoch's accuracy, and the last epoch's)
to ``--out``. ``--epochs`` below 20 is a budget cut, stated in the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Table 1: (model, remaining % ± std, sparse accuracy % ± std, dense accuracy % ± std), 5 runs
PAPER = {"dst-lstm-a": (1.54, 0.04, 98.56, 0.06, 98.64, 0.12),
         "dst-lstm-b": (0.74, 0.02, 98.62, 0.12, 98.87, 0.07)}


def run(model: str, method: str, epochs: int, max_batches: int | None, test_samples: int | None,
        seed: int) -> dict[str, Any]:
    from traces.training import train

    r = train(model=model, dataset="mnist", method=method, epochs=epochs, batch_size=100, lr=1e-3,
              optimizer="adam", inputs="unit", seed=seed, max_batches=max_batches,
              test_samples=test_samples)
    hist = [{"epoch": h["epoch"], "test_accuracy": h["test_accuracy"],
             "remaining": h["density"] if method == "dst" else 1.0} for h in r.history]
    best = max(hist, key=lambda h: h["test_accuracy"])
    return {"model": model, "method": method, "epochs": epochs, "seed": seed, "iterations": r.iterations,
            "wall_s": round(r.wall_s, 1), "history": hist, "best_accuracy": best["test_accuracy"],
            "remaining_at_best": best["remaining"], "last_accuracy": hist[-1]["test_accuracy"],
            "remaining_last": hist[-1]["remaining"], "min_remaining": min(h["remaining"] for h in hist),
            "layer_densities": r.method.layer_densities() if method == "dst" else {}}


def table(rows: list[dict[str, Any]], epochs: int, max_batches: int | None = None) -> str:
    budget = f"{epochs} of the paper's 20 epochs" + ("" if max_batches is None else
                                                    f", {max_batches} of 600 steps per epoch")
    lines = [f"# DST's MNIST LSTM rows ({budget}: a budget cut)" if epochs < 20 or max_batches
             else "# DST's MNIST LSTM rows (the paper's 20 epochs)", "",
             "Written by `scripts/dst_lstm.py` (`make dst-lstm`). Paper: Table 1, mean ± std of 5 runs; "
             "ours: one seed. Remaining = non-zero weights over the masked layers (both LSTM layers' 8 "
             "gate matrices and the classifier), in %. *At best* pairs the best epoch's accuracy with "
             "that epoch's remaining ratio (what the official code logs); *last* is the last epoch's.", "",
             "| model | paper remaining | paper sparse acc | paper dense acc | "
             "ours remaining (at best / last) | ours DST acc (best / last) | ours dense acc (best) | "
             "epochs | wall |",
             "|---|---|---|---|---|---|---|---|---|"]
    dense = {r["model"]: r for r in rows if r["method"] == "dense"}
    for r in rows:
        if r["method"] != "dst":
            continue
        p = PAPER.get(r["model"], (float("nan"),) * 6)
        d = dense.get(r["model"])
        dense_acc = "—" if d is None else f"{100 * d['best_accuracy']:.2f}"
        lines.append(
            f"| {r['model']} | {p[0]} ± {p[1]} | {p[2]} ± {p[3]} | {p[4]} ± {p[5]} | "
            f"{100 * r['remaining_at_best']:.2f} / {100 * r['remaining_last']:.2f} | "
            f"{100 * r['best_accuracy']:.2f} / {100 * r['last_accuracy']:.2f} | "
            f"{dense_acc} | {r['epochs']} | {r['wall_s']:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=2,
                    help="epochs per run (paper: 20; default 2, a budget cut)")
    ap.add_argument("--models", default="dst-lstm-a,dst-lstm-b")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-batches", type=int, default=None,
                    help="cap the steps per epoch (a budget cut; the paper's epoch is 600 steps of 100)")
    ap.add_argument("--smoke", action="store_true", help="lstm-tiny, 3 steps per epoch, 200 test images")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    models = ["lstm-tiny"] if args.smoke else args.models.split(",")
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    for method in ("dst", "dense"):  # the DST rows first (a budget may cut the dense ones)
        for model in models:
            start = time.perf_counter()
            rows.append(run(model, method, args.epochs, 3 if args.smoke else args.max_batches,
                            200 if args.smoke else None, args.seed))
            print(f"{model} {method}: {rows[-1]['best_accuracy']:.4f} best, remaining "
                  f"{rows[-1]['remaining_at_best']:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
            (args.out / "dst_lstm.json").write_text(json.dumps(rows, indent=1) + "\n")
            (args.out / "dst_lstm.md").write_text(table(rows, args.epochs, args.max_batches))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
