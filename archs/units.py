"""Unit strings, parsed in one place: "128 KiB", "1.41 GHz", "3.9 pJ/bit", "50 ns", "2 mW".

A field's unit is in its name (``capacity_bytes``, ``clock_hz``, ``read_energy_pj_per_byte``);
a YAML value for it is either a plain number in that unit or a string with any unit of the same
dimension, converted here.
"""

from __future__ import annotations

import re

# dimension -> {unit spelling: factor to the field's unit}
_SIZE = {"B": 1, "byte": 1, "bytes": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
         "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "bit": 1 / 8, "bits": 1 / 8}
_FREQ = {"Hz": 1, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9, "S/s": 1, "kS/s": 1e3, "MS/s": 1e6, "GS/s": 1e9}
_ENERGY = {"fJ": 1e-3, "pJ": 1, "nJ": 1e3, "uJ": 1e6, "µJ": 1e6, "mJ": 1e9, "J": 1e12}
_TIME = {"ps": 1e-3, "ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
_POWER = {"nW": 1e-6, "uW": 1e-3, "µW": 1e-3, "mW": 1, "W": 1e3}
_AREA = {"um2": 1e-6, "µm2": 1e-6, "µm²": 1e-6, "mm2": 1, "mm²": 1}
_BANDWIDTH = {f"{k}/s": v for k, v in _SIZE.items()}
_ENERGY_PER_BYTE = {f"{e}/{s}": ev / sv for e, ev in _ENERGY.items()
                    for s, sv in {"B": 1, "byte": 1, "bit": 1 / 8, "b": 1 / 8}.items()}

# field-name suffix -> (dimension name, units, example); longest suffix wins
SUFFIXES: dict[str, tuple[str, dict[str, float], str]] = {
    "_bytes_per_s": ("a bandwidth", _BANDWIDTH, "'3.75 GB/s'"),
    "_pj_per_byte": ("an energy per byte", _ENERGY_PER_BYTE, "'8 pJ/bit' or '2.5 pJ/B'"),
    "_bytes": ("a size", _SIZE, "'128 KiB'"),
    "_hz": ("a frequency", _FREQ, "'1.41 GHz'"),
    "_pj": ("an energy", _ENERGY, "'0.3 pJ'"),
    "_ns": ("a time", _TIME, "'50 ns'"),
    "_mw": ("a power", _POWER, "'2 mW'"),
    "_mm2": ("an area", _AREA, "'0.08 mm2'"),
}

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


def suffix_of(field_name: str) -> str | None:
    """The unit suffix of a field name, or None for a unitless field."""
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if field_name.endswith(suffix):
            return suffix
    return None


def parse(text: str, field_name: str) -> float:
    """Convert ``text`` to the unit of ``field_name``; raise ValueError with a hint when it can't."""
    m = _NUMBER.match(text)
    suffix = suffix_of(field_name)
    if suffix is None:
        if m and not m.group(2):
            return float(m.group(1))
        raise ValueError(f"expected a number, got {text!r}")
    dimension, units, example = SUFFIXES[suffix]
    if m is None:
        raise ValueError(f"cannot read {text!r} as {dimension}; write a number or e.g. {example}")
    value, unit = float(m.group(1)), m.group(2)
    if not unit:
        return value
    if unit not in units:
        known = ", ".join(sorted(units)[:12])
        raise ValueError(f"unknown unit {unit!r} for {dimension}; use one of {known}")
    return value * units[unit]


def format_size(n_bytes: float) -> str:
    """A byte count in the binary unit that fits it: ``512 B``, ``64.0 KiB``, ``1.50 GiB``."""
    n = float(n_bytes)
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= factor:
            v = n / factor
            return f"{v:.2f} {unit}" if v < 10 else f"{v:.1f} {unit}" if v < 100 else f"{v:,.0f} {unit}"
    return f"{n:,.0f} B"


# field-name suffix -> (unit, decimal prefixes apply) for printing a value with its unit
_PRINT_UNITS = {"_bytes_per_s": "B/s", "_hz": "Hz", "_pj": "pJ", "_ns": "ns", "_mw": "mW", "_mm2": "mm²"}


def format_quantity(field_name: str, value: object) -> str:
    """``value`` of the field ``field_name`` for a label, in a unit that fits it: ``64.0 KiB`` for
    ``*_bytes``, ``2 TB/s`` for 2e12 ``*_bytes_per_s``, ``1.41 GHz``; a plain number without a unit
    suffix in the name (``16``, ``0.5``); anything that is not a number as ``str``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    suffix = suffix_of(field_name)
    if suffix == "_bytes":
        return format_size(value)
    v = float(value)
    if suffix in _PRINT_UNITS:
        unit = _PRINT_UNITS[suffix]
        for prefix, factor in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(v) >= factor and unit in ("B/s", "Hz"):
                return f"{v / factor:.4g} {prefix}{unit}"
        return f"{v:.4g} {unit}"
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
