"""What a training method can change in the training loop (imports torch).

A method converts a built-in model (module swaps, hooks), may add a loss term, may split training
into phases, reports per-layer numbers to the recorder, and may evaluate more than accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..zoo.models import Model


@dataclass(frozen=True)
class Phase:
    """A stretch of training with one configuration."""

    name: str
    epochs: int
    level: int | None = None  # multi-level: the level being trained


class Method:
    """The dense baseline; sparse methods override what they change."""

    name: ClassVar[str] = "dense"
    block_order: ClassVar[str] = "bn-relu"
    # optimizers the method works with (the weight-mask baselines and multi-level read or clear
    # SGD's momentum buffers, so they take SGD only)
    optimizers: ClassVar[tuple[str, ...]] = ("sgd", "adam", "adamw")
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, dataset: str = "digits", model: str | None = None, **params: Any) -> None:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; "
                             f"known: {sorted(self.DEFAULTS) or 'none'}")
        self.dataset, self.model_name = dataset, model
        self.params = {**self.dataset_defaults(dataset), **{k: v for k, v in params.items()
                                                            if v is not None}}
        self.check_params()
        self.model: Model | None = None

    def dataset_defaults(self, dataset: str) -> dict[str, Any]:
        """Defaults, adjusted to the dataset where the reference says so."""
        return dict(self.DEFAULTS)

    def check_params(self) -> None:
        """Raise ValueError naming a bad parameter."""

    def prepare(self, model: Model) -> Model:
        """Convert the model in place (module swaps, hooks) and return it."""
        self.model = model
        return model

    def phases(self, epochs: int) -> list[Phase]:
        """How training splits up; one phase by default."""
        return [Phase("train", epochs)]

    def begin_phase(self, phase: Phase) -> None:
        """Reconfigure at a phase start (the trainer builds a fresh optimizer afterwards)."""

    def trainable(self) -> list[nn.Parameter]:
        """Parameters the optimizer updates in the current phase."""
        assert self.model is not None
        return [p for p in self.model.parameters() if p.requires_grad]

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer parameter groups: every trainable parameter with ``weight_decay``."""
        return [{"params": self.trainable(), "weight_decay": weight_decay}]

    def attach_optimizer(self, opt: torch.optim.Optimizer) -> None:
        """The trainer's optimizer, given after every (re)creation (methods that read or clear
        its momentum keep it)."""

    def begin_training(self, total_iterations: int, iterations_per_epoch: int) -> None:
        """The run's length in optimizer steps, before the first step (schedules need it)."""

    def before_step(self) -> None:
        """Called before every training iteration's forward pass (multi-level draws its route)."""

    def after_step(self) -> None:
        """Called after every optimizer step (DST keeps its thresholds finite here)."""

    def regularizer(self) -> torch.Tensor | float:
        """A loss term added to the task loss every iteration."""
        return 0.0

    def density(self) -> float | None:
        """The method's headline density right now, for progress bars (None: not applicable)."""
        return None

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """Evaluation beyond plain accuracy (multi-level: every level and reroute point)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """The method's parameters as written to the trace manifest."""
        return dict(self.params)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000) -> float:
    """Top-1 accuracy in eval mode, without gradients (``chunk`` samples per forward pass);
    sequence models (``(B, L)`` labels): the next-token accuracy over every position."""
    was = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            correct += int((model(x[i:i + chunk]).argmax(-1) == y[i:i + chunk]).sum())
    model.train(was)
    return correct / max(y.numel(), 1)


def swap_module(root: nn.Module, qualname: str, new: nn.Module) -> None:
    """Replace the submodule at ``qualname`` with ``new``."""
    parent_name, _, child = qualname.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def clone_as(cls: type, old: nn.Module) -> nn.Module:
    """A ``cls`` instance (a Conv2d/Linear subclass) with ``old``'s geometry, weights and mode."""
    if isinstance(old, nn.Conv2d):
        new = cls(old.in_channels, old.out_channels, old.kernel_size, stride=old.stride,
                  padding=old.padding, dilation=old.dilation, groups=old.groups,
                  bias=old.bias is not None, padding_mode=old.padding_mode)
    else:
        new = cls(old.in_features, old.out_features, bias=old.bias is not None)
    new.load_state_dict(old.state_dict(), strict=False)
    new.train(old.training)
    return new
