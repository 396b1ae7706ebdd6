"""DST's α sweep (``--sweep``): the two pairings per run, the report against Table 1 and its SVG
figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .plans import DST_MNIST, PAPER, Run


def dst_pairings(accuracy: list[float], remaining: list[float]) -> dict[str, float]:
    """The two pairings DST's official MNIST trainer logs, from per-epoch test accuracy and
    remaining ratio: the remaining ratio at the best accuracy (first best epoch), and the lowest
    remaining ratio with that epoch's accuracy (first such epoch)."""
    best = max(range(len(accuracy)), key=lambda i: (accuracy[i], -i))
    low = min(range(len(remaining)), key=lambda i: (remaining[i], i))
    return {"remaining_at_best": remaining[best], "best_remaining": remaining[low],
            "accuracy_at_best_remaining": accuracy[low]}


def sweep_report(results: list[dict[str, Any]], runs: list[Run], wall_s: float, smoke: bool,
                 note: str = "") -> str:
    """The α sweep's report: both pairings per α against Table 1, and the per-epoch trajectory."""
    done = [x for x in results if not x.get("skipped")]
    lines = ["# DST α sweep on MNIST, bracketing Table 1", ""]
    if smoke:
        lines += ["**Smoke run: a few iterations per row; these numbers mean nothing.**", ""]
    if note:
        lines += [f"**This run:** {note}", ""]
    lines += [f"Written by `python scripts/reproduce.py --sweep` ({wall_s / 60:.1f} min wall, one torch "
              f"thread per run). {DST_MNIST}; inputs in [0, 1]; one seed per α. The paper's point is "
              "Table 1's mean ± std over 5 runs; *within 2σ* asks whether a pairing of ours falls in the "
              "paper's remaining ± 2σ at an accuracy within 0.3 points of the paper's.", ""]
    for row, name in (("dst-sweep-lenet300", "dst-lenet300"), ("dst-sweep-lenet5", "dst-lenet5")):
        mine = sorted((x for x in done if x["row"] == row), key=lambda x: x["alpha"])
        planned = [r for r in runs if r.row == row]
        if not planned:
            continue
        p = PAPER[name]
        lo, hi = p["remaining"][0] - 2 * p["remaining"][1], p["remaining"][0] + 2 * p["remaining"][1]
        lines += [f"## {planned[0].model} (Table 1: {p['remaining'][0]} ± {p['remaining'][1]} % remaining at "
                  f"{p['sparse'][0]} ± {p['sparse'][1]} % accuracy)", "",
                  "| α | epochs | remaining at best acc % | best acc % | lowest remaining % | acc there % "
                  "| last remaining % | last acc % | resets | within 2σ | wall |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for x in mine:
            pairs = ((x["remaining_at_best"], x["best_accuracy"]),
                     (x["best_remaining"], x["accuracy_at_best_remaining"]))
            hits = list(dict.fromkeys(f"{a * 100:.2f} % at {r * 100:.2f} %" for r, a in pairs  # one if equal
                                      if lo <= r * 100 <= hi and abs(a * 100 - p["sparse"][0]) <= 0.3))
            lines.append(f"| {x['alpha']:g} | {x['epochs_run']} of 20 | {x['remaining_at_best'] * 100:.2f} "
                         f"| {x['best_accuracy'] * 100:.2f} | {x['best_remaining'] * 100:.2f} "
                         f"| {x['accuracy_at_best_remaining'] * 100:.2f} | {x['remaining'] * 100:.2f} "
                         f"| {x['last_accuracy'] * 100:.2f} | {sum(x['resets'].values())} "
                         f"| {'yes: ' + '; '.join(hits) if hits else 'no'} | {x['wall_s'] / 60:.1f} min |")
        missing = [r.label for r in planned if r.label not in {x["label"] for x in mine}]
        if missing:
            lines += ["", "Not run within the budget: " + ", ".join(missing) + "."]
        lines += ["", f"Figure: [{row}.svg]({row}.svg) (accuracy against remaining, both pairings per α, "
                  "Table 1's point with ±2σ).", "", "Per epoch (remaining % → accuracy %):", ""]
        for x in mine:
            steps = zip(x["remaining_history"], x["history"], strict=True)
            text = ", ".join(f"{r * 100:.2f}→{a * 100:.2f}" for r, a in steps)
            lines.append(f"- α = {x['alpha']:g}: {text}")
        lines += ["", "After the last epoch, per layer (remaining %; threshold resets by the 1 % collapse "
                  "rule over the run):", ""]
        for x in mine:
            layers = ", ".join(f"{n} {v * 100:.2f} % ({x['resets'].get(n, 0)} resets)"
                               for n, v in x["layer_remaining"].items())
            lines.append(f"- α = {x['alpha']:g}: {layers}")
        lines.append("")
    return "\n".join(lines) + "\n"


def sweep_svg(results: list[dict[str, Any]], row: str, paper: str) -> str:
    """Accuracy against remaining ratio (log axis) for every α of ``row``: both pairings per α, and
    the paper's point with its ±2σ bars; a self-contained SVG (no plotting library)."""
    done = sorted((x for x in results if x["row"] == row and not x.get("skipped")), key=lambda x: x["alpha"])
    p = PAPER[paper]
    pts = [(x["remaining_at_best"] * 100, x["best_accuracy"] * 100, x["alpha"], "best acc") for x in done]
    pts += [(x["best_remaining"] * 100, x["accuracy_at_best_remaining"] * 100, x["alpha"], "lowest remaining")
            for x in done]
    (rm, rs), (am, as_) = p["remaining"], p["sparse"]
    xs = [v[0] for v in pts] + [rm - 2 * rs, rm + 2 * rs]
    ys = [v[1] for v in pts] + [am - 2 * as_, am + 2 * as_]
    lo_x, hi_x = math.log10(max(min(xs), 0.1)) - 0.1, math.log10(max(xs)) + 0.1
    lo_y, hi_y = min(ys) - 0.2, max(ys) + 0.2
    w, h, m = 520, 340, 50

    def px(v: float) -> float:
        return m + (math.log10(max(v, 0.1)) - lo_x) / (hi_x - lo_x) * (w - 2 * m)

    def py(v: float) -> float:
        return h - m - (v - lo_y) / (hi_y - lo_y) * (h - 2 * m)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
           'font-size="11">', f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>',
           f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>',
           f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">remaining weights % (log)</text>',
           f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">test accuracy %'
           '</text>', f'<text x="{m}" y="20">{paper}: DST α sweep (circles: at best accuracy; squares: '
           'lowest remaining; red: Table 1 ± 2σ)</text>']
    for tick in (0.5, 1, 2, 5, 10, 20, 50, 100):
        if lo_x <= math.log10(tick) <= hi_x:
            out.append(f'<text x="{px(tick):.1f}" y="{h - m + 14}" text-anchor="middle">{tick:g}</text>')
    for k in range(5):
        v = lo_y + (hi_y - lo_y) * k / 4
        out.append(f'<text x="{m - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    cx, cy = px(p["remaining"][0]), py(p["sparse"][0])
    x0, x1 = px(p["remaining"][0] - 2 * p["remaining"][1]), px(p["remaining"][0] + 2 * p["remaining"][1])
    y0, y1 = py(p["sparse"][0] - 2 * p["sparse"][1]), py(p["sparse"][0] + 2 * p["sparse"][1])
    out += [f'<line x1="{x0:.1f}" y1="{cy:.1f}" x2="{x1:.1f}" y2="{cy:.1f}" stroke="red"/>',
            f'<line x1="{cx:.1f}" y1="{y0:.1f}" x2="{cx:.1f}" y2="{y1:.1f}" stroke="red"/>',
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="red"/>']
    for x, y, a, kind in pts:
        if kind == "best acc":
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="none" stroke="navy"/>')
        else:
            out.append(f'<rect x="{px(x) - 4:.1f}" y="{py(y) - 4:.1f}" width="8" height="8" fill="none" '
                       'stroke="teal"/>')
        out.append(f'<text x="{px(x) + 6:.1f}" y="{py(y) - 5:.1f}">α={a:g}</text>')
    return "\n".join([*out, "</svg>"]) + "\n"


def write_svgs(results: list[dict[str, Any]], out: Path) -> None:
    """The sweep's figures, one per model that has finished runs."""
    for row, paper in (("dst-sweep-lenet300", "dst-lenet300"), ("dst-sweep-lenet5", "dst-lenet5")):
        if any(r["row"] == row and not r.get("skipped") for r in results):
            (out / f"{row}.svg").write_text(sweep_svg(results, row, paper))
