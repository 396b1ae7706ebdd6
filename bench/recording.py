"""Recording overhead: a plain training step against the same step recorded into a trace.

For VGG-8 and the small ResNet (synthetic-cifar, 3×32×32) and the MLP (digits, 64 features),
batch 64, SGD with momentum: recording exact masks every step, every 10 steps, and counts only.
Each measurement runs in fresh processes with 2 BLAS/OpenMP threads; inside a process, a block of
``steps`` plain steps and a recorded block alternate (which goes first alternates too). A recorded
block is two whole recordings (open, the steps, close with the background writer drained) of
``steps`` and ``3·steps`` steps: their difference is the cost of ``2·steps`` recorded steps in a
running recording, and the rest of the short one is the recording's fixed cost (opening the trace,
closing it), reported on its own since it is paid once per recording, not per step. The ratio of
each adjacent pair is taken and the median over all pairs reported, so load from other jobs on the
machine hits both sides of a pair alike.

    python bench/recording.py            # prints a markdown table
    python bench/recording.py --out bench/recording.md
    python bench/recording.py --models mlp --modes "counts only"   # one row
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
THREADS = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
MODELS = {"vgg8": "synthetic-cifar", "resnet": "synthetic-cifar", "mlp": "digits"}
MODES = {  # recorder options per mode
    "every step": {"every": 1},
    "every 10 steps": {"every": 10},
    "counts only": {"every": 0, "first": False},
}
# Lower bounds, no recorder: the hooks a recorder needs to see every layer's tensors (a forward
# pre-hook that aliases the input and hooks its gradient, a forward hook that hooks the output's
# gradient), doing nothing; and the same hooks counting x, y, w, dx, dy and, after the step, dw
# exactly (traces.recording.nonzero.count_nonzero), with no bookkeeping and no writing.
FLOORS = ("floor: hooks", "floor: hooks + counts")
BATCH = 64


def child(task: dict) -> list[tuple[float, float, float]]:
    """In this (fresh) process: ``(plain_s, recorded_s, fixed_s)`` per pair of blocks: seconds per
    plain step, seconds per recorded step, and the recording's fixed cost (open and close)."""
    import shutil
    import tempfile

    import torch
    import torch.nn.functional as F

    import traces
    from traces.zoo.datasets import load_dataset
    from traces.zoo.models import build_model, wants_image

    torch.set_num_threads(2)
    torch.manual_seed(0)
    data = load_dataset(MODELS[task["model"]], image=wants_image(task["model"]), seed=0)
    net = build_model(task["model"], data.input_shape, data.n_classes)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.from_numpy(data.x_train[:BATCH]), torch.from_numpy(data.y_train[:BATCH])
    steps, options = task["steps"], MODES.get(task["mode"], {})
    work = Path(tempfile.mkdtemp(prefix="hwsim-bench-recording-"))

    def step(rec: traces.Recorder | None) -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if rec is not None:
            rec.step(loss=loss.item())

    def plain() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step(None)
        return (time.perf_counter() - start) / steps

    def recording(n: int, count: int) -> float:
        """Wall seconds of one whole recording of ``count`` steps (open, steps, close)."""
        start = time.perf_counter()
        with traces.record(net, work / f"r{n}.trace", optimizer=opt, **options) as rec:
            for _ in range(count):
                step(rec)
        wall = time.perf_counter() - start
        shutil.rmtree(work / f"r{n}.trace")
        return wall

    def recorded(n: int) -> tuple[float, float]:
        """(seconds per recorded step, fixed seconds per recording) from a recording of ``steps``
        steps and one of ``3·steps``: the difference is ``2·steps`` recorded steps."""
        short, long = recording(2 * n, steps), recording(2 * n + 1, 3 * steps)
        per_step = (long - short) / (2 * steps)
        return per_step, short - steps * per_step

    if task["mode"] in FLOORS:
        recorded = _floor(net, step, steps, count=task["mode"] == FLOORS[1])
    try:
        plain()  # warm up: allocator, first-use costs, the recorder's imports and thread
        recorded(-1)
        pairs = []
        for i in range(task["pairs"]):
            if (i + task["order"]) % 2:
                r, p = recorded(i), plain()
            else:
                p, r = plain(), recorded(i)
            pairs.append((p, *r))
        return pairs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _floor(net, step, steps: int, count: bool):  # type: ignore[no-untyped-def]
    """A ``recorded(n)`` for a floor mode: ``(seconds per step, 0.0)`` over ``2·steps`` steps with
    the floor's hooks on ``net``'s Conv2d/Linear layers (removed after the block)."""
    from torch import nn

    from traces.recording.nonzero import count_nonzero

    counts: list[int] = []
    see = (lambda t: counts.append(count_nonzero(t))) if count else (lambda t: None)
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    def pre(module, args):  # type: ignore[no-untyped-def]
        x = args[0]
        see(x)
        if x.requires_grad:
            x = x.view_as(x)
            x.register_hook(see)
            return (x, *args[1:])
        return None

    def post(module, args, y):  # type: ignore[no-untyped-def]
        see(y)
        see(module.weight)
        y.register_hook(see)

    def recorded(n: int) -> tuple[float, float]:
        handles = [h for m in layers
                   for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
        try:
            start = time.perf_counter()
            for _ in range(2 * steps):
                step(None)
                for m in layers:
                    see(m.weight.grad)
                counts.clear()
            return (time.perf_counter() - start) / (2 * steps), 0.0
        finally:
            for h in handles:
                h.remove()
    return recorded


def _run_child(task: dict) -> list[tuple[float, float, float]]:
    env = {**os.environ, **THREADS}
    root = str(BENCH.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(task)], env=env, check=True,
                         capture_output=True, text=True, cwd=root)
    return [tuple(p) for p in json.loads(out.stdout.strip().splitlines()[-1])]


def measure_recording(processes: int = 2, pairs: int = 3, steps: int = 10,
                      models: tuple[str, ...] = tuple(MODELS),
                      modes: tuple[str, ...] = (*MODES, *FLOORS)) -> list[dict]:
    """Recording overhead per model and mode: one dict per row with ``model``, ``mode``,
    ``plain_ms`` and ``recorded_ms`` (medians, milliseconds per step), ``ratio`` (the median of
    the paired ratios recorded/plain), ``ratio_min``/``ratio_max`` and ``pairs`` (how many)."""
    import numpy as np

    rows = []
    for model in models:
        for mode in modes:
            got: list[tuple[float, float, float]] = []
            for proc in range(processes):
                got += _run_child({"model": model, "mode": mode, "steps": steps, "pairs": pairs,
                                   "order": proc})
            plain, rec, fixed = np.array(got).T
            ratios = rec / plain
            rows.append({"model": model, "mode": mode, "plain_ms": float(np.median(plain) * 1e3),
                         "recorded_ms": float(np.median(rec) * 1e3), "ratio": float(np.median(ratios)),
                         "ratio_min": float(ratios.min()), "ratio_max": float(ratios.max()),
                         "fixed_ms": float(np.median(fixed) * 1e3), "pairs": len(got)})
            print(f"{model} {mode}: {rows[-1]['ratio']:.2f}x", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = ["| model | recording | plain step (ms) | recorded step (ms) | ratio (median of pairs) "
             "| ratio range | open + close (ms, once per recording) | pairs |",
             "|---|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['mode']} | {r['plain_ms']:.2f} | {r['recorded_ms']:.2f} | "
                     f"{r['ratio']:.2f}× | {r['ratio_min']:.2f}–{r['ratio_max']:.2f} | {r['fixed_ms']:.1f} "
                     f"| {r['pairs']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(json.loads(argv[1]))))
        return 0
    import argparse

    p = argparse.ArgumentParser(description="Recording overhead: plain training steps against recorded ones, "
                                "in fresh processes, as a markdown table (minutes per model and mode).")
    p.add_argument("--out", type=Path, help="also write the table to this file")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    p.add_argument("--modes", default=",".join((*MODES, *FLOORS)),
                   help=f"comma-separated, from {', '.join((*MODES, *FLOORS))}")
    p.add_argument("--processes", type=int, default=2, help="fresh processes per row (default 2)")
    p.add_argument("--pairs", type=int, default=3, help="plain/recorded block pairs per process (default 3)")
    args = p.parse_args(argv)
    models, modes = tuple(args.models.split(",")), tuple(args.modes.split(","))
    for name, given, known in (("--models", models, MODELS), ("--modes", modes, (*MODES, *FLOORS))):
        unknown = [x for x in given if x not in known]
        if unknown:
            p.error(f"{name}: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(known)}")
    text = table(measure_recording(args.processes, args.pairs, models=models, modes=modes))
    print(text)
    if args.out:
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
