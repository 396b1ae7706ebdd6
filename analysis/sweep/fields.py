"""An architecture as a flat mapping of dotted field paths to values (what constraints read)."""

from __future__ import annotations

from typing import Any

import archs
from archs import Architecture

DERIVED = ("chip_area_mm2", "peak_macs_per_s")  # names a constraint may use beside the fields


def field_values(arch: Architecture, *, derived: bool = True) -> dict[str, Any]:
    """``{"compute.rows": 16, "memories.glb.capacity_bytes": 131072.0, ...}``: every scalar field
    by its dotted path (list elements by their ``name``, else their index), as
    :func:`archs.replace` takes them; with ``derived``, also ``chip_area_mm2`` (mm²) and
    ``peak_macs_per_s``."""
    out: dict[str, Any] = {}
    _flatten(archs.to_dict(arch), "", out)
    out.pop("version", None)
    if derived:
        out["chip_area_mm2"] = archs.chip_area_mm2(arch)
        out["peak_macs_per_s"] = archs.peak_macs_per_s(arch)
    return out


def _flatten(node: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(node, list) and node and all(isinstance(e, dict) for e in node):
        for i, e in enumerate(node):
            name = e.get("name")
            _flatten(e, f"{path}.{name if isinstance(name, str) else i}", out)
    else:
        out[path] = tuple(node) if isinstance(node, list) else node
