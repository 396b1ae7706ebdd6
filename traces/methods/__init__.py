"""The sparse training methods (imports torch): dense, DSG, DST, multi-level and N:M (SR-STE)."""

from __future__ import annotations

from typing import Any

from .base import Method, Phase, accuracy
from .dsg import DSG
from .dst import DST
from .mlevel import MultiLevel
from .nm import NM

METHODS: dict[str, type[Method]] = {"dense": Method, "dsg": DSG, "dst": DST, "mlevel": MultiLevel,
                                 "nm": NM}


def make_method(name: str, dataset: str = "digits", model: str | None = None, **params: Any) -> Method:
    """A method by name with its parameters (unknown names and parameters raise ValueError);
    ``dataset`` and ``model`` pick the paper's defaults where they differ by data set and model."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name](dataset=dataset, model=model, **params)


__all__ = ["DSG", "DST", "METHODS", "NM", "Method", "MultiLevel", "Phase", "accuracy", "make_method"]
