"""Architecture descriptions: frozen dataclasses, a strict YAML loader, units, energy tables and
presets for the edge-NPU, GPU-like and ReRAM families.

>>> import archs
>>> a = archs.load("edge-npu")                      # a preset, a YAML file, or a SCALE-Sim .cfg
>>> b = archs.replace(a, {"compute.rows": 32, "memories.glb.capacity_bytes": "256 KiB"})
"""

from __future__ import annotations

from pathlib import Path

from .architecture import FAMILIES, Architecture
from .components import (
    Adc,
    ComputeArray,
    Crossbar,
    Dac,
    EfficiencyPoint,
    GpuCompute,
    GpuTransformerKernels,
    Link,
    Memory,
    Peripheral,
    Precision,
    RepresentationFormat,
    ReramCompute,
    SparseAction,
    SparseFeatures,
    StructuredSparsity,
    TensorCore,
    VectorUnit,
    WriteModel,
)
from .derived import area_by_component_mm2, chip_area_mm2, peak_macs_per_s, peak_ops_per_s
from .energy import EnergyEntry, energy_lookup, energy_pj, energy_table, leakage_mw
from .errors import ConfigError
from .loader import dump, from_dict, load_file, loads, replace, to_dict
from .presets import PRESETS
from .scalesim import from_scalesim_cfg

__all__ = [
    "FAMILIES",
    "PRESETS",
    "Adc",
    "Architecture",
    "ComputeArray",
    "ConfigError",
    "Crossbar",
    "Dac",
    "EfficiencyPoint",
    "EnergyEntry",
    "GpuCompute",
    "GpuTransformerKernels",
    "Link",
    "Memory",
    "Peripheral",
    "Precision",
    "RepresentationFormat",
    "ReramCompute",
    "SparseAction",
    "SparseFeatures",
    "StructuredSparsity",
    "TensorCore",
    "VectorUnit",
    "WriteModel",
    "area_by_component_mm2",
    "chip_area_mm2",
    "dump",
    "energy_lookup",
    "energy_pj",
    "energy_table",
    "from_dict",
    "from_scalesim_cfg",
    "leakage_mw",
    "load",
    "load_file",
    "loads",
    "peak_macs_per_s",
    "peak_ops_per_s",
    "replace",
    "to_dict",
]


def load(name_or_path: str | Path) -> Architecture:
    """A preset by name, a YAML architecture file, or a SCALE-Sim ``.cfg`` file."""
    if isinstance(name_or_path, str) and name_or_path in PRESETS:
        return PRESETS[name_or_path]
    p = Path(name_or_path)
    if p.suffix == ".cfg":
        return from_scalesim_cfg(p)
    if p.exists():
        return load_file(p)
    import difflib

    guess = difflib.get_close_matches(str(name_or_path), PRESETS, n=1)
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    raise ConfigError([f"no preset or file named {str(name_or_path)!r}; {hint}"
                       f"presets are {', '.join(PRESETS)}, or give a .yaml or SCALE-Sim .cfg file"])
