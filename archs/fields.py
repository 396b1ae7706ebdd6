"""The field helper every component uses: unit and source travel with the default."""

from __future__ import annotations

import dataclasses
from typing import Any


def spec(default: Any = dataclasses.MISSING, *, doc: str, gt: float | None = None,
         ge: float | None = None, le: float | None = None) -> Any:
    """A dataclass field with a description (unit and source) and range limits.

    ``doc`` is written as the comment beside the field in YAML dumps and shown by
    ``hwsim archs show``; ``gt``/``ge``/``le`` are checked by the loader.
    """
    meta = {"doc": doc, "gt": gt, "ge": ge, "le": le}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults: components are frozen and hashable")
    return dataclasses.field(default=default, metadata=meta)
