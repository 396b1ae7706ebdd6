"""One training run of scripts/reproduce.py, in a worker process: its numbers for the report."""

from __future__ import annotations

import time
from typing import Any

from .dsg import dsg_costs
from .plans import Run
from .sweep import dst_pairings


def run_one(run: Run, seed: int, smoke: bool, deadline: float) -> dict[str, Any]:
    """Train one seed of a run; returns its numbers (called in a worker process).

    ``deadline``: a ``time.time()`` after which no run starts and a running one stops at the end
    of its epoch (multi-level runs, whose phases must all run, are not cut).
    """
    import torch

    torch.set_num_threads(1)
    from traces.training import train
    from traces.zoo.datasets import load_dataset
    from traces.zoo.models import wants_image

    head = {"row": run.row, "label": run.label, "seed": seed}
    left = deadline - time.time()
    if left <= 60:
        return {**head, "skipped": True}
    caps = {"max_batches": 3, "test_samples": 200} if smoke else {}
    epochs = (4 if run.method == "mlevel" else 1) if smoke else run.epochs
    r = train(model=run.model, dataset="mnist", method=run.method, epochs=epochs, lr=run.lr,
              batch_size=run.batch_size, weight_decay=run.weight_decay, seed=seed,
              method_params=dict(run.method_params), stop_after_s=left, inputs=run.inputs, **caps)
    out: dict[str, Any] = {**head, **r.summary(), "epochs_run": len(r.history), "inputs": run.inputs,
                           "history": [h["test_accuracy"] for h in r.history]}
    if run.method == "dst":
        out["remaining"] = r.method.density()
        out["layer_remaining"] = r.method.layer_densities()
        out["alpha"] = r.method.params["alpha"]
        out["remaining_history"] = [h["density"] for h in r.history]  # after each epoch
        out |= dst_pairings(out["history"], out["remaining_history"])
        out["resets"] = {name: layer.resets for name, layer in r.method.layers.items()}
    elif run.method == "dsg":
        data = load_dataset("mnist", image=wants_image(run.model))
        out |= dsg_costs(r.method, r.method.model, torch.from_numpy(data.x_test[:64]))
        out["eps"] = r.method.params["eps"]
        out["method_params"] = dict(run.method_params)
    elif run.method == "mlevel":
        out["evaluation"] = r.evaluation
    return out
