"""The trace manifest: format constants, a builder and the checks a loader applies.

The manifest is ``manifest.json`` in the trace directory. Its fields are documented in
``docs/trace-format.md``; this module is the executable form of that document.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from .digest import check_files_field
from .errors import TraceFormatError
from .kinds import KINDS_BEFORE_V4
from .layer import MAX_BATCH, LayerSpec
from .vector_ops import check_vector_ops

FORMAT_NAME = "hwsim-trace"
# 2: counts-only iterations may share a batch file (iter-FIRST-LAST.counts.npz); 3: layers name
# their weight parameter (one update per parameter), dtypes the autocast dtype; 4: layer kind
# matmul (a product of two activations, both masks per sample, the optional attention field); 5: the
# manifest's files table seals every iteration file by its digest (traces.format.digest)
FORMAT_VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)  # older traces read unchanged (a layer's parameter: its module's weight)
MANIFEST_NAME = "manifest.json"

# Per layer, one count per tensor in this order (-1: not present in that iteration).
TENSORS = ("x", "w", "y", "y_sel", "y_out", "dy", "dx", "dw", "dw_needed")
TENSOR_INDEX = {t: i for i, t in enumerate(TENSORS)}
# Tensors whose masks are stored as packed bits on mask iterations (dw: counts only).
MASK_TENSORS = ("x", "w", "y", "y_sel", "y_out", "dy", "dx", "dw_needed")

LAYOUT_BEFORE_V4 = {
    "conv2d_activation": "NCHW",
    "conv2d_weight": "(K_out, C_in/groups, R, S)",
    "linear_activation": "(N, ..., features)",
    "linear_weight": "(out_features, in_features)",
    "flatten": "C-order (row-major) over the full tensor shape",
    "bit_order": "little: bit i of byte j is element 8*j+i; pad bits are 0",
    "mask_batch": "activation and gradient masks hold the first mask_batch samples",
}
LAYOUT = {
    **LAYOUT_BEFORE_V4,
    "matmul_operands": "x (N, *batch, M, K), w (N, *batch, K, N_out), y (N, *batch, M, N_out): "
                       "both operands per sample",
}


def layout_of(version: int) -> dict[str, str]:
    """The layout conventions a trace of format ``version`` declares."""
    return LAYOUT if version >= 4 else LAYOUT_BEFORE_V4

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "producer": dict,
    "model": dict,
    "method": dict,
    "dataset": dict,
    "seed": (int, type(None)),
    "batch_size": (int, type(None)),
    "optimizer": (dict, type(None)),
    "dtypes": dict,
    "layout": dict,
    "tensors": list,
    "layers": list,
    "schedule": dict,
    "complete": bool,
}
# the dtypes a manifest names (activation, gradient: as the first recorded call computed them;
# autocast: null without torch.autocast) and the names they may take (PyTorch's, without "torch.")
DTYPE_KEYS = ("activation", "weight", "gradient", "autocast", "stored_weights")
DTYPE_NAMES = frozenset({"float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz",
                         "float8_e5m2", "float8_e5m2fnuz", "int64", "int32", "int16", "int8", "uint8",
                         "bool", "complex64", "complex128"})
# fields a manifest may hold beyond REQUIRED (files: required from format 5); any other is refused
OPTIONAL = ("iterations", "vector_ops", "files")


def producer_versions() -> dict[str, str]:
    """Versions of the software that wrote a trace (torch only if it is already imported)."""
    import sys

    import numpy as np

    out = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        out["hwsim"] = metadata.version("hwsim")
    except metadata.PackageNotFoundError:
        out["hwsim"] = "unknown"
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].__version__
    return out


def new_manifest(
    layers: list[LayerSpec],
    *,
    model: dict[str, Any],
    method: dict[str, Any],
    dataset: dict[str, Any],
    schedule: dict[str, Any],
    seed: int | None = None,
    batch_size: int | None = None,
    optimizer: dict[str, Any] | None = None,
    dtypes: dict[str, str] | None = None,
    vector_ops: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build a manifest dict (``complete`` is False until the writer closes the trace);
    ``vector_ops``: the step's counted non-GEMM work (:mod:`traces.format.vector_ops`), if taken."""
    extra = {} if vector_ops is None else {"vector_ops": vector_ops}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "producer": producer_versions(),
        "model": model,
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "dtypes": dtypes or {"activation": "float32", "weight": "float32",
                             "gradient": "float32", "stored_weights": "float16"},
        "layout": dict(LAYOUT),
        "tensors": list(TENSORS),
        "layers": [s.to_dict(batch_size or 1) for s in layers],
        "schedule": schedule,
        "complete": False,
        "iterations": None,
        **extra,
        "files": {},  # filled by the writer with the files it wrote (traces.format.digest)
    }


def check_manifest(d: object, file: Path) -> list[LayerSpec]:
    """Raise :class:`TraceFormatError` on the first problem; return the layer table."""
    if not isinstance(d, dict):
        raise TraceFormatError(file, "(top level)", type(d).__name__, "a JSON object")
    if d.get("format") != FORMAT_NAME:
        raise TraceFormatError(file, "format", repr(d.get("format")), repr(FORMAT_NAME))
    version = d.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        *older, last = map(str, READABLE_VERSIONS)
        readable = f"{', '.join(older)} or {last}" if older else last
        raise TraceFormatError(
            file, "format_version", repr(version),
            f"{readable} (this hwsim reads trace formats {readable}; "
            "re-record the trace or use the hwsim that wrote it)",
        )
    for key, typ in REQUIRED.items():
        if key not in d:
            raise TraceFormatError(file, key, "nothing (field missing)", "a value")
        if not isinstance(d[key], typ) or (typ is int and isinstance(d[key], bool)):
            names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            raise TraceFormatError(file, key, type(d[key]).__name__, names)
    unknown = sorted(set(d) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise TraceFormatError(file, unknown[0], "a field this reader does not know",
                               "only the fields of docs/trace-format.md "
                               f"({', '.join([*REQUIRED, *OPTIONAL])}); "
                               "a newer hwsim may have written it: read it with that version")
    if d["tensors"] != list(TENSORS):
        raise TraceFormatError(file, "tensors", d["tensors"], list(TENSORS))
    layout = layout_of(version)
    for key in [*layout, *sorted(set(d["layout"]) - set(layout))]:
        if d["layout"].get(key) != layout.get(key):
            raise TraceFormatError(file, f"layout.{key}", repr(d["layout"].get(key)),
                                   f"{layout[key]!r}, the convention this reader reads" if key in layout
                                   else f"only the conventions {', '.join(layout)} "
                                   f"(format_version {version})")
    _check_fields(d, file)
    check_files_field(d.get("files"), file, version)
    if "vector_ops" in d:
        if version < 4:
            raise TraceFormatError(file, "vector_ops", "a vector_ops table in a version "
                                   f"{version} manifest", "none before format 4 (which added it)")
        problem = check_vector_ops(d["vector_ops"])
        if problem:
            raise TraceFormatError(file, f"vector_ops{problem[0]}", problem[1],
                                   "rows as in docs/trace-format.md (vector_ops)")
    layers: list[LayerSpec] = []
    names: set[str] = set()
    shapes: dict[str, tuple[int, ...]] = {}  # weight shape per parameter
    for i, entry in enumerate(d["layers"]):
        where = f"layers[{i}]"
        try:
            spec = LayerSpec.from_dict(entry)
        except ValueError as exc:
            field, _, msg = str(exc).partition(": ")
            raise TraceFormatError(file, f"{where}.{field}", msg,
                                   "a layer entry as in docs/trace-format.md") from None
        except TypeError as exc:
            raise TraceFormatError(file, where, str(exc).replace("LayerSpec.__init__() ", ""),
                                   "a layer entry as in docs/trace-format.md") from None
        if version < 4 and (spec.kind not in KINDS_BEFORE_V4 or spec.attention is not None):
            field = "kind" if spec.kind not in KINDS_BEFORE_V4 else "attention"
            raise TraceFormatError(file, f"{where}.{field}", repr(getattr(spec, field)),
                                   f"{' or '.join(KINDS_BEFORE_V4)} layers without attention in a trace of "
                                   f"format_version {version} (format 4 added matmul layers)")
        problems = spec.check() or spec.check_batch(d["batch_size"] or MAX_BATCH)
        if problems:
            raise TraceFormatError(file, f"{where}.{problems[0].split(':')[0]}",
                                   problems[0].split(": ", 1)[1], "a consistent layer geometry")
        _check_gemm(entry, spec, d["batch_size"] or 1, file, where)
        if spec.name in names:
            raise TraceFormatError(file, f"{where}.name", repr(spec.name), "a unique layer name")
        names.add(spec.name)
        layers.append(spec)
        if not spec.has_weight:
            continue
        first = shapes.setdefault(spec.weight_name, spec.w_shape)
        if first != spec.w_shape:
            raise TraceFormatError(file, f"{where}.w_shape", list(spec.w_shape),
                                   f"{list(first)}, the shape of parameter {spec.weight_name!r} "
                                   "in an earlier layer (layers naming one parameter share its weight)")
    return layers


def _check_gemm(entry: dict[str, Any], spec: LayerSpec, batch: int, file: Path, where: str) -> None:
    """A layer's ``gemm`` (derived, for information) is what its geometry gives at ``batch_size``."""
    if "gemm" not in entry:
        return
    expected = spec.to_dict(batch)["gemm"]
    if entry["gemm"] != expected:
        raise TraceFormatError(file, f"{where}.gemm", repr(entry["gemm"])[:80],
                               f"{expected} (per pass [M, K, N, groups] for the layer at batch_size {batch})")


def _check_fields(d: dict[str, Any], file: Path) -> None:
    """The fields replay, info and stats read, beyond their JSON types."""
    batch = d["batch_size"]
    if batch is not None and not 1 <= batch <= MAX_BATCH:
        raise TraceFormatError(file, "batch_size", batch, "a positive number of samples, at most 2**20, "
                               "or null")
    for key in ("model", "method", "dataset"):
        if not isinstance(d[key].get("name"), str):
            raise TraceFormatError(file, f"{key}.name", repr(d[key].get("name")), "text")
    unknown = [k for k in d["method"] if k not in ("name", "params", "results")]
    if unknown:  # a method's invariants are read from its params: a misspelt key would skip them
        raise TraceFormatError(file, f"method.{unknown[0]}", "a key this reader does not know",
                               "only name, params and results")
    params = d["method"].get("params")
    if params is not None and not isinstance(params, dict):
        raise TraceFormatError(file, "method.params", type(params).__name__, "a JSON object or null")
    opt = d["optimizer"]
    if opt is not None:
        if not isinstance(opt.get("name"), str):
            raise TraceFormatError(file, "optimizer.name", repr(opt.get("name")), "text")
        if not isinstance(opt.get("params"), dict):
            raise TraceFormatError(file, "optimizer.params", repr(opt.get("params")), "a JSON object")
        n = opt.get("state_tensors")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 64):
            raise TraceFormatError(file, "optimizer.state_tensors", repr(n),
                                   "weight-shaped state tensors per weight, 0..64, or absent")
        ops = opt.get("update_ops_per_weight")
        if ops is not None and (isinstance(ops, bool) or not isinstance(ops, (int, float))
                                or not 0 <= ops <= 1024):
            raise TraceFormatError(file, "optimizer.update_ops_per_weight", repr(ops),
                                   "element operations per weight of one optimizer step, 0..1024, or absent")
    unknown = [k for k in d["dtypes"] if k not in DTYPE_KEYS]
    if unknown:
        raise TraceFormatError(file, f"dtypes.{unknown[0]}", "a key this reader does not know",
                               f"only {', '.join(DTYPE_KEYS)}")
    bad = {k: v for k, v in d["dtypes"].items()
           if (not isinstance(v, str) or v not in DTYPE_NAMES) and (k, v) != ("autocast", None)}
    if bad:
        key = next(iter(bad))
        raise TraceFormatError(file, f"dtypes.{key}", repr(bad[key]), "a dtype name such as 'float32'")
    samples = d["schedule"].get("mask_samples")
    if samples is not None and (not isinstance(samples, int) or isinstance(samples, bool) or samples < 1):
        raise TraceFormatError(file, "schedule.mask_samples", repr(samples), "a positive integer or null")
    its = d.get("iterations")
    if its is not None and (not isinstance(its, int) or isinstance(its, bool) or its < 0):
        raise TraceFormatError(file, "iterations", repr(its), "the number of iterations recorded, or null")
