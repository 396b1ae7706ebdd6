"""Run NeuroSim V2.1 (training estimation) on VGG-8 and write its per-layer results as CSV.

Usage (NeuroSim is never part of this repository; fetch it beside the project, build it with
``make`` in ``Training_pytorch/NeuroSIM``, then)::

    python scripts/neurosim_v21_reference.py /path/to/DNN_NeuroSim_V2.1/Training_pytorch \
        tests/data/neurosim_v21

What it does, on CPU, without CIFAR files:

1. builds NeuroSim's own VGG-8 (``cifar.model``, WAGE quantizers, its ``Param.cpp`` device) with
   its training flags (5-bit weights in one 5-bit cell, 5-bit gradients, 8-bit activations,
   ``max_level`` 32, LTP/LTD non-linearity 1.75/1.46, cycle-to-cycle variation 0.003);
2. runs ONE training step exactly as its ``train.py`` does (momentum, ``QG`` with the non-linear
   update, ``W`` with the variation) on a seeded random batch of CIFAR shape;
3. takes the step's 5-bit weight codes before (``weightOld`` = weight + update, as ``train.py``
   does) and after, per layer, as a joint histogram of (code before, code after), codes clipped to
   ±15 (``update_hist.csv``: the traced update's statistics, small enough to commit);
4. draws each layer's update from that histogram with numpy's seeded generator
   (``synthesize_update``, which the hwsim test calls too, so both tools get the same cells),
   writes it as NeuroSim's weight files beside the first test image's activations (its own hooks)
   and runs ``NeuroSIM/main``;
5. writes ``layers.csv`` (NeuroSim's per-layer breakdown, its units and column names),
   ``floorplan.csv`` (its printed tiles, speed-up and utilization per layer) and ``params.csv`` (the
   parameter table both sides use).

The comparison uses NeuroSim's RRAM: set ``memcelltype = 2`` in ``NeuroSIM/Param.cpp`` before ``make``
(the released default, 3, is a FeFET, whose cell write energy is its polarization switching, not
V²/R·t; docs/reram.md). ``params.csv`` records the value the build used.

Run it under ``nice``: NeuroSim's C++ model takes minutes per layer on one core.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

# Param.cpp @18289cb defaults the C++ side uses (documented here, read back from the source below)
CODES = 15  # 5-bit weights: codes -15..15 in steps of 1/16 (WAGE Q and C at wl_weight = 5)
LAYERS = ("Conv0_", "Conv1_", "Conv3_", "Conv4_", "Conv6_", "Conv7_", "FC1_", "FC2_")


def synthesize_update(hist: np.ndarray, shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes before and after of a ``(rows, cols)`` weight matrix (NeuroSim's layout: rows = Kr inputs,
    cols = Kout), each cell an independent draw of a (before, after) pair from ``hist``
    ``(31, 31)`` counts indexed by ``code + 15``. int8 arrays."""
    p = hist.ravel().astype(np.float64)
    pick = np.random.default_rng(seed).choice(p.size, size=shape[0] * shape[1], p=p / p.sum())
    old = (pick // hist.shape[1] - CODES).astype(np.int8).reshape(shape)
    new = (pick % hist.shape[1] - CODES).astype(np.int8).reshape(shape)
    return old, new


def read_hist(path: Path) -> dict[str, np.ndarray]:
    """``update_hist.csv`` back as ``{layer: (31, 31) counts}``."""
    out: dict[str, np.ndarray] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            h = out.setdefault(row["layer"], np.zeros((2 * CODES + 1,) * 2, np.int64))
            h[int(row["code_before"]) + CODES, int(row["code_after"]) + CODES] = int(row["cells"])
    return out


def read_floorplan(stdout: str) -> list[dict[str, str]]:
    """NeuroSim's printed floorplan per layer: tiles, speed-up (its copies) and utilization."""
    sections = {"# of tile used for each layer": "tiles", "Speed-up of each layer": "speed_up",
                "Utilization of each layer": "utilization"}
    rows = [{"layer": name} for name in LAYERS]
    key = None
    for line in stdout.splitlines():
        s = line.strip()
        key = next((v for k, v in sections.items() if k in s), key if s.startswith("layer") else None)
        if key and s.startswith("layer") and ":" in s:
            i = int(s[len("layer"):s.index(":")]) - 1
            rows[i][key] = s.split(":")[1].strip()
    return rows


PARAM_FIELDS = ["memcelltype", "accesstype",
                "technode", "numRowSubArray", "numColSubArray", "cellBit", "maxNumLevelLTP",
                "maxNumLevelLTD", "writeVoltage", "writePulseWidth", "resistanceOn", "resistanceOff",
                "readVoltage", "readPulseWidth", "numColMuxed", "levelOutput", "batchSize", "numIteration",
                "clkFreq", "numRowSubArrayWG", "numColSubArrayWG", "algoWeightMax", "algoWeightMin",
                "accessVoltage", "resistanceAccess", "novelMapping", "pipeline", "speedUpDegree"]


def read_params(neurosim: Path) -> dict[str, str]:
    """The user-set fields of NeuroSim's ``Param.cpp`` (first assignment of each)."""
    out: dict[str, str] = {}
    for line in (neurosim / "NeuroSIM" / "Param.cpp").read_text().splitlines():
        s = line.strip()
        if s.startswith("//") or "=" not in s or (not s.endswith(";") and ";" not in s):
            continue
        name, _, rest = s.partition("=")
        name = name.strip()
        if name in PARAM_FIELDS and name not in out:
            out[name] = rest.split(";")[0].strip()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("neurosim", type=Path, help="DNN_NeuroSim_V2.1/Training_pytorch (NeuroSIM/main built)")
    ap.add_argument("out", type=Path, help="folder for layers.csv, update_hist.csv, params.csv")
    ap.add_argument("--batch", type=int, default=16, help="images in the traced training step")
    ap.add_argument("--seed", type=int, default=117)
    ap.add_argument("--stderr", type=Path,
                    help="also keep NeuroSim's stderr here (a build with print statements)")
    args = ap.parse_args()
    root = args.neurosim.resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    sys.path.insert(0, str(root))
    import torch
    from cifar import model as nsmodel  # NeuroSim's code, imported from its own checkout
    from modules.quantization_cpu_np_infer import QConv2d, QLinear
    from utee import hook, wage_quantizer, wage_util

    torch.manual_seed(args.seed)
    ns = argparse.Namespace(wl_weight=5, wl_grad=5, wl_activate=8, wl_error=8, inference=0, onoffratio=10,
                            cellBit=5, subArray=128, ADCprecision=5, vari=0, t=0, v=0, detect=0, target=0,
                            max_level=32, c2cVari=0.003, d2dVari=0.0, nonlinearityLTP=1.75,
                            nonlinearityLTD=1.46)
    net = nsmodel.cifar10(args=ns, logger=lambda *a: None)
    gamma, alpha, grad_scale = 0.9, 0.1, 1.0
    params = list(net.parameters())[::-1]
    alt = [wage_quantizer.GetParamA((torch.ones_like(p) * ns.nonlinearityLTP).numpy()) * ns.max_level
           for p in params]
    altd = [wage_quantizer.GetParamA((torch.ones_like(p) * ns.nonlinearityLTD).numpy()) * ns.max_level
            for p in params]
    opt = torch.optim.SGD(net.parameters(), lr=1)
    data = torch.rand(args.batch, 3, 32, 32) * 2 - 1
    target = torch.randint(0, 10, (args.batch,))
    net.train()
    opt.zero_grad()
    loss = wage_util.SSE(net(data), target)
    loss.backward()
    for j, p in enumerate(params):  # train.py's update, velocity starting at zero
        v = gamma * torch.zeros_like(p) + alpha * p.grad.data
        p.grad.data = wage_quantizer.QG(p.data, ns.wl_weight, v, ns.wl_grad, grad_scale,
                                        torch.from_numpy(alt[j]), torch.from_numpy(altd[j]),
                                        ns.max_level, ns.max_level)
    opt.step()
    for p in params:
        p.data = wage_quantizer.W(p.data, p.grad.data, ns.wl_weight, ns.c2cVari)
    layers = [m for m in list(net.features.modules()) + list(net.classifier.modules())
              if isinstance(m, (QConv2d, QLinear))]
    named = dict(net.named_parameters())
    rec = root / "layer_record"
    rec.mkdir(exist_ok=True)
    hists: dict[str, np.ndarray] = {}
    for m in layers:
        pname = next(k for k, v in named.items() if v is m.weight)
        old = m.weight.data + named[pname].grad.data
        codes = [np.clip(np.rint(wage_quantizer.Q(t, ns.wl_weight).numpy() * 16), -CODES, CODES)
                 .astype(np.int64) for t in (old, m.weight.data)]
        h = np.zeros((2 * CODES + 1,) * 2, np.int64)
        np.add.at(h, (codes[0].ravel() + CODES, codes[1].ravel() + CODES), 1)
        hists[m.name] = h
    for f in ("input_activity.csv", "NeuroSim_Results_Each_Epoch/NeuroSim_Breakdown_Epock_0.csv"):
        if (root / f).exists():
            (root / f).unlink()
    (root / "NeuroSim_Results_Each_Epoch").mkdir(exist_ok=True)
    net.eval()
    handles = hook.hardware_evaluation(net, ns.wl_weight, ns.wl_activate, 0)
    with torch.no_grad():
        net(torch.rand(args.batch, 3, 32, 32) * 2 - 1)
    hook.remove_hook_list(handles)
    for i, m in enumerate(layers):  # the synthesized update replaces the hook's weight files
        kout = m.weight.shape[0]
        old, new = synthesize_update(hists[m.name], (m.weight[0].numel(), kout), args.seed + i)
        np.savetxt(rec / f"weight{m.name}.csv", new / 16, delimiter=",", fmt="%10.5f")
        np.savetxt(rec / f"weightOld{m.name}.csv", old / 16, delimiter=",", fmt="%10.5f")
    with (out / "update_hist.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["layer", "code_before", "code_after", "cells"])
        for name, h in hists.items():
            for a, b in zip(*np.nonzero(h), strict=True):
                w.writerow([name, a - CODES, b - CODES, h[a, b]])
    cmd = (rec / "trace_command.sh").read_text()
    run = subprocess.run(["/bin/bash", "-c", cmd], cwd=root, capture_output=True, text=True, check=True)
    (out / "neurosim_stdout.txt").write_text(run.stdout)
    with (out / "floorplan.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["layer", "tiles", "speed_up", "utilization"])
        w.writeheader()
        w.writerows(read_floorplan(run.stdout))
    if args.stderr:
        args.stderr.write_text(run.stderr)
    rows = list(csv.reader((root / "NeuroSim_Results_Each_Epoch" / "NeuroSim_Breakdown_Epock_0.csv").open()))
    header = next(r for r in rows if r and r[0].startswith("layer_number"))
    keep = [i for i, h in enumerate(header) if h.strip()]  # NeuroSim leaves two unnamed columns
    with (out / "layers.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["layer"] + [header[i].strip() for i in keep[1:]])
        for r in (r for r in rows if r and r[0].strip().isdigit()):
            w.writerow([LAYERS[int(r[0]) - 1]] + [r[i].strip() if i < len(r) else "" for i in keep[1:]])
    with (out / "params.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["field", "value", "source"])
        for k, v in read_params(root).items():
            w.writerow([k, v, "NeuroSIM/Param.cpp @18289cb"])
        for k in ("wl_weight", "wl_grad", "wl_activate", "max_level", "nonlinearityLTP", "nonlinearityLTD",
                  "c2cVari"):
            w.writerow([k, getattr(ns, k), "train.py @18289cb (flags it overrides)"])
        w.writerow(["python_batch", args.batch, "this script"])
        w.writerow(["seed", args.seed, "this script"])


if __name__ == "__main__":
    main()
