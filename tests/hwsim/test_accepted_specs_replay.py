"""Every spec that ``archs`` validation accepts replays without overflow, NaN, a negative number or a
traceback (issue 22, item 4; docs/architecture.md: "whatever validate accepts, replay runs without an
integer overflow").

Hypothesis changes one to four fields of a preset at a time, each to a value inside the range the
field accepts (``gt``/``ge``/``le`` in ``archs/components.py``, :data:`archs.fields.MAX_NUMBER` where it
has no ``le``), favouring the ends of the range where overflows live; literal fields take their other
choices, booleans flip. A spec the loader refuses (a cross-field rule) is skipped; one it accepts is
replayed on a small synthetic trace, every pass, with numpy's warnings (an overflowing cast, an
invalid value) raised as errors. A replay may refuse a machine in one clean line (``MappingError``:
nothing fits the buffers), never otherwise. Derandomized: the same cases every run.
"""

from __future__ import annotations

import dataclasses
import math
import typing
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archs
from archs import ConfigError
from archs.fields import MAX_NUMBER
from archs.loader import from_dict, to_dict
from hwsim.errors import MappingError
from hwsim.simulate import simulate
from traces.synth import conv, linear, write_synthetic

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted(p.stem for p in (REPO / "archs" / "presets").glob("*.yaml"))
EXAMPLES_PER_PRESET = 20
PROPERTY = settings(derandomize=True, deadline=None, database=None, max_examples=EXAMPLES_PER_PRESET,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    layers = [conv("conv", 3, 8, 8, 8, 3, padding=1), linear("fc", 8 * 8 * 8, 10)]
    return write_synthetic(layers, tmp_path_factory.mktemp("specs") / "t.trace", batch=2,
                           density={"x": 0.5, "w": 0.4, "dy": 0.3}, seed=0)


def _unwrap(tp: object) -> object:
    if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def leaves(obj: object, path: tuple = ()) -> typing.Iterator[tuple[tuple, object, dataclasses.Field]]:
    """(path in to_dict's data, type, field) of every scalar field of a built architecture."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, tp = getattr(obj, f.name), _unwrap(hints[f.name])
        if dataclasses.is_dataclass(value):
            yield from leaves(value, (*path, f.name))
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                yield from leaves(item, (*path, f.name, i))
        elif tp in (int, float, bool) or typing.get_origin(tp) is typing.Literal:
            yield (*path, f.name), tp, f


def values_for(tp: object, f: dataclasses.Field) -> st.SearchStrategy:
    """Values the field accepts on its own, its range's ends first."""
    if tp is bool:
        return st.booleans()
    if typing.get_origin(tp) is typing.Literal:
        return st.sampled_from(typing.get_args(tp))
    meta = f.metadata
    hi = meta.get("le") if meta.get("le") is not None else MAX_NUMBER
    if tp is int:
        lo = int(meta["gt"]) + 1 if meta.get("gt") is not None else int(meta.get("ge") or 0) \
            if meta.get("ge") is not None else -int(min(hi, 2**62))
        hi = int(min(hi, 2**62))
        return st.one_of(st.sampled_from([lo, hi, min(lo + 1, hi), max(lo, min(hi, 2**31))]),
                         st.integers(lo, hi))
    lo_open = meta.get("gt") is not None
    lo = float(meta["gt"] if lo_open else meta["ge"] if meta.get("ge") is not None else -hi)
    tiny = math.nextafter(lo, math.inf) if lo_open else lo
    ends = [hi, tiny, lo + 1e-300 if lo_open else lo, max(tiny, min(hi, 1e-30 + lo))]
    return st.one_of(st.sampled_from(ends), st.floats(lo, hi, exclude_min=lo_open, allow_nan=False),
                     st.builds(lambda e: min(hi, max(tiny, lo + 10.0**e)), st.integers(-300, 30)))


def _set(data: dict, path: tuple, value: object) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _numbers(df) -> tuple[list[str], np.ndarray]:
    numeric = df.select_dtypes(include=[np.number, "bool"])
    return list(numeric.columns), numeric.to_numpy(dtype=np.float64)


# a ratio, its numerator and its denominator
RATIOS = {"speedup": ("dense_cycles", "cycles"), "energy_saving": ("dense_energy_pj", "energy_pj")}


def _check_frame(df, base_nan: dict[str, np.ndarray], where: str) -> None:
    """No infinity and no negative number anywhere; NaN only where the unchanged preset's replay has
    it too (a column that does not apply to a pass, e.g. the update pass's tiles), never in a ratio:
    0/0 (a pass that costs nothing either way, on a machine whose price for it is 0) is 1.0, and x/0
    is x (over one unit of the denominator)."""
    columns, values = _numbers(df)
    for c, col in zip(columns, values.T, strict=True):
        assert not np.isinf(col).any(), f"{where}: infinite {c}"
        nan = np.isnan(col)
        allowed = base_nan.get(c, np.zeros(len(col), dtype=bool))
        if c in RATIOS and all(k in df for k in RATIOS[c]):
            num, den = (df[k].to_numpy() for k in RATIOS[c])
            assert (col[(num == 0) & (den == 0)] == 1.0).all(), f"{where}: 0/0 in {c} is not 1.0"
            x_over_0 = (den == 0) & (num != 0)
            assert (col[x_over_0] == num[x_over_0]).all(), f"{where}: x/0 in {c} is not x"
            allowed = np.zeros(len(col), dtype=bool)
        ok = len(allowed) == len(col) and not (nan & ~allowed).any()
        assert not nan.any() or ok, \
            f"{where}: NaN in {c}"
        assert (col[~nan] >= 0).all(), f"{where}: negative {c}: {col[~nan].min()}"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_accepted_spec_replays_cleanly(trace, preset):
    base = archs.load(preset)
    fields = list(leaves(base))
    assert len(fields) > 20
    columns, values = _numbers(simulate(trace, base, workers=1).to_frame())
    base_nan = {c: np.isnan(col) for c, col in zip(columns, values.T, strict=True)}

    @PROPERTY
    @given(st.data())
    def case(data):
        picks = data.draw(st.lists(st.sampled_from(range(len(fields))), min_size=1, max_size=4, unique=True))
        doc = to_dict(base)
        doc["version"] = 1
        changes = {}
        for i in picks:
            path, tp, f = fields[i]
            value = data.draw(values_for(tp, f), label=".".join(map(str, path)))
            _set(doc, path, value)
            changes[".".join(map(str, path))] = value
        try:
            arch = from_dict(doc, "fuzz")
        except ConfigError:
            return  # refused by a cross-field rule: nothing to replay
        where = f"{preset} with {changes}"
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # overflowing casts, invalid values
            try:
                report = simulate(trace, arch, workers=1)
            except MappingError:
                return  # a clean refusal: nothing fits this machine
            except ValueError as exc:  # any other refusal must at least be a user error of one line
                assert "\n" not in str(exc), f"{where}: {exc}"
                raise AssertionError(f"{where}: accepted by validation, refused by replay: {exc}") from None
            df = report.to_frame()
        _check_frame(df, base_nan, where)
        assert (df["cycles"] >= 0).all() and (df["cycles"] < 2**62).all(), where

    case()
