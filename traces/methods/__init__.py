"""The sparse training methods (imports torch): dense, DSG, DST, multi-level, N:M (SR-STE), and the
baselines SET, RigL, SNFS (sparse momentum), gradual magnitude pruning and Top-KAST, and top-k
attention (dynamic attention sparsity, transformers only)."""

from __future__ import annotations

from typing import Any

from .base import Method, Phase, accuracy
from .dsg import DSG
from .dst import DST
from .gmp import GMP
from .mlevel import MultiLevel
from .nm import NM
from .prune_regrow import SET, SNFS, RigL
from .topk_attention import TopKAttention
from .topkast import TopKAST

METHODS: dict[str, type[Method]] = {"dense": Method, "dsg": DSG, "dst": DST, "mlevel": MultiLevel,
                                 "nm": NM, "set": SET, "rigl": RigL, "snfs": SNFS, "gmp": GMP,
                                 "topkast": TopKAST, "attn-topk": TopKAttention}
BASELINES = ("set", "rigl", "snfs", "gmp", "topkast")  # the field's weight-sparsity baselines


def make_method(name: str, dataset: str = "digits", model: str | None = None, **params: Any) -> Method:
    """A method by name with its parameters (unknown names and parameters raise ValueError);
    ``dataset`` and ``model`` pick the paper's defaults where they differ by data set and model."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name](dataset=dataset, model=model, **params)


__all__ = ["BASELINES", "DSG", "DST", "GMP", "METHODS", "NM", "SET", "SNFS", "Method", "MultiLevel", "Phase",
           "RigL", "TopKAST", "TopKAttention", "accuracy", "make_method"]
