"""Which iterations carry exact masks (every iteration carries counts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Schedule:
    """The recording schedule, stored in the manifest as ``schedule``."""

    every: int = 10  # masks every n-th iteration (0: only the other rules)
    first: bool = True  # masks on iteration 0
    iters_per_epoch: int | None = None  # when known: masks on the first and last of each epoch
    lr_changes: bool = True  # masks on the first iteration after a learning-rate change
    mask_samples: int | None = None  # activation/gradient masks for the first b samples only
    weights: bool = True  # float16 weights and their update ΔW on mask iterations
    weight_snapshot_every: int = 10  # full weight-mask snapshot every n mask iterations

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"every must be >= 0, got {self.every}")
        if self.iters_per_epoch is not None and self.iters_per_epoch < 1:
            raise ValueError(f"iters_per_epoch must be >= 1, got {self.iters_per_epoch}")
        if self.mask_samples is not None and self.mask_samples < 1:
            raise ValueError(f"mask_samples must be >= 1, got {self.mask_samples}")
        if self.weight_snapshot_every < 1:
            raise ValueError(f"weight_snapshot_every must be >= 1, got {self.weight_snapshot_every}")

    def reasons(self, iteration: int, *, lr_changed: bool = False, forced: bool = False) -> list[str]:
        """Why ``iteration`` carries masks (empty: counts only)."""
        out = []
        if forced:
            out.append("forced")
        if self.first and iteration == 0:
            out.append("first")
        if self.every and iteration % self.every == 0:
            out.append("every")
        if self.iters_per_epoch:
            pos = iteration % self.iters_per_epoch
            if pos == 0:
                out.append("epoch_start")
            if pos == self.iters_per_epoch - 1:
                out.append("epoch_end")
        if self.lr_changes and lr_changed:
            out.append("lr_change")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
