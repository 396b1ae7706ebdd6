"""One layer of one iteration, read into memory: what every family's replay reads of a trace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from traces.format.layer import LayerSpec
from traces.format.manifest import TENSORS

MASK_TENSORS = ("x", "w", "y_sel", "dy", "dw_needed")


@dataclass
class LayerInput:
    """One layer of one iteration, read into memory, with the Iteration accessors the replay uses."""

    index: int
    batch: int
    mask_batch: int
    has_masks: bool
    counts: dict[str, int | None]
    masks: dict[str, np.ndarray | None]
    stats: dict[str, Any]
    weights: tuple[np.ndarray, np.ndarray] | None = None  # (W, ΔW) float16 of the weight shape

    @classmethod
    def read(cls, it: Any, li: int, *, weights: bool = False) -> LayerInput:
        """Read layer ``li`` of iteration ``it``; with ``weights``, also the recorded float16 weights
        and update (``Iteration.weights``) where the trace stores them."""
        masks = {t: it.mask(li, t) for t in MASK_TENSORS} if it.has_masks else {}
        return cls(it.index, it.batch, it.mask_batch, it.has_masks,
                   {t: it.count(li, t) for t in TENSORS}, masks, it.layer_stats(li),
                   it.weights(li) if weights else None)

    def count(self, li: int, tensor: str) -> int | None:
        return self.counts[tensor]

    def mask(self, li: int, tensor: str) -> np.ndarray | None:
        return self.masks.get(tensor)

    def layer_stats(self, li: int) -> dict[str, Any]:
        return self.stats

    def weight_mask_changed(self) -> bool:
        """Whether the method flipped any weight-mask bit this step (DST, nm: the ``flips_on`` /
        ``flips_off`` layer stats), so a compressed weight must be encoded again."""
        return bool(self.stats.get("flips_on", 0) or self.stats.get("flips_off", 0))

    def densities(self, spec: LayerSpec) -> dict[str, float]:
        """``density_<tensor>`` of every tensor counted this iteration (non-zeros / elements, for the
        whole batch): what a report needs to show sparsity without the trace."""
        return {f"density_{t}": c / max(spec.numel(t, self.batch), 1)
                for t, c in self.counts.items() if c is not None}
