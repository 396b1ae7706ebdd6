"""A design's points: sampled axis values, the architecture each names, and its stable key.

Sampling (seeded, so the same spec always gives the same points in the same order):

- ``grid``: every combination, the first axis varying slowest; a range axis contributes
  ``steps`` values from ``min`` to ``max`` (geometric with ``log``);
- ``random``: ``samples`` independent draws per axis (a list axis: a uniform choice);
- ``lhs``: Latin hypercube: every axis is cut into ``samples`` equal strata (in log space with
  ``log``), each stratum is used once, in a random order per axis.

Constraints are applied after sampling, so random/lhs sweeps hold at most ``samples`` points.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

import archs
from archs import Architecture, ConfigError

from .expr import ExpressionError
from .fields import field_values
from .reprice import timing_key
from .spec import Axis, Design, Options

KEY_VERSION = 1  # bump when the meaning of a key's inputs changes


@dataclass(frozen=True)
class Point:
    """One design point: the axis values as sampled, the architecture (None when the values do not
    make a valid machine, then ``error`` says why) and the key of (trace content, arch, options)."""

    key: str
    design: int
    trace: int
    index: int  # position among the design's sampled points
    values: tuple[tuple[str, Any], ...]
    arch: Architecture | None
    error: str | None = None
    timing: str = ""  # the timing key (``reprice.timing_key``): points that share it differ in prices only


def sample(design: Design) -> list[dict[str, Any]]:
    """Axis assignments ``{path: value}`` of a design, before constraints, in a fixed order."""
    axes, s = design.axes, design.sampling
    if not axes:
        return [{}]
    if s.method == "grid":
        grids = [_grid_values(a) for a in axes]
        return [dict(zip((a.path for a in axes), combo, strict=True)) for combo in itertools.product(*grids)]
    rng = np.random.default_rng(s.seed)
    n = int(s.samples or 0)
    if s.method == "random":
        u = rng.random((n, len(axes)))  # (points, axes) in [0, 1)
    else:  # lhs: one stratum per point and axis, shuffled per axis
        strata = np.stack([rng.permutation(n) for _ in axes], axis=1)  # (points, axes)
        u = (strata + rng.random((n, len(axes)))) / n
    return [{a.path: _value_at(a, float(u[i, j])) for j, a in enumerate(axes)} for i in range(n)]


def _grid_values(a: Axis) -> list[Any]:
    if a.values is not None:
        return list(a.values)
    steps = a.steps or 1
    t = np.linspace(0.0, 1.0, steps) if steps > 1 else np.zeros(1)
    return list(dict.fromkeys(_range_value(a, float(x)) for x in t))


def _value_at(a: Axis, u: float) -> Any:
    """The axis value at the unit coordinate ``u`` in [0, 1)."""
    if a.values is not None:
        return a.values[min(int(u * len(a.values)), len(a.values) - 1)]
    return _range_value(a, u)


def _range_value(a: Axis, u: float) -> Any:
    lo, hi = float(a.low), float(a.high)  # type: ignore[arg-type]
    v = float(np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))) if a.log else lo + u * (hi - lo)
    return round(v) if a.integer else v


def build(design: Design, values: dict[str, Any]) -> tuple[Architecture | None, str | None, bool]:
    """``(arch, error, kept)``: the variant the values name, with the design's derived fields set;
    ``kept`` is False when a constraint rejects it."""
    try:
        arch = archs.replace(design.arch, values) if values else design.arch
        if design.derive:
            known = field_values(arch)
            arch = archs.replace(arch, {path: ex(known) for path, ex in design.derive})
    except (ConfigError, ExpressionError) as exc:
        return None, " ".join(str(exc).split()), True
    if design.constraints:
        known = field_values(arch)
        try:
            if not all(bool(c(known)) for c in design.constraints):
                return arch, None, False
        except ExpressionError as exc:
            return None, str(exc), True
    return arch, None, True


def point_key(trace_hash: str, arch: Architecture | None, options: Options,
              values: dict[str, Any], base: Architecture, plain: dict[str, Any] | None = None) -> str:
    """A stable hex key of (trace content, architecture, options); a point whose values do not make
    a machine is keyed by its base and values instead. ``plain``: ``archs.to_dict(arch)`` if at hand."""
    body = {"v": KEY_VERSION, "trace": trace_hash, "options": options.as_dict()}
    if arch is not None:
        body["arch"] = plain if plain is not None else archs.to_dict(arch)
    else:
        body["base"], body["values"] = archs.to_dict(base), {k: repr(v) for k, v in values.items()}
    text = json.dumps(body, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def expand(designs: tuple[Design, ...], trace_hashes: list[str], options: Options) -> tuple[list[Point], int]:
    """Every point of every design on every trace (designs outer, traces inner), duplicates (same
    key) once; and how many sampled points the constraints rejected."""
    out: list[Point] = []
    seen: set[str] = set()
    rejected = 0
    for di, design in enumerate(designs):
        for idx, values in enumerate(sample(design)):
            arch, error, kept = build(design, values)
            if not kept:
                rejected += len(trace_hashes)
                continue
            plain = archs.to_dict(arch) if arch is not None else None
            timing = timing_key(arch, plain) if arch is not None else ""
            for ti, th in enumerate(trace_hashes):
                key = point_key(th, arch, options, values, design.arch, plain)
                if key in seen:
                    continue
                seen.add(key)
                out.append(Point(key, di, ti, idx, tuple(values.items()), arch, error, timing))
    return out, rejected
