"""The GPU model against ``tests/data/gpu_published.csv``: one model value per published point.

Each row names a preset, a library, a kind of measurement and a shape (``m × k × n``: ``m`` rows of
the dense operand, ``k`` the reduction, ``n`` the weight's output features; for 2:4 the weight,
``k × n``, is the sparse operand ``b``), and the published value in ``unit`` (``ms``, ``tflops``: FLOPs
``2·m·k·n`` per second over the GEMM, or ``x``: a speedup). Kinds:

- ``gemm``: one dense GEMM; ``time_24``: one 2:4 GEMM; ``speedup_24``: dense over 2:4, one GEMM;
- ``linear_train`` / ``linear_train_speedup_24``: one ``nn.Linear``'s (with bias) forward,
  backward-data and backward-weight GEMMs and its bias-gradient reduction (torchao's benchmark: with
  2:4, forward and backward-data run sparse and the weight is pruned and compressed every step, both
  orientations);
- ``mlp_train`` / ``mlp_train_speedup_24``: two such linears, ``k → n → k``, plus the activation's
  forward and backward memory kernels;
- ``spmm_a``: an unstructured SpMM, operand ``a`` (``m × k``) sparse at ``density``, CSR built before
  the timing (no conversion).

``split`` is ``fit`` (a fitted constant of ``archs/gpu_presets.py`` was fitted on the row),
``holdout`` (kept out of every fit) or ``excluded``: kept out of every fit *and* of the group
statistics, for a reason its ``convention`` states with a citation (a measurement that is not the
GEMM-only quantity the group bounds); the per-point listing still prints it with its error.

Errors compare times (``model / published − 1`` for a time or a rate, ``model / published − 1`` of
the speedups). GPU kernel time only: the published numbers include host overheads that the model
leaves out, which matters only for the shortest kernels (docs/gpu.md, "Validation").

Run ``python -m tests.hwsim.gpu.published`` for the table (``--docs docs/gpu.md``: rewrite the
table there, ``make gpu-validation``; ``--fit``: the fitted constants).
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import archs
from archs import Architecture
from hwsim.gpu.gemm import Operands, gemm_cost
from hwsim.gpu.kernels import memory_kernel_cycles
from hwsim.gpu.sparse import compress_cycles, spmm_cost, structured_gemm

SPUTNIK_DENSITIES = (0.125, 0.25, 0.375, 0.5)  # the knots of the Sputnik curve: the measured levels

CSV = Path(__file__).resolve().parents[2] / "data" / "gpu_published.csv"
DENSE = Operands(2, 2, 2)
ELEMENT_BYTES = 2  # FP16/BF16 GEMMs
DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4}


@dataclass(frozen=True)
class Point:
    """One published measurement (a row of the CSV)."""

    id: str
    preset: str
    group: str  # dense | 2:4 | unstructured
    library: str
    dtype: str
    kind: str
    m: int
    k: int
    n: int
    density: float
    measured: float
    unit: str
    split: str  # fit | holdout | excluded
    source: str
    convention: str = ""  # what was timed, and for an excluded row why it is excluded (with a citation)


def load(path: Path = CSV) -> list[Point]:
    with path.open(newline="") as f:
        return [Point(r["id"], r["preset"], r["group"], r["library"], r["dtype"], r["kind"], int(r["m"]),
                      int(r["k"]), int(r["n"]), float(r["density"]), float(r["measured"]), r["unit"],
                      r["split"], r["source"], r["convention"]) for r in csv.DictReader(f)]


def _arch(p: Point, overrides: dict | None = None) -> Architecture:
    """The point's preset with its library chosen (``cutlass-profiler``: CUTLASS's profiler picks
    the best of its kernels, so no fixed tile) and ``overrides`` (dotted paths; ``KNOT@density`` sets
    one knot of the Sputnik curve) applied."""
    return _variant(p.preset, p.group, p.library, p.dtype, tuple(sorted((overrides or {}).items())))


@lru_cache(maxsize=1024)
def _variant(preset: str, group: str, library: str, dtype: str, overrides: tuple) -> Architecture:
    changes = {}
    if group in ("dense", "2:4") and dtype in ("fp16", "bf16"):  # the tensor-core GEMMs' operand data
        changes["gpu.operand_dtype"] = dtype
    for key, value in overrides:
        if key.startswith(KNOT):
            density = float(key.removeprefix(KNOT))
            curve = archs.PRESETS[preset].sparse.kernel_efficiency
            changes["sparse.kernel_efficiency"] = [
                {"density": q.density, "efficiency": value if q.density == density else q.efficiency}
                for q in curve]
        else:
            changes[key] = value
    if group == "2:4":
        changes["sparse.structured.library"] = "cutlass" if library == "cutlass-profiler" else library
        if library == "cutlass-profiler":
            changes.update({"sparse.structured.kernel_tile_m": 0, "sparse.structured.kernel_tile_n": 0,
                            "sparse.structured.split_k": True})
    if group == "unstructured":
        changes["sparse.unstructured_library"] = library
    arch = archs.PRESETS[preset]
    return archs.replace(arch, changes) if changes else arch


def _seconds(arch: Architecture, cycles: float) -> float:
    return cycles / arch.clock_hz


def _dense(arch: Architecture, m: int, k: int, n: int) -> int:
    return gemm_cost(arch, m, k, n, DENSE).cycles


def _sparse(arch: Architecture, m: int, k: int, n: int) -> int:
    nm = structured_gemm(arch, m, k, n, ELEMENT_BYTES)
    return nm.gemm.cycles + nm.pad_cycles


def _linear_train(arch: Architecture, m: int, k: int, n: int, sparse: bool, bias: bool = False) -> int:
    """Forward (m×k×n), backward-data (m×n×k, Wᵀ 2:4 too: a transposable mask) and backward-weight
    (k×m×n, dense) of one linear layer; with ``sparse``, the prune-and-compress kernel of both
    orientations; with ``bias``, the bias gradient: a reduction kernel that reads dY (``m × n``)
    and writes ``n`` values (``nn.Linear``'s backward runs it; the forward's bias add is fused)."""
    step = _sparse if sparse else _dense
    cycles = step(arch, m, k, n) + step(arch, m, n, k) + _dense(arch, k, m, n)
    if sparse:
        cycles += compress_cycles(arch, n * k, ELEMENT_BYTES, copies=2)[0]
    if bias:
        cycles += memory_kernel_cycles(arch, (m * n + n) * ELEMENT_BYTES, ops=m * n)
    return cycles


def _activation(arch: Architecture, m: int, n: int) -> int:
    """The activation between the MLP's linears: forward reads and writes ``m × n``; backward reads
    the input and the gradient and writes the gradient."""
    elems = m * n
    return (memory_kernel_cycles(arch, 2 * elems * ELEMENT_BYTES, ops=elems)
            + memory_kernel_cycles(arch, 3 * elems * ELEMENT_BYTES, ops=elems))


def model_value(p: Point, overrides: dict | None = None) -> float:
    """The model's value of point ``p``, in the point's unit (``overrides``: spec fields to change)."""
    arch = _arch(p, overrides)
    m, k, n = p.m, p.k, p.n
    if p.kind == "speedup_24":
        return _dense(arch, m, k, n) / _sparse(arch, m, k, n)
    if p.kind == "linear_train_speedup_24":
        return _linear_train(arch, m, k, n, False, bias=True) / _linear_train(arch, m, k, n, True, bias=True)
    if p.kind == "mlp_train_speedup_24":
        act = _activation(arch, m, n)
        dense = _linear_train(arch, m, k, n, False) + _linear_train(arch, m, n, k, False) + act
        sparse = _linear_train(arch, m, k, n, True) + _linear_train(arch, m, n, k, True) + act
        return dense / sparse
    if p.kind == "gemm":
        cycles = _dense(arch, m, k, n)
    elif p.kind == "time_24":
        cycles = _sparse(arch, m, k, n)
    elif p.kind == "linear_train":
        cycles = _linear_train(arch, m, k, n, False, bias=True)
    elif p.kind == "mlp_train":
        cycles = (_linear_train(arch, m, k, n, False) + _linear_train(arch, m, n, k, False)
                  + _activation(arch, m, n))
    elif p.kind == "spmm_a":
        nnz = round(p.density * m * k)
        cycles = spmm_cost(arch, m, k, n, nnz, "a", DTYPE_BYTES[p.dtype], convert=False).cycles
    else:
        raise ValueError(f"{p.id}: unknown kind {p.kind!r}")
    seconds = _seconds(arch, cycles)
    if p.unit == "ms":
        return seconds * 1e3
    if p.unit == "tflops":
        return 2 * m * k * n / seconds / 1e12
    raise ValueError(f"{p.id}: unit {p.unit!r} does not fit kind {p.kind!r}")


def error(p: Point, overrides: dict | None = None) -> float:
    """Relative error of the model's time (or speedup): a rate's error is inverted into time."""
    model = model_value(p, overrides)
    if p.unit == "tflops":  # time = work / rate
        return p.measured / model - 1
    return model / p.measured - 1


def published_ms(p: Point) -> float:
    """The published time of a GEMM point, ms (a rate converted with ``2·m·k·n`` FLOPs)."""
    return 2 * p.m * p.k * p.n / (p.measured * 1e12) * 1e3 if p.unit == "tflops" else p.measured


def group_of(p: Point) -> str:
    """The acceptance group of a point: dense by card and size, 2:4 by library and card, unstructured
    by library and density."""
    card = p.preset
    if p.group == "dense":
        size = "≥0.5ms" if published_ms(p) >= 0.5 else "<0.5ms"
        return f"dense {card} {size}"
    if p.group == "2:4":
        return f"2:4 {p.library} {card.split('-')[1]}"
    return f"unstructured {p.library} d={p.density:g}"


def summary(points: list[Point]) -> dict[str, dict[str, float]]:
    """Per group: count, mean absolute error, median absolute error, for all points and for the held-out
    points alone; ``excluded`` points are counted (``n_excluded``) but left out of every statistic."""
    out: dict[str, dict[str, float]] = {}
    groups: dict[str, list[Point]] = {}
    for p in points:
        groups.setdefault(group_of(p), []).append(p)
    for name, pts in sorted(groups.items()):
        errs = [abs(error(p)) for p in pts if p.split != "excluded"]
        held = [abs(error(p)) for p in pts if p.split == "holdout"]
        out[name] = {"n": len(errs), "mae": statistics.fmean(errs), "median": statistics.median(errs),
                     "n_holdout": len(held), "mae_holdout": statistics.fmean(held) if held else float("nan"),
                     "median_holdout": statistics.median(held) if held else float("nan"),
                     "n_excluded": sum(p.split == "excluded" for p in pts)}
    return out


def target_of(group: str) -> tuple[str, float] | None:
    """The issue's acceptance target of a group: (statistic, bound), or None (no target: too few
    points, or a card/library the issue does not bound)."""
    if group.startswith("dense "):
        return ("mae", 0.10) if group.endswith("≥0.5ms") else ("mae", 0.20)
    if group in ("2:4 cutlass a100", "2:4 cusparselt a100"):
        return ("mae", 0.10)
    if group.startswith("unstructured sputnik"):
        return ("median", 0.15)
    return None


def markdown_table(points: list[Point]) -> str:
    """The validation table of docs/gpu.md (``make gpu-validation`` rewrites it there): per group, its
    points, MAE (or median for unstructured groups) over all and over held-out points, the target, and
    the excluded points (left out of the statistics; docs/gpu.md says why)."""
    rows = ["| group | points | all: MAE | all: median | held-out | held-out MAE | held-out median "
            "| target | excluded |", "|---|---|---|---|---|---|---|---|---|"]
    for name, st in summary(points).items():
        target = target_of(name)
        if target is None:
            verdict = "none"
        else:
            stat, bound = target
            held = st[f"{stat}_holdout"] if st["n_holdout"] else st[stat]
            met = st[stat] <= bound and held <= bound
            verdict = f"{stat} ≤ {bound:.0%}: {'met' if met else '**missed**'}"
            if not st["n_holdout"]:
                verdict += " (fit points only: not validated)"
        held_mae = f"{st['mae_holdout']:.1%}" if st["n_holdout"] else "—"
        held_med = f"{st['median_holdout']:.1%}" if st["n_holdout"] else "—"
        rows.append(f"| {name} | {st['n']:.0f} | {st['mae']:.1%} | {st['median']:.1%} | "
                    f"{st['n_holdout']:.0f} | {held_mae} | {held_med} | {verdict} | {st['n_excluded']:.0f} |")
    return "\n".join(rows) + "\n"


TABLE_BEGIN = "<!-- gpu-validation-table: generated by `make gpu-validation`, do not edit -->\n"
TABLE_END = "<!-- end gpu-validation-table -->\n"


def docs_with_table(text: str, table: str) -> str:
    """``text`` (docs/gpu.md) with the block between the table markers replaced by ``table``."""
    head, _, rest = text.partition(TABLE_BEGIN)
    _, _, tail = rest.partition(TABLE_END)
    if not rest:
        raise ValueError(f"docs/gpu.md: no {TABLE_BEGIN.strip()!r} marker")
    return head + TABLE_BEGIN + table + TABLE_END + tail


KNOT = "sputnik_knot@"  # an override key: one knot of the Sputnik curve, by its density

# What each fitted constant of archs/gpu_presets.py is fitted on: (constant, spec field, presets,
# point filter). Fitted in this order (later fits use the earlier values: the 2:4 speedups need the
# dense times), each on the ``fit`` points of its presets and group only.
FITS = (
    ("AMPERE_DENSE_EFFICIENCY", "gpu.tensor_core_efficiency", ("gpu-a100",), "dense"),
    ("A100_PCIE_SUSTAINED_CLOCK_FRACTION", "gpu.sustained_clock_fraction", ("gpu-a100-80gb-pcie",), "dense"),
    ("HOPPER_DENSE_EFFICIENCY", "gpu.tensor_core_efficiency", ("gpu-h100",), "dense@bf16"),
    ("H100_PCIE_SUSTAINED_CLOCK_FRACTION", "gpu.sustained_clock_fraction", ("gpu-h100-pcie",), "dense@bf16"),
    ("HOPPER_SXM_FP16_CLOCK_RATIO", "gpu.fp16_clock_ratio", ("gpu-h100",), "dense@fp16"),
    ("H100_PCIE_FP16_CLOCK_RATIO", "gpu.fp16_clock_ratio", ("gpu-h100-pcie",), "dense@fp16"),
    ("AMPERE_CUTLASS_24_EFFICIENCY", "sparse.structured.cutlass_efficiency", ("gpu-a100",), "2:4/cutlass"),
    ("AMPERE_CUSPARSELT_24_EFFICIENCY", "sparse.structured.cusparselt_efficiency", ("gpu-a100",),
     "2:4/cusparselt"),
    *((f"SPUTNIK_CURVE[{i}]", f"{KNOT}{d}", ("gpu-a100-80gb-pcie",), f"unstructured/sputnik/{d}")
      for i, d in enumerate(SPUTNIK_DENSITIES)),
)


def preset_constant(name: str) -> float:
    """The value archs/gpu_presets.py carries for a FITS name (``NAME`` or ``NAME[i]``)."""
    from archs import gpu_presets

    base, _, index = name.partition("[")
    value = getattr(gpu_presets, base)
    return value[int(index.rstrip("]"))] if index else value


def fit_points(points: list[Point], presets: tuple[str, ...], what: str) -> list[Point]:
    """The ``fit`` rows of ``presets`` in ``what`` (``group``, ``group/library`` or
    ``group/library/density``, optionally ``@dtype``)."""
    what, _, dtype = what.partition("@")
    group, library, density = ([*what.split("/"), "", ""])[:3]
    return [p for p in points if p.split == "fit" and p.preset in presets and p.group == group
            and (not library or p.library == library) and (not density or p.density == float(density))
            and (not dtype or p.dtype == dtype)]


def search_range(field: str) -> tuple[float, float]:
    """Where ``fit_one`` looks for a field's value: a Sputnik knot, or an efficiency or clock fraction."""
    return (1e-3, 0.1) if field.startswith(KNOT) else (0.3, 1.0)  # 1e-3: the spec's lowest efficiency


def fit_one(points: list[Point], field: str, lo: float, hi: float) -> float:
    """The value of ``field`` in ``[lo, hi]`` at which the fit points' signed error is zero on average
    (the median for unstructured points, whose target is a median; bisection: every error is monotone
    in an efficiency or a clock)."""
    average = statistics.median if points[0].group == "unstructured" else statistics.fmean

    def mean_error(value: float) -> float:
        return average([error(p, {field: value}) for p in points])

    rising = mean_error(hi) > mean_error(lo)
    for _ in range(30):
        mid = (lo + hi) / 2
        if (mean_error(mid) > 0) == rising:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


if __name__ == "__main__":
    import sys

    pts = load()
    if sys.argv[1:2] == ["--docs"]:  # rewrite the validation table of docs/gpu.md
        doc = Path(sys.argv[2])
        doc.write_text(docs_with_table(doc.read_text(), markdown_table(pts)))
        sys.exit(0)
    if sys.argv[1:] == ["--fit"]:  # the values archs/gpu_presets.py carries, recomputed
        for name, field, presets, what in FITS:
            chosen = fit_points(pts, presets, what)
            names = ", ".join(p.id for p in chosen) if len(chosen) <= 4 else \
                f"{len(chosen)} points, {chosen[0].id}, ..."
            print(f"{name} = {fit_one(chosen, field, *search_range(field)):.4g}  # on {names}")
        sys.exit(0)
    for p in pts:
        print(f"{p.id:28s} {p.split:7s} {group_of(p):32s} published {p.measured:10.4g} {p.unit:6s} "
              f"model {model_value(p):10.4g}  error {error(p):+7.1%}")
    print()
    for name, s in summary(pts).items():
        print(f"{name:34s} n={s['n']:3.0f} MAE {s['mae']:6.1%} median {s['median']:6.1%}   held-out "
              f"n={s['n_holdout']:3.0f} MAE {s['mae_holdout']:6.1%} median {s['median_holdout']:6.1%}")
