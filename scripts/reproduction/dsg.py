"""DSG's op accounting: a trained run's costs in closed form (``dsg_costs``) and Fig. 7 from the
paper's own models' layer shapes, data-free (``dsg_fig7_lines``)."""

from __future__ import annotations

import math
from typing import Any


def dsg_costs(method: Any, model: Any, x: Any) -> dict[str, Any]:
    """DSG's op accounting in closed form from the layers' geometry, γ and k (one test batch).

    Forward of a selected layer ``rows·(kept·Kr + K·k)``; backward-data ``rows·kept·Kr`` (dY lies
    within the selection: an upper bound); weight gradient dense (the paper's convention).
    With overheads: plus the projection additions ``(rows + K)·Kr·k`` and the selection compares.
    """
    import torch

    from traces.stats.dsg_ops import projection_additions, selection_compares

    geometry: dict[str, tuple[int, int, int]] = {}
    hooks = []
    for b in model.blocks():
        def hook(mod, inp, out, name=b.name):
            k_out = out.shape[1]
            rows = out.numel() // k_out
            geometry[name] = (rows, mod.weight[0].numel(), k_out)
        hooks.append(b.gemm.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    dense_fwd = fwd = bwd_data = overhead = 0
    for name, (rows, kr, k_out) in geometry.items():
        dense = rows * kr * k_out
        dense_fwd += dense
        layer = method.layers.get(name)
        if layer is None:
            fwd += dense
            bwd_data += dense
            continue
        kept = math.ceil((1 - layer.gamma) * k_out - 1e-9)
        fwd += rows * (kept * kr + k_out * layer.proj_k)
        bwd_data += rows * kept * kr
        overhead += projection_additions(rows, k_out, kr, layer.proj_k)
        overhead += selection_compares(rows, k_out, kept, rows)
    train = fwd + bwd_data + dense_fwd
    recall = {n: layer.last_stats["recall_vs_oracle"] for n, layer in method.layers.items()}
    return {"inference_reduction": dense_fwd / fwd, "training_reduction": 3 * dense_fwd / train,
            "inference_reduction_with_overheads": dense_fwd / (fwd + overhead),
            "training_reduction_with_overheads": 3 * dense_fwd / (train + overhead),
            "recall_vs_oracle": recall, "proj_k": {n: layer.proj_k for n, layer in method.layers.items()}}


# DSG Fig. 7 as the paper's text states it (per-γ averages over its CNN benchmarks, and the
# abstract's maxima); the per-model bars are only in the figure's image, not readable as numbers
DSG_FIG7_TEXT = {0.5: (1.4, 1.5), 0.8: (1.7, 2.8), 0.9: (2.2, 3.9)}  # γ -> (training ×, inference ×)
DSG_FIG7_MAX = (2.3, 4.4)  # abstract: "operation reduction (2.3–4.4×)": training max, inference max
DSG_DRS_OVERHEAD_MAX = (0.065, 0.195)  # text: DRS overhead below 6.5 % (training), 19.5 % (inference)
# the GMACs the text prints in parentheses after each average (§3.4), γ -> (training, inference);
# read here as the average GMACs saved per sample (the text does not define them)
DSG_FIG7_SAVED_GMACS = {0.5: (5.52, 2.26), 0.8: (9.43, 4.22), 0.9: (10.74, 4.87)}


def dsg_fig7_lines() -> list[str]:
    """DSG Fig. 7 from layer shapes, γ and k, for the paper's own models (data-free)."""
    import statistics

    from traces.stats.dsg_ops import paper_models, reductions

    models = {n: layers for n, layers in paper_models().items() if "cifar100" not in n}
    lines = ["## DSG (arXiv 1810.00859) Fig. 7 from layer shapes, the paper's own models", "",
             "Data-free: op counts per sample from each model's layer shapes at its data set's geometry "
             "(CIFAR 32×32, ImageNet 224×224), γ and the projection dimension k at ε = 0.5, every CONV/FC "
             "layer but the classifier selected (traces/stats/dsg_ops.py). *Paper convention*: MACs only, "
             "forward `rows·(kept·Kr + K·k)`, backward-data over the kept outputs, weight gradient dense, "
             "projection additions left out. *With overheads*: plus the ternary projection's additions "
             "`(rows + K)·Kr·k` and the top-k compares, one op each. Two k rules, since the paper gives "
             "only `k = O(log N/ε²)`: **ln-d** `⌊ln(d+1)/ε²⌋` (the public re-implementation's constant; "
             "our training default) and **Achlioptas** `⌈4 ln(d+1)/(ε²/2 − ε³/3)⌉` (the bound of the "
             "paper's ternary projection). CIFAR-100 variants differ only in the classifier (within 0.1 %).",
             "", "| model | dense fwd GMACs | γ | ln-d: training × / inference × | ln-d: DRS % of dense fwd "
             "| Achlioptas: training × / inference × | Achlioptas: DRS % | Achlioptas with overheads: "
             "training × / inference × |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    means: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for name, layers in models.items():
        for gamma in (0.5, 0.8, 0.9):
            a = reductions(layers, gamma, 0.5, "ln-d")
            b = reductions(layers, gamma, 0.5, "achlioptas")
            means.setdefault(("ln-d", gamma), []).append((a["training"], a["inference"]))
            means.setdefault(("achlioptas", gamma), []).append((b["training"], b["inference"]))
            lines.append(f"| {name} | {a['dense_forward_macs'] / 1e9:.3f} | {gamma} "
                         f"| {a['training']:.2f} / {a['inference']:.2f} | {a['drs_overhead'] * 100:.1f} "
                         f"| {b['training']:.2f} / {b['inference']:.2f} | {b['drs_overhead'] * 100:.1f} "
                         f"| {b['training_with_overheads']:.2f} / {b['inference_with_overheads']:.2f} |")
    lines += ["", "Against the paper's text (values read: Fig. 7 averages training 1.4 / 1.7 / 2.2×, "
              "inference 1.5 / 2.8 / 3.9× at γ = 0.5 / 0.8 / 0.9; abstract maxima 2.3× training, "
              "4.4× inference; DRS overhead below 6.5 % of training and 19.5 % of inference operations). "
              "Mean over the seven models above, and the gap to the paper's average:", "",
              "| γ | paper: training × / inference × | ln-d mean | gap | Achlioptas mean | gap |",
              "| --- | --- | --- | --- | --- | --- |"]
    for gamma, (pt, pi) in DSG_FIG7_TEXT.items():
        cells = []
        for rule in ("ln-d", "achlioptas"):
            t = statistics.mean(v[0] for v in means[(rule, gamma)])
            i = statistics.mean(v[1] for v in means[(rule, gamma)])
            cells += [f"{t:.2f} / {i:.2f}", f"{(t / pt - 1) * 100:+.0f} % / {(i / pi - 1) * 100:+.0f} %"]
        lines.append(f"| {gamma} | {pt} / {pi} | " + " | ".join(cells) + " |")
    lines += ["", "The text also prints a GMACs figure after each average (training 5.52 / 9.43 / 10.74, "
              "inference 2.26 / 4.22 / 4.87 at γ = 0.5 / 0.8 / 0.9) without defining it. Read as the "
              "average GMACs saved per sample, each implies the dense cost of the figure's models, "
              "`saved / (1 − 1/×)`; ours is the mean over the seven models of `dense·(1 − 1/×)` (training "
              "dense = 3 × forward):", "",
              "| γ | paper saved: training / inference GMACs | implied dense: training / forward GMACs "
              "| ln-d mean saved | Achlioptas mean saved |", "| --- | --- | --- | --- | --- |"]
    implied = {}  # γ -> implied dense (training, forward) GMACs
    for gamma, (st, si) in DSG_FIG7_SAVED_GMACS.items():
        pt, pi = DSG_FIG7_TEXT[gamma]
        implied[gamma] = (st / (1 - 1 / pt), si / (1 - 1 / pi))
        cells = []
        for rule in ("ln-d", "achlioptas"):
            red = [reductions(layers, gamma, 0.5, rule) for layers in models.values()]
            t = statistics.mean(3 * r["dense_forward_macs"] * (1 - 1 / r["training"]) for r in red) / 1e9
            i = statistics.mean(r["dense_forward_macs"] * (1 - 1 / r["inference"]) for r in red) / 1e9
            cells.append(f"{t:.2f} / {i:.2f}")
        lines.append(f"| {gamma} | {st} / {si} | {implied[gamma][0]:.1f} / {implied[gamma][1]:.2f} | "
                     + " | ".join(cells) + " |")
    dense = {n: sum(g.macs for g in layers) / 1e9 for n, layers in models.items()}
    imagenet = [v for n, v in dense.items() if "imagenet" in n]
    fwd = [f for _, f in implied.values()]
    ratio = [t / f for t, f in implied.values()]
    lines += ["", f"The implied dense costs agree with each other (forward {min(fwd):.1f}–{max(fwd):.1f} "
              f"GMACs, training {min(ratio):.1f}–{max(ratio):.1f}× that, as a dense weight gradient makes "
              "it; the averages are printed to one decimal, so the training figures are loose) but not with "
              f"the seven models' mean dense forward of {statistics.mean(dense.values()):.2f} GMACs (the "
              f"three ImageNet models alone: {statistics.mean(imagenet):.2f}): the figure's average is "
              "weighted by, or restricted to, larger models than the seven, or the figures count something "
              "else (a mini-batch, the memory figure's five benchmarks); the text does not say which."]
    vgg = {g: reductions(models["vgg8 (cifar10)"], g, 0.5, "achlioptas") for g in (0.5, 0.8, 0.9)}
    lines += ["", "Reading: the per-model bars of Fig. 7 are in the figure's image only; no text we could "
              "reach states them. Searched on 7 Dec 2026: the ICLR submission's full main text (its §3.4 "
              "and the caption of Fig. 7, which name no per-model value), the camera-ready LaTeX of arXiv "
              "1810.00859v2 and the v1 preprint page (every query on the appendix, the projection dimension "
              "k, Fig. 7's caption, the model names, ImageNet and CIFAR returned only their introductions: "
              "the stored copies we can search hold no appendix text); the public re-implementation "
              "(inference only, an MNIST MLP) has no Fig. 7 counts. So the comparison is with the stated "
              "averages, maxima and GMACs above, and the acceptance check \"within 10 % of the bars\" "
              "cannot be made. With the ln-d k the DRS overhead is 2–12 % of the dense forward and the "
              "inference reductions at γ = 0.9 reach 4–8×, above the paper's 4.4× maximum: the paper's k "
              "must be larger. Its stated overhead ceilings (6.5 % training, 19.5 % inference) imply a DRS "
              "overhead of about 0.13–0.20 of the dense forward (inference `1/(1 − γ + o)` at γ = 0.9 "
              "between 3.4× and 4.4×). The Achlioptas k gives VGG-8 exactly such an overhead "
              f"({vgg[0.9]['drs_overhead'] * 100:.1f} % of its dense forward, "
              f"{vgg[0.9]['drs_overhead'] / 3 * 100:.1f} % of dense training) and VGG-8's reductions "
              + ", ".join(f"{vgg[g]['training']:.2f}× / {vgg[g]['inference']:.2f}× at γ = {g}" for g in vgg)
              + " against the paper's averages above; but on the small CIFAR ResNets (Kr of 144–576) it "
              "makes DRS cost more than the layer (inference below 1×), so the paper cannot have used it "
              "there with ε = 0.5. The main text gives k only as `O(log N/ε²)` and defers the rest to its "
              "appendix, which we could not read; neither rule here matches every stated number within "
              "10 %.", ""]
    return lines
