"""The sweep spec: traces × designs (a base architecture, axes, constraints) × options.

Read from YAML as strictly as an architecture (``archs.loader``): unknown keys with a
did-you-mean, every problem with its dotted path, all problems raised together as one
:class:`archs.ConfigError`. Every axis value is checked by building the variant of the base
architecture it names (``archs.replace``), and every constraint is parsed (:mod:`.expr`) and its
names resolved against the base, when the spec is read — before anything runs.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import archs
from archs import Architecture, ConfigError
from archs.loader import parse_yaml, read_config
from hwsim.engines import BACKEND_NAMES
from traces.format.layer import PASSES

from .expr import Expression, ExpressionError
from .fields import field_values

FORMAT_VERSION = 1
SAMPLING_METHODS = ("grid", "random", "lhs")
TOP_KEYS = ("version", "name", "traces", "designs", "options")
TRACE_KEYS = ("path", "label", "synthetic")
SYNTH_KEYS = ("layers", "density", "batch", "iterations", "seed", "per_channel")
DESIGN_KEYS = ("base", "label", "axes", "derive", "constraints", "sampling")
SAMPLING_KEYS = ("method", "samples", "seed")
RANGE_KEYS = ("min", "max", "steps", "log", "integer")
OPTION_KEYS = ("passes", "iterations", "backend")


@dataclass(frozen=True)
class TraceSource:
    """A trace of the sweep: a directory, or a synthetic trace drawn from a layer table."""

    label: str
    path: Path | None = None
    synthetic: dict[str, Any] | None = None  # layers (layer-table rows), density, batch, iterations, seed


@dataclass(frozen=True)
class Axis:
    """One swept field: explicit ``values``, or a numeric range ``low..high`` (``log``: geometric;
    ``integer``: rounded; ``steps``: the grid's number of values)."""

    path: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    steps: int | None = None
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Sampling:
    """How a design's points are drawn: ``grid`` (every combination), ``random`` or ``lhs``
    (Latin hypercube: ``samples`` points, one per stratum of every axis), seeded."""

    method: str = "grid"
    samples: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class Design:
    """A base architecture with the axes swept over it."""

    label: str
    base: str
    arch: Architecture
    axes: tuple[Axis, ...]
    derive: tuple[tuple[str, Expression], ...] = ()
    constraints: tuple[Expression, ...] = ()
    sampling: Sampling = Sampling()


@dataclass(frozen=True)
class Options:
    """Simulation options every point shares (part of each point's key)."""

    passes: tuple[str, ...] = PASSES
    iterations: tuple[int, ...] | None = None  # None: every iteration with exact masks
    backend: str = "analytic"

    def as_dict(self) -> dict[str, Any]:
        return {"passes": list(self.passes), "iterations": None if self.iterations is None
                else list(self.iterations), "backend": self.backend}


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep: every trace × every point of every design."""

    name: str
    traces: tuple[TraceSource, ...]
    designs: tuple[Design, ...]
    options: Options = Options()
    text: str = field(default="", compare=False)  # the YAML it was read from (stored beside the results)


# -- reading -------------------------------------------------------------------------------------------

def load_spec(path: str | Path) -> SweepSpec:
    """Read a sweep spec file; relative trace paths are relative to the file."""
    p = Path(path)
    text = read_config(p)
    return spec_from_dict(parse_yaml(text, str(p)), source=str(p), root=p.parent, text=text)


def spec_from_dict(data: Any, *, source: str = "<sweep>", root: Path | None = None,
                   text: str = "") -> SweepSpec:
    """Build a :class:`SweepSpec` from plain data; raise ConfigError with every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping with {', '.join(TOP_KEYS)}"], source)
    _unknown(data, TOP_KEYS, "", problems)
    version = data.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        problems.append(f"version: must be {FORMAT_VERSION}, got {version!r}" if version is not None
                        else f"version: missing; put 'version: {FORMAT_VERSION}' at the top")
    name = data.get("name", "sweep")
    if not isinstance(name, str) or not name:
        problems.append(f"name: expected text, got {name!r}")
        name = "sweep"
    sources = _traces(data.get("traces"), root or Path("."), problems)
    designs = _designs(data.get("designs"), root or Path("."), problems)
    options = _options(data.get("options", {}), problems)
    if problems:
        raise ConfigError(problems, source)
    return SweepSpec(name, sources, designs, options, text)


def _unknown(data: dict, known: tuple[str, ...], path: str, problems: list[str]) -> None:
    for key in data:
        if key not in known:
            guess = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}?" if guess else f"known keys: {', '.join(known)}"
            problems.append(f"{path}{'.' if path else ''}{key}: unknown key; {hint}")


def _traces(raw: Any, root: Path, problems: list[str]) -> tuple[TraceSource, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("traces: expected a list of at least one trace ({path: DIR} or {synthetic: ...})")
        return ()
    out: list[TraceSource] = []
    for i, t in enumerate(raw):
        where = f"traces[{i}]"
        if isinstance(t, str):
            t = {"path": t}
        if not isinstance(t, dict):
            problems.append(f"{where}: expected a mapping with path or synthetic, got {t!r}")
            continue
        _unknown(t, TRACE_KEYS, where, problems)
        if ("path" in t) == ("synthetic" in t):
            problems.append(f"{where}: give exactly one of path or synthetic")
            continue
        if "path" in t:
            p = Path(str(t["path"]))
            p = p if p.is_absolute() else root / p
            if not (p / "manifest.json").is_file():
                problems.append(f"{where}.path: {p} is not a trace directory (no manifest.json); record one "
                                "with `hwsim train` or make one with `hwsim trace synth`")
            out.append(TraceSource(str(t.get("label") or p.name), path=p))
        else:
            synth = _synthetic(t["synthetic"], f"{where}.synthetic", problems)
            out.append(TraceSource(str(t.get("label") or f"synthetic-{i}"), synthetic=synth))
    labels = [s.label for s in out]
    for i, lab in enumerate(labels):
        if lab in labels[:i]:
            problems.append(f"traces[{i}].label: {lab!r} is used twice; give each trace its own label")
    return tuple(out)


def _synthetic(raw: Any, where: str, problems: list[str]) -> dict[str, Any]:
    from .traces import check_synthetic  # layer-table parsing lives with the trace maker

    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping with {', '.join(SYNTH_KEYS)}")
        return {}
    _unknown(raw, SYNTH_KEYS, where, problems)
    return check_synthetic(raw, where, problems)


def _designs(raw: Any, root: Path, problems: list[str]) -> tuple[Design, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append("designs: expected a list of at least one design ({base: PRESET, axes: {...}})")
        return ()
    out = []
    for i, d in enumerate(raw):
        where = f"designs[{i}]"
        if not isinstance(d, dict):
            problems.append(f"{where}: expected a mapping with base and axes")
            continue
        _unknown(d, DESIGN_KEYS, where, problems)
        design = _design(d, where, root, problems)
        if design is not None:
            out.append(design)
    return tuple(out)


def _design(d: dict, where: str, root: Path, problems: list[str]) -> Design | None:
    base = d.get("base")
    if not isinstance(base, str):
        problems.append(f"{where}.base: expected a preset name or an architecture file, got {base!r}")
        return None
    target = base if base in archs.PRESETS or Path(base).is_absolute() else str(root / base)
    if not Path(target).exists():
        target = base  # a preset name (or a missing file): archs.load says which, with a did-you-mean
    try:
        arch = archs.load(target)
    except ConfigError as exc:
        problems += [f"{where}.base: {p}" for p in exc.problems]
        return None
    before = len(problems)
    axes = _axes(d.get("axes", {}), arch, f"{where}.axes", problems)
    known = field_values(arch)
    derive = []
    raw_derive = d.get("derive", {})
    if not isinstance(raw_derive, dict):
        problems.append(f"{where}.derive: expected a mapping of field path to expression")
        raw_derive = {}
    for path, text in raw_derive.items():
        sub = f"{where}.derive.{path}"
        try:
            ex = Expression(text)
            ex.check_names(known)
        except ExpressionError as exc:
            problems.append(f"{sub}: {exc}")
            continue
        if not _path_ok(arch, str(path), sub, problems):
            continue
        derive.append((str(path), ex))
    constraints = []
    raw_cons = d.get("constraints", [])
    if isinstance(raw_cons, str):
        raw_cons = [raw_cons]
    if not isinstance(raw_cons, list):
        problems.append(f"{where}.constraints: expected a list of expressions")
        raw_cons = []
    for j, text in enumerate(raw_cons):
        try:
            ex = Expression(text)
            ex.check_names(known)
            ex(known)  # type errors (text compared with a number) show now, on the base
        except ExpressionError as exc:
            problems.append(f"{where}.constraints[{j}]: {exc}")
            continue
        constraints.append(ex)
    sampling = _sampling(d.get("sampling", {}), axes, f"{where}.sampling", problems)
    if len(problems) > before:
        return None
    return Design(str(d.get("label") or base), base, arch, axes, tuple(derive), tuple(constraints), sampling)


def _axes(raw: Any, arch: Architecture, where: str, problems: list[str]) -> tuple[Axis, ...]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping of field path to values")
        return ()
    out = []
    for path, spec in raw.items():
        sub = f"{where}.{path}"
        if not _path_ok(arch, str(path), sub, problems):
            continue
        if isinstance(spec, list):
            if not spec:
                problems.append(f"{sub}: empty axis; give at least one value")
                continue
            ok = [_check_value(arch, str(path), v, f"{sub}[{i}]", problems) for i, v in enumerate(spec)]
            if all(ok):
                out.append(Axis(str(path), values=tuple(spec)))
        elif isinstance(spec, dict):
            _unknown(spec, RANGE_KEYS, sub, problems)
            low, high = spec.get("min"), spec.get("max")
            nums = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
            if not nums:
                problems.append(f"{sub}: a range needs numeric min and max, got min={low!r}, max={high!r}")
                continue
            if low > high:
                problems.append(f"{sub}: min {low} is above max {high}")
                continue
            log, integer = bool(spec.get("log", False)), bool(spec.get("integer", False))
            if log and low <= 0:
                problems.append(f"{sub}: a log range needs min > 0, got {low}")
                continue
            steps = spec.get("steps")
            if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
                problems.append(f"{sub}.steps: expected a positive integer, got {steps!r}")
                continue
            inner = low + 0.37 * (high - low)  # a value between the ends: int fields need integer: true
            ok = _check_value(arch, str(path), int(low) if integer else low, f"{sub}.min", problems)
            ok = ok and _check_value(arch, str(path), int(high) if integer else high, f"{sub}.max", problems)
            ok = ok and (integer or inner == int(inner) or _check_value(
                arch, str(path), inner, f"{sub} (add integer: true for this integer field)", problems))
            if ok:
                out.append(Axis(str(path), low=float(low), high=float(high), steps=steps, log=log,
                                integer=integer))
        else:
            problems.append(f"{sub}: expected a list of values or a range {{min, max}}, got {spec!r}")
    return tuple(out)


def _check_value(arch: Architecture, path: str, value: Any, where: str, problems: list[str]) -> bool:
    """Whether ``path = value`` makes a valid variant of ``arch``; else record why at ``where``."""
    try:
        archs.replace(arch, {path: value})
    except ConfigError as exc:
        for p in exc.problems:
            head, _, rest = p.partition(": ")
            problems.append(f"{where}: {rest}" if head == path else f"{where}: {p}")
        return False
    return True


def _path_ok(arch: Architecture, path: str, where: str, problems: list[str]) -> bool:
    """Whether ``path`` names a field of ``arch`` (a did-you-mean problem at ``where`` if not)."""
    known = field_values(arch, derived=False)
    if path in known:
        return True
    guess = difflib.get_close_matches(path, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {guess[0]!r}?" if guess else "see `hwsim archs show` for the fields"
    problems.append(f"{where}: no field {path!r} in {arch.name}; {hint}")
    return False


def _sampling(raw: Any, axes: tuple[Axis, ...], where: str, problems: list[str]) -> Sampling:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping with method, samples, seed")
        return Sampling()
    _unknown(raw, SAMPLING_KEYS, where, problems)
    method = raw.get("method", "grid")
    if method not in SAMPLING_METHODS:
        guess = difflib.get_close_matches(str(method), SAMPLING_METHODS, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        problems.append(f"{where}.method: must be one of {', '.join(SAMPLING_METHODS)}, got {method!r}{hint}")
        return Sampling()
    samples = raw.get("samples")
    if method == "grid":
        if samples is not None:
            problems.append(f"{where}.samples: a grid takes every combination; "
                            "drop samples or use random/lhs")
        for a in axes:
            if a.values is None and a.steps is None:
                problems.append(f"{where}: grid axis {a.path!r} is a range without steps; add steps: N")
    elif not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        problems.append(f"{where}.samples: {method} sampling needs a positive number of samples, "
                        f"got {samples!r}")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        problems.append(f"{where}.seed: expected a non-negative integer, got {seed!r}")
        seed = 0
    return Sampling(str(method), samples if isinstance(samples, int) else None, seed)


def _options(raw: Any, problems: list[str]) -> Options:
    if not isinstance(raw, dict):
        problems.append("options: expected a mapping with passes, iterations, backend")
        return Options()
    _unknown(raw, OPTION_KEYS, "options", problems)
    passes = raw.get("passes", list(PASSES))
    if not isinstance(passes, list) or not passes:
        problems.append(f"options.passes: expected a list of passes from {', '.join(PASSES)}")
        passes = list(PASSES)
    for i, p in enumerate(passes):
        if p not in PASSES:
            guess = difflib.get_close_matches(str(p), PASSES, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            problems.append(f"options.passes[{i}]: unknown pass {p!r}{hint}; passes are {', '.join(PASSES)}")
    its = raw.get("iterations")
    if its is not None and (not isinstance(its, list)
                            or not all(isinstance(i, int) and not isinstance(i, bool) for i in its)):
        problems.append(f"options.iterations: expected a list of iteration numbers, got {its!r}")
        its = None
    backend = raw.get("backend", "analytic")
    if backend not in BACKEND_NAMES:
        problems.append(f"options.backend: must be one of {', '.join(BACKEND_NAMES)}, got {backend!r}")
        backend = "analytic"
    return Options(tuple(p for p in passes if p in PASSES), None if its is None else tuple(its), backend)
