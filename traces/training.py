"""Train a built-in model with a sparse-training method while recording a trace (imports torch).

Optimizers: SGD with momentum and weight decay, or AdamW (transformers); the learning rate either
drops 10× at each milestone epoch (``schedule="step"``) or follows a per-iteration cosine from ``lr`` to 0
(``"cosine"``). Augmentation (``augment=True``): random crop of the 4-pixel zero-padded image and a
random horizontal flip, drawn from a torch generator seeded with ``seed`` (the papers' CIFAR
recipe). Test accuracy is measured after every epoch; the result carries the last and the best.
Sequence models (``gpt-*`` on a text data set) predict the next token at every position: their
loss is averaged over positions and their accuracy is next-token accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .methods import METHODS, accuracy, make_method
from .recording.recorder import record
from .zoo.datasets import load_dataset
from .zoo.models import build_model, sequence_length, wants_image


@dataclass
class TrainResult:
    """What a training run produced."""

    trace: Path | None
    iterations: int
    final_loss: float
    test_accuracy: float  # after the last epoch
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per epoch
    evaluation: dict[str, Any] = field(default_factory=dict)  # the method's own evaluation
    method: Any = None  # the Method object (its layers, for inspection)
    best_accuracy: float = float("nan")  # the best epoch's test accuracy (DST's paper reports this)
    best_epoch: int = -1
    wall_s: float = 0.0  # wall-clock seconds of the whole run

    def summary(self) -> dict[str, Any]:
        """The headline numbers (for tables)."""
        return {"iterations": self.iterations, "final_loss": self.final_loss,
                "last_accuracy": self.test_accuracy, "best_accuracy": self.best_accuracy,
                "best_epoch": self.best_epoch, "wall_s": round(self.wall_s, 1)}


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop of the zero-padded images and a random horizontal flip, per sample.

    ``x``: ``(n, C, H, W)``. Vectorized: one gather for the crops, one ``where`` for the flips.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, H)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, W)
    flip = torch.rand(n, generator=gen) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (n, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


SCHEDULES = ("step", "cosine")
OPTIMIZERS = ("sgd", "adam", "adamw")


def task_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``(B, classes)`` logits, or of ``(B, L, vocab)`` next-token logits
    averaged over every position."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def train(*, model: str = "mlp", dataset: str = "digits", method: str = "dense", epochs: int = 3,
          batch_size: int = 64, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
          lr_milestones: tuple[int, ...] = (), seed: int = 0, out: str | Path | None = None,
          every: int = 10, mask_samples: int | None = None, overwrite: bool = False,
          method_params: dict[str, Any] | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None, data_dir: str | Path | None = None,
          schedule: str = "step", augment: bool = False, max_batches: int | None = None,
          test_samples: int | None = None, stop_after_s: float | None = None,
          inputs: str = "standardized", optimizer: str = "sgd") -> TrainResult:
    """Train ``model`` on ``dataset`` with ``method``, recording a trace to ``out`` if given.

    Deterministic for a given seed. ``lr_milestones`` are epochs at which the learning rate is
    divided by 10 (``schedule="step"``); ``"cosine"`` anneals per iteration from ``lr`` to 0.
    ``weight_decay`` is SGD's L2 term (the method decides which parameters get it).
    ``optimizer``: ``"sgd"`` (with ``momentum``), ``"adam"`` (β = (0.9, 0.999), L2
    ``weight_decay``; DST's LSTM setting) or ``"adamw"`` (decoupled ``weight_decay``; what
    transformers are usually trained with); the weight-mask baselines read SGD's momentum and take
    ``"sgd"`` only. ``data_dir``
    holds a file-backed data set's files. ``max_batches`` caps the iterations per epoch and
    ``test_samples`` the test set (smoke runs). ``inputs``: how file-backed data sets scale their
    pixels, ``"standardized"`` (per channel) or ``"unit"`` ([0, 1], as DST's official MNIST code).
    ``stop_after_s`` ends training after the first epoch that finishes past that many seconds
    (single-phase methods only; the result's ``history`` says how many epochs ran). ``progress``
    is called after every iteration with ``{"iteration", "total", "epoch", "phase", "loss",
    "accuracy", "density"}`` (the library never prints).
    """
    import time

    start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    stopped = False
    torch.manual_seed(seed)
    meth = make_method(method, dataset, model, **(method_params or {}))
    if optimizer not in meth.optimizers:
        raise ValueError(f"method {method!r} works with optimizer {' or '.join(meth.optimizers)}, "
                         f"not {optimizer!r}")
    data = load_dataset(dataset, image=wants_image(model), seed=seed, data_dir=data_dir, inputs=inputs,
                        seq_len=sequence_length(model))
    net = meth.prepare(build_model(model, data.input_shape, data.n_classes, meth.block_order))
    xtr, ytr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    xte, yte = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    if test_samples is not None:
        xte, yte = xte[:test_samples], yte[:test_samples]
    if augment and xtr.dim() != 4:
        raise ValueError(f"augment: needs image-shaped inputs (model {model!r} takes flat vectors)")
    per_epoch = len(xtr) // batch_size  # drop the ragged last batch: fixed shapes per iteration
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} exceeds the {len(xtr)} training samples")
    if max_batches is not None:
        per_epoch = max(1, min(per_epoch, max_batches))
    phases = meth.phases(epochs)
    total = per_epoch * sum(p.epochs for p in phases)
    rng = np.random.default_rng(seed)
    aug_gen = torch.Generator().manual_seed(seed)

    def lr_at(epoch: int, it: int) -> float:
        if schedule == "cosine":
            return 0.5 * lr * (1 + math.cos(math.pi * it / total))
        return lr / 10 ** sum(epoch >= m for m in lr_milestones)

    def make_optimizer(lr_now: float) -> torch.optim.Optimizer:
        if optimizer == "adamw":
            made = torch.optim.AdamW(meth.param_groups(weight_decay), lr=lr_now)
        elif optimizer == "adam":
            made = torch.optim.Adam(meth.param_groups(weight_decay), lr=lr_now)
        else:
            made = torch.optim.SGD(meth.param_groups(weight_decay), lr=lr_now, momentum=momentum)
        meth.attach_optimizer(made)
        return made

    meth.begin_training(total, per_epoch)
    opt = make_optimizer(lr)
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
            opt = make_optimizer(lr_at(epoch, it))
            if rec is not None:
                rec.optimizer = opt
            for _ in range(phase.epochs):
                order = torch.from_numpy(rng.permutation(len(xtr)))
                for b in range(per_epoch):
                    for group in opt.param_groups:  # step decay at the milestones, or cosine
                        group["lr"] = lr_at(epoch, it)
                    idx = order[b * batch_size : (b + 1) * batch_size]
                    xb = augment_batch(xtr[idx], aug_gen) if augment else xtr[idx]
                    opt.zero_grad(set_to_none=True)
                    meth.before_step()
                    logits = net(xb)
                    loss = task_loss(logits, ytr[idx]) + meth.regularizer()
                    loss.backward()
                    opt.step()
                    meth.after_step()
                    loss_value = loss.item()
                    batch_acc = float((logits.argmax(-1) == ytr[idx]).float().mean())
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
                late = stop_after_s is not None and time.perf_counter() - start > stop_after_s
                if late and len(phases) == 1:
                    stopped = True
                    break
            if stopped:
                break
        evaluation = meth.evaluate(xte, yte)
        if rec is not None and evaluation:
            rec.set_results(evaluation)
    except BaseException:
        if rec is not None:
            rec.close(complete=False)
        raise
    if rec is not None:
        rec.close(complete=True)
    best = max(range(len(history)), key=lambda i: history[i]["test_accuracy"])
    return TrainResult(Path(out) if out is not None else None, it, loss_value,
                       history[-1]["test_accuracy"], history, evaluation, meth,
                       best_accuracy=history[best]["test_accuracy"], best_epoch=history[best]["epoch"],
                       wall_s=time.perf_counter() - start)
