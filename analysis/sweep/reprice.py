"""Re-pricing: points that differ only in prices share one timed replay.

Energies are linear in an architecture's prices (``hwsim.pricing``: energy per action, static
power), and prices enter nothing but energies. So the points of a sweep are grouped by their
**timing key** (a hash of the architecture without its price fields: clock, bandwidths,
capacities, shapes, features...); one point per group is replayed with symbolic prices
(:func:`record`), which times it and records the arithmetic its energies went through (a tape of
a few thousand steps), and every point of the group gets its energy columns from one run of that
tape over a ``(points,)`` array per price (:func:`price_points`). The rows are the ones the
point's own replay gives, bit for bit: the same float operations in the same order, and every
other column is the timed replay's (tests/analysis/test_sweep_reprice.py).

A replay whose energies cannot be recorded (an energy used in a decision: raises
``hwsim.pricing.NotRepriceable``) makes its group replay per point, as before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import archs
from archs import Architecture
from hwsim import pricing
from hwsim.report import Report
from hwsim.simulate import simulate

from .spec import Options

STEP_BYTES = 200  # memory of one tape step and its arrays (memo accounting), bytes
EVAL_VALUES = 2_000_000  # tape steps × points evaluated at once (16 MB of float64 values)


def timing_key(arch: Architecture, plain: dict[str, Any] | None = None) -> str:
    """A stable hex key of everything about ``arch`` that can change its timing (all but the price
    fields); ``plain``: ``archs.to_dict(arch)`` when the caller has it already."""
    body = pricing.without_prices(plain if plain is not None else archs.to_dict(arch))
    text = json.dumps(body, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class Template:
    """One timed replay with symbolic prices: its report frame with every priced cell at 0.0,
    where the priced cells are, and the tape that prices them."""

    frame: pd.DataFrame  # Report.to_frame(meta=True) with priced cells 0.0
    cells: dict[str, tuple[np.ndarray, np.ndarray]]  # column -> (row positions, tape steps)
    tape: pricing.Tape

    @property
    def nbytes(self) -> int:
        mem = int(self.frame.memory_usage(index=True, deep=False).sum())
        return mem + len(self.tape) * STEP_BYTES


def record(trace: Any, arch: Architecture, options: Options) -> Template:
    """Replay ``arch`` with symbolic prices (one thread: the recording is per process); raises
    ``NotRepriceable`` when its energies cannot be recorded, and whatever the replay raises."""
    its = None if options.iterations is None else list(options.iterations)
    with pricing.recording(arch) as tape:
        report = simulate(trace, arch, passes=options.passes, iterations=its, backend=options.backend,
                          workers=1)
    rows: list[dict[str, Any]] = []
    where: dict[str, tuple[list[int], list[int]]] = {}
    for i, row in enumerate(report.rows):
        plain = {}
        for col, v in row.items():
            if isinstance(v, pricing.Sym):
                pos, steps = where.setdefault(col, ([], []))
                pos.append(i)
                steps.append(v.index)
                v = 0.0
            plain[col] = v
        rows.append(plain)
    frame = Report(rows, report.meta).to_frame(meta=True)
    cells = {c: (np.asarray(p, np.int64), np.asarray(s, np.int64)) for c, (p, s) in where.items()}
    return Template(frame, cells, tape)


def price_points(template: Template, arch_list: list[Architecture]) -> pd.DataFrame:
    """The report frames (``Report.to_frame(meta=True)``) of several architectures that share the
    template's timing key, one after the other (each ``len(template.frame)`` rows): the template's
    rows, with each architecture's energies."""
    n_points, n_rows = len(arch_list), len(template.frame)
    tape = template.tape
    full = {col: np.repeat(template.frame[col].to_numpy(np.float64)[None, :], n_points, axis=0)
            for col in template.cells}  # column -> (points, rows)
    chunk = max(1, EVAL_VALUES // max(len(tape), 1))  # points per tape run: bounded memory
    for lo in range(0, n_points, chunk):
        hi = min(lo + chunk, n_points)
        vals = tape.evaluate(pricing.price_arrays(arch_list[lo:hi], tape.leaves))
        for col, (pos, steps) in template.cells.items():
            block = full[col]
            for j, s in zip(pos, steps, strict=True):
                block[lo:hi, j] = vals[s]
        del vals
    out = template.frame.take(np.tile(np.arange(n_rows), n_points))
    out.index = pd.RangeIndex(n_rows * n_points)
    for col, block in full.items():
        if col.endswith(("_bytes", "_pj")):  # Report.to_frame's rule: missing -> 0 (NaN too)
            block[np.isnan(block)] = 0.0
        out[col] = block.ravel()
    return out
