"""Train a built-in model with a sparse-training method while recording a trace (imports torch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import load_dataset
from .models import build_model, wants_image
from .recorder import record

METHODS = ("dense",)


@dataclass
class TrainResult:
    """What a training run produced."""

    trace: Path | None
    iterations: int
    final_loss: float
    test_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    model.train()
    return acc


def train(*, model: str = "mlp", dataset: str = "digits", method: str = "dense", epochs: int = 3,
          batch_size: int = 64, lr: float = 0.1, momentum: float = 0.9, seed: int = 0,
          out: str | Path | None = None, every: int = 10, mask_samples: int | None = None,
          overwrite: bool = False, progress: Callable[[dict[str, Any]], None] | None = None,
          ) -> TrainResult:
    """Train ``model`` on ``dataset`` with ``method``, recording a trace to ``out`` if given.

    Deterministic for a given seed. ``progress`` is called after every iteration with
    ``{"iteration", "total", "epoch", "loss", "accuracy"}`` (the library never prints).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    torch.manual_seed(seed)
    data = load_dataset(dataset, image=wants_image(model), seed=seed)
    net = build_model(model, data.input_shape, data.n_classes)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    xtr, ytr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    xte, yte = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    per_epoch = len(xtr) // batch_size  # drop the ragged last batch: fixed shapes per iteration
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} exceeds the {len(xtr)} training samples")
    total = per_epoch * epochs
    rng = np.random.default_rng(seed)
    rec = None
    if out is not None:
        rec = record(net, out, every=every, iters_per_epoch=per_epoch, mask_samples=mask_samples,
                     optimizer=opt, model_name=model, method=method, dataset=data.describe(),
                     seed=seed, overwrite=overwrite)
        rec.__enter__()
    history: list[dict[str, float]] = []
    loss_value = float("nan")
    try:
        it = 0
        for epoch in range(epochs):
            order = torch.from_numpy(rng.permutation(len(xtr)))
            for b in range(per_epoch):
                idx = order[b * batch_size : (b + 1) * batch_size]
                opt.zero_grad(set_to_none=True)
                logits = net(xtr[idx])
                loss = F.cross_entropy(logits, ytr[idx])
                loss.backward()
                opt.step()
                loss_value = loss.item()
                batch_acc = float((logits.argmax(1) == ytr[idx]).float().mean())
                if rec is not None:
                    rec.step(loss=loss_value, accuracy=batch_acc)
                it += 1
                if progress is not None:
                    progress({"iteration": it, "total": total, "epoch": epoch,
                              "loss": loss_value, "accuracy": batch_acc})
            history.append({"epoch": epoch, "loss": loss_value,
                            "test_accuracy": _accuracy(net, xte, yte)})
    except BaseException:
        if rec is not None:
            rec.close(complete=False)
        raise
    if rec is not None:
        rec.close(complete=True)
    return TrainResult(Path(out) if out is not None else None, total, loss_value,
                       history[-1]["test_accuracy"], history)
