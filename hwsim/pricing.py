"""Prices: what one action of one component costs, and a replay's energy recorded as a program over them.

Every energy the simulator reports is computed from an architecture's **prices**
(:func:`prices`): its energy table (``archs.energy_lookup``, pJ per action), the total static
power (``("leakage", "total_mw")``) and, on ReRAM, the powers that its energy model multiplies by
busy time. Nothing else about an architecture enters an energy, and prices enter nothing but
energies: cycles, bytes and MAC counts never depend on them (the fields are listed in
:data:`PRICE_FIELDS`).

So a sweep over prices need not replay every point. :func:`recording` replays one point with
*symbolic* prices: each price is a :class:`Sym` leaf, and every ``+ - * /`` that an energy goes
through appends one step to a :class:`Tape`. The report's energy columns then hold symbols;
:meth:`Tape.evaluate` runs the tape once on a ``(points,)`` array per price and gives every
point's energies at once. Each step is the same IEEE double operation, in the same order, as the
replay does on a plain float, so the values are bit-identical to replaying each point
(tests/analysis/test_sweep_reprice.py). An energy used for anything but arithmetic (a comparison,
``float()``, a decision) raises :class:`NotRepriceable`, and the caller replays per point.

The families compute with :func:`price`, :func:`total_pj`, :func:`ratio` and :func:`value`, which
are plain float arithmetic outside a recording.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from archs import Architecture, energy_lookup, leakage_mw

Key = tuple[str, str]  # (component, action)

# Architecture fields that are prices (by field name, wherever they appear): they enter energies
# only. Everything else (clock, bandwidths, capacities, shapes, ADC sample rates, read cycle
# times) can change cycles and is part of a point's timing.
PRICE_FIELDS = frozenset({
    "mac_energy_pj", "gated_mac_energy_pj", "op_energy_pj", "leakage_mw", "sm_leakage_mw",
    "read_energy_pj_per_byte", "write_energy_pj_per_byte", "metadata_read_energy_pj_per_byte",
    "metadata_write_energy_pj_per_byte", "energy_pj_per_byte", "fma_energy_pj", "power_mw",
    "pulse_energy_pj", "shift_add_energy_pj", "accumulation_energy_pj_per_conversion",
    "tile_input_buffer_energy_pj_per_bit", "tile_output_buffer_energy_pj_per_bit",
    "tile_interconnect_energy_pj_per_bit", "global_buffer_energy_pj_per_bit",
    "interconnect_energy_pj_per_bit", "dram_energy_pj_per_bit",
})


class NotRepriceable(TypeError):
    """A recorded energy was used for something other than arithmetic: replay per point instead."""


# -- plain prices ------------------------------------------------------------------------------------

_PRICES: OrderedDict[int, tuple[Architecture, dict[Key, Any]]] = OrderedDict()
_PRICES_KEPT = 64


def price_table(arch: Architecture) -> dict[Key, float]:
    """Every price of ``arch`` as ``{(component, action): value}`` (built each call; see :func:`prices`)."""
    out: dict[Key, float] = dict(energy_lookup(arch))
    out[("leakage", "total_mw")] = sum(leakage_mw(arch).values())
    if arch.reram is not None:
        r = arch.reram
        out[("crossbar", "power_mw")] = r.crossbar.power_mw
        out[("dac", "power_mw")] = r.dac.power_mw
        out[("accumulation", "conversion")] = r.accumulation_energy_pj_per_conversion
        out[("tile_input_buffer", "bit")] = r.tile_input_buffer_energy_pj_per_bit
        out[("tile_output_buffer", "bit")] = r.tile_output_buffer_energy_pj_per_bit
        out[("tile_interconnect", "bit")] = r.tile_interconnect_energy_pj_per_bit
        out[("global_buffer", "bit")] = r.global_buffer_energy_pj_per_bit
        out[("interconnect", "bit")] = r.interconnect_energy_pj_per_bit
        out[("dram", "bit")] = r.dram_energy_pj_per_bit
        out[("ima_peripherals", "power_mw")] = sum(p.count * p.power_mw for p in r.ima_peripherals)
        out[("tile_peripherals", "power_mw")] = sum(p.count * p.power_mw for p in r.tile_peripherals)
    return out


def prices(arch: Architecture) -> dict[Key, Any]:
    """The prices the replay of ``arch`` uses: :func:`price_table`, built once per architecture object,
    or the symbols of a :func:`recording` of this object in this thread. While a recording is active
    in this thread, any other architecture's prices raise :class:`NotRepriceable` (its energies would
    not be recorded)."""
    rec = getattr(_LOCAL, "recording", None)
    if rec is not None:
        if rec[0] is arch:
            return rec[1]
        raise NotRepriceable(f"{arch.name}: prices of an architecture other than the one recorded")
    hit = _PRICES.get(id(arch))
    if hit is None or hit[0] is not arch:
        hit = _PRICES[id(arch)] = (arch, price_table(arch))
        while len(_PRICES) > _PRICES_KEPT:
            _PRICES.popitem(last=False)
    return hit[1]


def price(arch: Architecture, component: str, action: str) -> Any:
    """One price; ``KeyError`` naming what exists when ``arch`` has none for this action."""
    table = prices(arch)
    try:
        return table[(component, action)]
    except KeyError:
        known = sorted(f"{c}.{a}" for c, a in energy_lookup(arch))
        raise KeyError(f"{arch.name} has no energy for {component}.{action}; it has {known}") from None


def total_pj(energy: dict[str, Any]) -> Any:
    """The sum of a dict of energies (pJ), as a float (a symbol while recording)."""
    s = sum(energy.values())
    return s if isinstance(s, Sym) else float(s)


def ratio(num: Any, den: Any, empty: float | None = None) -> Any:
    """``num / den`` (a speedup, an energy saving), defined everywhere (docs/simulator.md, "Ratios"):
    ``1.0`` where both are zero (nothing was spent either way, so nothing was saved); where only
    ``den`` is zero, ``num`` over one unit of it (one cycle, one pJ, one byte: the run spent less
    than that, so the true ratio is at least this), or ``empty`` when given (a scale factor)."""
    if isinstance(num, Sym) or isinstance(den, Sym):
        tape = num.tape if isinstance(num, Sym) else den.tape
        return tape.step(_RATIO, num, den, None if empty is None else float(empty))
    if den:
        return num / den
    return 1.0 if not num else (num if empty is None else empty)


def ratios(num: Any, den: Any) -> Any:
    """:func:`ratio` element-wise over arrays or pandas Series (the index of ``num`` is kept)."""
    num_a, den_a = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.where(den_a != 0, num_a / np.where(den_a != 0, den_a, 1.0), np.where(num_a == 0, 1.0, num_a))
    if hasattr(num, "index") and out.shape == (len(num),):
        import pandas as pd

        return pd.Series(out, index=num.index)
    return out


def value(x: Any) -> Any:
    """``float(x)``, or the symbol itself while recording."""
    return x if isinstance(x, Sym) else float(x)


# -- recording ---------------------------------------------------------------------------------------

_LEAF, _ADD, _SUB, _MUL, _DIV, _NEG, _RATIO = range(7)


class Tape:
    """The arithmetic a recorded replay did on prices, in order: step ``i`` is
    ``(op, x, y, z)`` where an operand is a step index (``int``) or a constant (``float``)."""

    def __init__(self) -> None:
        self.steps: list[tuple] = []
        self.leaves: dict[Key, int] = {}
        self._lock = threading.Lock()

    def leaf(self, key: Key) -> Sym:
        with self._lock:
            if key not in self.leaves:
                self.leaves[key] = len(self.steps)
                self.steps.append((_LEAF, key, None, None))
            return Sym(self, self.leaves[key])

    def step(self, op: int, x: Any, y: Any = None, z: Any = None) -> Sym:
        args = (_operand(self, x), None if y is None else _operand(self, y), z)
        with self._lock:
            self.steps.append((op, *args))
            return Sym(self, len(self.steps) - 1)

    def evaluate(self, table: dict[Key, np.ndarray]) -> list[np.ndarray | None]:
        """Every step's value over the points: ``table`` maps each leaf's key to a float64 array of
        shape ``(points,)``; returns one such array per step (index by ``Sym.index``)."""
        vals: list[Any] = [None] * len(self.steps)
        with np.errstate(divide="ignore", invalid="ignore"):
            for i, (op, x, y, z) in enumerate(self.steps):
                if op == _LEAF:
                    vals[i] = table[x]
                    continue
                a = vals[x] if type(x) is int else x
                if op == _NEG:
                    vals[i] = -a
                    continue
                b = vals[y] if type(y) is int else y
                if op == _ADD:
                    vals[i] = a + b
                elif op == _SUB:
                    vals[i] = a - b
                elif op == _MUL:
                    vals[i] = a * b
                elif op == _DIV:
                    vals[i] = a / b
                else:  # _RATIO: num / den where den != 0, 1 where both are 0, else num (or the constant)
                    num, den = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
                    vals[i] = np.where(den != 0, num / np.where(den != 0, den, 1.0),
                                       np.where(num == 0, 1.0, num if z is None else z))
        return vals

    def __len__(self) -> int:
        return len(self.steps)


class Sym:
    """An energy that depends on prices: a step of a :class:`Tape`. Supports ``+ - * /`` with
    numbers and other symbols of the same tape; anything else raises :class:`NotRepriceable`."""

    __slots__ = ("index", "tape")
    __array_ufunc__ = None  # numpy scalars defer to our reflected operators

    def __init__(self, tape: Tape, index: int) -> None:
        self.tape, self.index = tape, index

    def __add__(self, o: Any) -> Sym:
        return self.tape.step(_ADD, self, o)

    def __radd__(self, o: Any) -> Sym:
        return self.tape.step(_ADD, o, self)

    def __sub__(self, o: Any) -> Sym:
        return self.tape.step(_SUB, self, o)

    def __rsub__(self, o: Any) -> Sym:
        return self.tape.step(_SUB, o, self)

    def __mul__(self, o: Any) -> Sym:
        return self.tape.step(_MUL, self, o)

    def __rmul__(self, o: Any) -> Sym:
        return self.tape.step(_MUL, o, self)

    def __truediv__(self, o: Any) -> Sym:
        return self.tape.step(_DIV, self, o)

    def __rtruediv__(self, o: Any) -> Sym:
        return self.tape.step(_DIV, o, self)

    def __neg__(self) -> Sym:
        return self.tape.step(_NEG, self)

    def __pos__(self) -> Sym:
        return self

    def _refuse(self, *_: Any) -> Any:
        raise NotRepriceable("a recorded energy was used for something other than + - * / "
                             "(a comparison, a conversion or a decision)")

    __bool__ = __float__ = __int__ = __index__ = __round__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = __floordiv__ = __rfloordiv__ = __mod__ = _refuse
    __pow__ = __rpow__ = __abs__ = __floor__ = __ceil__ = __trunc__ = _refuse
    __hash__ = None  # type: ignore[assignment]


def _operand(tape: Tape, x: Any) -> int | float:
    """A step's operand: a symbol's index, or a number as the float Python would compute with."""
    if isinstance(x, Sym):
        if x.tape is not tape:
            raise NotRepriceable("symbols of two recordings mixed")
        return x.index
    if isinstance(x, (bool, np.bool_, int, float, np.integer)):
        # an int meets a float as float(int) in Python and numpy alike (correctly rounded); np.float64
        # is a float; narrower floats (float32: numpy would compute in float32) are refused below
        return float(x)
    raise NotRepriceable(f"a recorded energy met a {type(x).__name__} (only Python and float64 numbers "
                         "replay bit for bit)")


_LOCAL = threading.local()  # .recording: (architecture, its symbolic prices) while recording


@contextlib.contextmanager
def recording(arch: Architecture) -> Iterator[Tape]:
    """While the block runs, :func:`prices` of this architecture object, in this thread, are symbols
    on the yielded tape, and any other architecture's prices are refused. The replay must run in this
    thread (``simulate(..., workers=1)``); other threads keep plain prices."""
    if getattr(_LOCAL, "recording", None) is not None:
        raise RuntimeError("a price recording is already active in this thread")
    tape = Tape()
    _LOCAL.recording = (arch, {key: tape.leaf(key) for key in price_table(arch)})
    try:
        yield tape
    finally:
        _LOCAL.recording = None


def price_arrays(archs_: Iterable[Architecture], keys: Iterable[Key]) -> dict[Key, np.ndarray]:
    """``{key: (points,) float64}``: the prices of several architectures, one array per key (the
    table :meth:`Tape.evaluate` takes). ``KeyError`` when one lacks a key."""
    tables = [price_table(a) for a in archs_]
    return {k: np.array([float(t[k]) for t in tables], dtype=np.float64) for k in keys}


def without_prices(data: Any) -> Any:
    """A plain (``archs.to_dict``) architecture with every :data:`PRICE_FIELDS` entry removed: what
    decides its timing."""
    if isinstance(data, dict):
        return {k: without_prices(v) for k, v in data.items() if k not in PRICE_FIELDS}
    if isinstance(data, list):
        return [without_prices(v) for v in data]
    return data
