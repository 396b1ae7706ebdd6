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
from .methods import METHODS, accuracy, make_method
from .models import build_model, wants_image
from .recorder import record


@dataclass
class TrainResult:
    """What a training run produced."""

    trace: Path | None
    iterations: int
    final_loss: float
    test_accuracy: float
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per epoch
    evaluation: dict[str, Any] = field(default_factory=dict)  # the method's own evaluation
    method: Any = None  # the Method object (its layers, for inspection)


def train(*, model: str = "mlp", dataset: str = "digits", method: str = "dense", epochs: int = 3,
          batch_size: int = 64, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
          lr_milestones: tuple[int, ...] = (), seed: int = 0, out: str | Path | None = None,
          every: int = 10, mask_samples: int | None = None, overwrite: bool = False,
          method_params: dict[str, Any] | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train ``model`` on ``dataset`` with ``method``, recording a trace to ``out`` if given.

    Deterministic for a given seed. ``lr_milestones`` are epochs at which the learning rate is
    divided by 10. ``progress`` is called after every iteration with ``{"iteration", "total",
    "epoch", "phase", "loss", "accuracy", "density"}`` (the library never prints).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    torch.manual_seed(seed)
    meth = make_method(method, dataset, **(method_params or {}))
    data = load_dataset(dataset, image=wants_image(model), seed=seed)
    net = meth.prepare(build_model(model, data.input_shape, data.n_classes, meth.block_order))
    xtr, ytr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    xte, yte = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    per_epoch = len(xtr) // batch_size  # drop the ragged last batch: fixed shapes per iteration
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} exceeds the {len(xtr)} training samples")
    phases = meth.phases(epochs)
    total = per_epoch * sum(p.epochs for p in phases)
    rng = np.random.default_rng(seed)

    def optimizer(lr_now: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(meth.trainable(), lr=lr_now, momentum=momentum, weight_decay=weight_decay)

    opt = optimizer(lr)
    rec = None
    if out is not None:
        rec = record(net, out, every=every, iters_per_epoch=per_epoch, mask_samples=mask_samples,
                     optimizer=opt, model_name=model, method=method, method_params=meth.describe(),
                     dataset=data.describe(), seed=seed, overwrite=overwrite)
        rec.__enter__()
    history: list[dict[str, Any]] = []
    loss_value, it, epoch = float("nan"), 0, 0
    try:
        for phase in phases:
            meth.begin_phase(phase)
            opt = optimizer(lr / 10 ** sum(epoch >= m for m in lr_milestones))
            if rec is not None:
                rec.optimizer = opt
            for _ in range(phase.epochs):
                for group in opt.param_groups:  # step decay at the milestones
                    group["lr"] = lr / 10 ** sum(epoch >= m for m in lr_milestones)
                order = torch.from_numpy(rng.permutation(len(xtr)))
                for b in range(per_epoch):
                    idx = order[b * batch_size : (b + 1) * batch_size]
                    opt.zero_grad(set_to_none=True)
                    logits = net(xtr[idx])
                    loss = F.cross_entropy(logits, ytr[idx]) + meth.regularizer()
                    loss.backward()
                    opt.step()
                    loss_value = loss.item()
                    batch_acc = float((logits.argmax(1) == ytr[idx]).float().mean())
                    density = meth.density()
                    if rec is not None:
                        extra = {"density": density} if density is not None else {}
                        rec.step(loss=loss_value, accuracy=batch_acc, phase=phase.name, **extra)
                    it += 1
                    if progress is not None:
                        progress({"iteration": it, "total": total, "epoch": epoch, "phase": phase.name,
                                  "loss": loss_value, "accuracy": batch_acc, "density": density})
                history.append({"epoch": epoch, "phase": phase.name, "loss": loss_value,
                                "test_accuracy": accuracy(net, xte, yte), "density": meth.density()})
                epoch += 1
        evaluation = meth.evaluate(xte, yte)
        if rec is not None and evaluation:
            rec.set_results(evaluation)
    except BaseException:
        if rec is not None:
            rec.close(complete=False)
        raise
    if rec is not None:
        rec.close(complete=True)
    return TrainResult(Path(out) if out is not None else None, total, loss_value,
                       history[-1]["test_accuracy"], history, evaluation, meth)
