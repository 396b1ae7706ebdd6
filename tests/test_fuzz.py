"""Fuzzing the command line: mutated specs, manifests, iteration files and options.

Every case runs the CLI in-process and asserts: no traceback (an exception out of ``main`` fails the
case), a refusal is exit 2 with one ``hwsim: error:`` line (argparse's usage errors also exit 2), no
hang (a per-case alarm), exit 0 never on an input the oracle knows is invalid, exit 0 on inputs it
knows are valid, and whatever ``validate`` accepts, ``replay`` runs (exit 0).

The oracle is independent of the checks it tests: it labels each mutation from the documented
rules (a field's type and ``gt``/``ge``/``le`` bounds in ``archs/components.py``, the trace format in
``docs/trace-format.md``, the CLI's documented options) as ``invalid`` (must be refused), ``valid``
(must be accepted) or ``unknown`` (a change the single-field rules cannot judge, e.g. a name that a
link refers to: either outcome is right, but an accepted one must replay).

Hypothesis is derandomized (the same cases every run). Counts per corpus are printed by the last test
(``pytest -s tests/test_fuzz.py``); at the time of writing (cases / rejected / accepted / tracebacks):
specs 250 / 228 / 22 / 0, manifests 200 / 144 / 56 / 0, iteration files 120 / 98 / 22 / 0,
options 200 / 180 / 20 / 0; no invalid input accepted, no valid one refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import shutil
import signal
import traceback
import types
import typing
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archs import Architecture, units
from archs.fields import MAX_NUMBER
from hwsim.cli import main
from hwsim.cli.replay import PASS_NAMES
from hwsim.simulate import FAMILIES
from traces.format.digest import file_digest
from traces.format.manifest import MASK_TENSORS

from .traces.helpers import write_trace

REPO = Path(__file__).resolve().parents[1]
PRESET_DIR = REPO / "archs" / "presets"
PRESETS = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
SIMULATED = tuple(FAMILIES)  # families hwsim replays (others are refused with one line)
CASE_TIMEOUT_S = 30
COUNTS: dict[str, Counter] = {c: Counter() for c in ("specs", "manifests", "iteration files", "options")}
FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Hang(Exception):
    """A case ran past CASE_TIMEOUT_S."""


def cli(args: list[str]) -> tuple[int, str]:
    """Run ``hwsim ARGS`` in-process; return (status, stderr). An exception out of main fails the case."""
    out, err = io.StringIO(), io.StringIO()

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"hwsim {' '.join(args)} ran past {CASE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(args)
            except SystemExit as exc:  # argparse: a usage error
                status = exc.code if isinstance(exc.code, int) else 2
    except Hang:
        raise
    except BaseException:
        pytest.fail(f"traceback from hwsim {args}:\n{traceback.format_exc()}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    text = err.getvalue()
    assert "Traceback" not in text, text
    if status != 0:
        assert status == 2, (args, status, text)
        first, *rest = text.splitlines() or [""]
        if first.startswith("usage:"):  # argparse: usage lines, then "hwsim ...: error: ..."
            assert rest and "error:" in rest[-1], text
        else:
            assert first.startswith("hwsim: error:") and all(r.startswith("  ") for r in rest), text
    return status, text


def judge(corpus: str, label: str, status: int, what: object, text: str) -> None:
    """Count the case and hold it to the oracle's label."""
    COUNTS[corpus]["cases"] += 1
    COUNTS[corpus]["accepted" if status == 0 else "rejected"] += 1
    COUNTS[corpus][f"{label} {'accepted' if status == 0 else 'rejected'}"] += 1
    if label == "invalid":
        assert status != 0, f"accepted an invalid input: {what}"
    elif label == "valid":
        assert status == 0, f"refused a valid input: {what}\n{text}"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A tiny trace (2 iterations with masks: a conv and a linear layer) and a scratch directory."""
    base = tmp_path_factory.mktemp("fuzz")
    write_trace(base / "tiny", n_iter=2, batch=2, mask_every=1)
    return base


def replay_runs(trace: Path, arch: str = "edge-npu") -> None:
    """What validate accepted, replay runs: exit 0."""
    status, text = cli(["replay", str(trace), "--arch", arch])
    assert status == 0, f"validated, but replay refused it:\n{text}"


# -- (a) architecture specs ----------------------------------------------------------------------

def _pick(data: st.DataObject, doc: object) -> tuple[tuple, object, object]:
    """A drawn leaf path of ``doc``, the container holding it, and its last key."""
    path = data.draw(st.sampled_from(list(_paths(doc))))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    return path, parent, path[-1]


def _paths(node: object, prefix: tuple = ()) -> typing.Iterator[tuple]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _optional(tp: object) -> tuple[object, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def _field_at(path: tuple) -> tuple[object, dataclasses.Field | None, bool] | None:
    """(type, field, optional) of the spec value at ``path``, or None where the path is not a field."""
    tp: object = Architecture
    field = None
    optional = False
    for part in path:
        tp, _ = _optional(tp)
        if isinstance(part, int):
            if typing.get_origin(tp) is not tuple:
                return None
            tp, optional = typing.get_args(tp)[0], False
            continue
        if not dataclasses.is_dataclass(tp):
            return None
        fields = {f.name: f for f in dataclasses.fields(tp)}
        if part not in fields:
            return None
        field = fields[part]
        tp, optional = _optional(typing.get_type_hints(tp)[part])
    return tp, field, optional


def _number_label(value: object, tp: type, field: dataclasses.Field) -> str:
    if isinstance(value, str):
        try:
            value = units.parse(value, field.name)
        except ValueError:
            return "invalid"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "invalid"
    if isinstance(value, int) and abs(value) > MAX_NUMBER:
        return "invalid"
    if not math.isfinite(value) or (tp is int and float(value) != int(value)):
        return "invalid"
    meta = field.metadata
    le = meta.get("le") if meta.get("le") is not None else MAX_NUMBER
    if (meta.get("gt") is not None and not value > meta["gt"]) or \
            (meta.get("ge") is not None and not value >= meta["ge"]) or value > le:
        return "invalid"
    return "unknown"  # in range; cross-field rules may still refuse it


def _set_label(path: tuple, value: object) -> str:
    if path == ("version",):
        return "unknown" if value == 1 and not isinstance(value, bool) else "invalid"
    found = _field_at(path)
    if found is None:
        return "unknown"
    tp, field, optional = found
    if value is None:
        return "unknown" if optional else "invalid"
    if tp in (int, float):
        return _number_label(value, tp, field)
    if typing.get_origin(tp) is typing.Literal:
        return "unknown" if isinstance(value, str) and value in typing.get_args(tp) else "invalid"
    if tp is str:
        return "unknown" if isinstance(value, str) else "invalid"
    if tp is bool:
        return "unknown" if isinstance(value, bool) else "invalid"
    if typing.get_origin(tp) is tuple:
        return "unknown" if isinstance(value, list) else "invalid"
    if dataclasses.is_dataclass(tp):
        return "unknown" if isinstance(value, dict) else "invalid"
    return "unknown"


SPEC_VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, 1, -1, 2, 16, 0.5, -0.5, 1e20, 1e300, 10**400, 2**20 + 1,
                     2**40 + 1, float("nan"), float("inf"), float("-inf"), "garbage", "128 KiB", "1 GHz",
                     "nan", "1e400", "-3 pJ", "ws", "systolic", "a", "dram", [], ["a", "a"], {}, {"x": 1}]),
    st.integers(-10**6, 10**7), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6))
CONTROL = [chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127)]
KEY_LINE = r"^( *)([a-z_]+):"


def _mutate_spec(data: st.DataObject, text: str) -> tuple[str, str, str]:
    """(mutated text, label, description)."""
    import re

    kind = data.draw(st.sampled_from(["set", "set", "set", "delete", "rename", "duplicate", "control", "tab",
                                      "noop", "truncate", "dup_operand", "conflict_format"]))
    if kind == "noop":
        return text, "valid", "unchanged"
    if kind in ("duplicate", "tab"):
        lines = text.split("\n")
        keyed = [i for i, line in enumerate(lines) if re.match(KEY_LINE, line)]
        i = data.draw(st.sampled_from(keyed))
        if kind == "duplicate":
            lines.insert(i + 1, lines[i])
        else:
            lines[i] = "\t" + lines[i]
        return "\n".join(lines), "invalid", f"{kind} line {i + 1}: {lines[i]!r}"
    if kind == "control":
        at = data.draw(st.integers(0, len(text)))
        char = data.draw(st.sampled_from(CONTROL))
        return text[:at] + char + text[at:], "invalid", f"control {char!r} at {at}"
    if kind == "truncate":
        at = data.draw(st.integers(0, len(text) - 1))
        return text[:at], "unknown", f"truncated at {at}"
    doc = yaml.safe_load(text)
    if kind == "dup_operand":
        mem = data.draw(st.sampled_from(doc["memories"]))
        mem["operands"].append(data.draw(st.sampled_from(mem["operands"])))
        return yaml.safe_dump(doc), "invalid", f"operand twice in {mem['name']}"
    if kind == "conflict_format":
        held = [(m["name"], op) for m in doc["memories"] for op in m["operands"]]
        level, operand = data.draw(st.sampled_from(held))
        for fmt in ("bitmap", "rle"):
            doc["sparse"]["formats"].append({"level": level, "operand": operand, "format": fmt})
        return yaml.safe_dump(doc), "invalid", f"two formats for {operand} at {level}"
    path, parent, last = _pick(data, doc)
    if kind == "set":
        value = data.draw(SPEC_VALUES)
        old = parent[last]
        parent[last] = value
        same = type(old) is type(value) and (old == value or repr(old) == repr(value))
        label = "valid" if same else _set_label(path, value)
        return yaml.safe_dump(doc, allow_unicode=True), label, f"set {path} = {value!r}"
    if isinstance(parent, list):  # delete or "rename" a list element: drop it
        del parent[last]
        return yaml.safe_dump(doc), "unknown", f"dropped {path}"
    if kind == "delete":
        del parent[last]
        found = _field_at(path)
        required = path == ("version",) or (found is not None and found[1] is not None
                                            and found[1].default is dataclasses.MISSING)
        return yaml.safe_dump(doc), "invalid" if required else "unknown", f"deleted {path}"
    new = data.draw(st.text(min_size=1, max_size=8))
    value = parent.pop(last)
    if new == last:
        label = "valid"
    elif new in parent:
        label = "unknown"
    else:
        label = "invalid"  # an unknown key (and, for a required field, a missing one)
    parent[new] = value
    return yaml.safe_dump(doc, allow_unicode=True), label, f"renamed {path} to {new!r}"


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_fuzz_specs(work, data):
    name = data.draw(st.sampled_from(PRESETS))
    text, label, what = _mutate_spec(data, (PRESET_DIR / f"{name}.yaml").read_text())
    spec = work / "spec.yaml"
    spec.write_bytes(text.encode("utf-8", "surrogatepass"))
    status, err = cli(["archs", "validate", str(spec)])
    judge("specs", label, status, f"{name}: {what}", err)
    if status == 0:
        family = yaml.safe_load(text)["family"]
        status, err = cli(["replay", str(work / "tiny"), "--arch", str(spec),
                           "--passes", "fwd,bwd-weight,update"])
        if family in SIMULATED:  # a valid machine may still be too small for a layer: one clean line
            assert status == 0 or "does not fit" in err, err
        else:
            assert status == 2 and "not simulated yet" in err, err


# -- (b) trace manifests -------------------------------------------------------------------------

LAYER_INTS = ("x_shape", "w_shape", "y_shape")
PAIRS = {"stride": 1, "padding": 0, "dilation": 1}
TEXT_FIELDS = ("name", "kind", "module", "module_type")
REQUIRED = ("format", "format_version", "producer", "model", "method", "dataset", "seed", "batch_size",
            "optimizer", "dtypes", "layout", "tensors", "layers", "schedule", "complete")
LAYER_REQUIRED = ("name", "kind", "module", "call", "module_type", *LAYER_INTS)
LAYER_KEYS = (*LAYER_REQUIRED, *PAIRS, "groups", "bias", "gemm")


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _has_nonfinite(v: object) -> bool:
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, dict):
        return any(_has_nonfinite(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_nonfinite(x) for x in v)
    return False


def _manifest_set_label(doc: dict, path: tuple, value: object) -> str:
    if _has_nonfinite(value):
        return "invalid"  # NaN and Infinity are not trace numbers
    top = path[0]
    if top == "format_version":  # formats 1-4 are still read, but declare no files table (format 5's)
        return "valid" if _int(value) and value == 5 else "invalid"
    if top in ("format", "tensors", "files"):  # files: each iteration file's digest (no value is one)
        return "invalid"
    if len(path) == 1:
        if top == "batch_size":
            return "unknown" if value is None or (_int(value) and 1 <= value <= 2**20) else "invalid"
        if top == "complete":
            return "unknown" if isinstance(value, bool) else "invalid"
        if top == "seed":
            return "unknown" if value is None or _int(value) else "invalid"
        if top in ("producer", "model", "method", "dataset", "dtypes", "layout", "schedule"):
            return "unknown" if isinstance(value, dict) else "invalid"
        if top == "layers":
            return "unknown" if isinstance(value, list) else "invalid"
        if top == "optimizer":
            return "unknown" if value is None or isinstance(value, dict) else "invalid"
        return "unknown"
    if top in ("model", "method", "dataset") and path[1:] == ("name",):
        return "unknown" if isinstance(value, str) else "invalid"
    if top != "layers":
        return "unknown"
    if len(path) == 2:
        return "unknown" if isinstance(value, dict) else "invalid"
    layer = doc["layers"][path[1]]
    key = path[2]
    conv = layer.get("kind") == "conv2d"
    if len(path) == 3:
        if key in LAYER_INTS:
            ok = isinstance(value, list) and value and all(_int(v) and v >= 1 for v in value)
            return "unknown" if ok else "invalid"
        if key in PAIRS:
            if not (isinstance(value, list) and all(_int(v) for v in value)):
                return "invalid"
            if conv and (len(value) != 2 or any(v < PAIRS[key] for v in value)):
                return "invalid"
            return "unknown"
        if key == "groups":
            return "unknown" if _int(value) and value >= 1 and (conv or value == 1) else "invalid"
        if key == "call":
            return "unknown" if _int(value) and value >= 0 else "invalid"
        if key == "bias":
            return "unknown" if isinstance(value, bool) else "invalid"
        if key in TEXT_FIELDS:
            if key == "kind":
                return "unknown" if value in ("conv2d", "linear") else "invalid"
            return "unknown" if isinstance(value, str) else "invalid"
        return "unknown"  # gemm: derived, ignored
    if key in LAYER_INTS:  # one dimension
        return "unknown" if _int(value) and value >= 1 else "invalid"
    if key in PAIRS:
        return "unknown" if _int(value) and (not conv or value >= PAIRS[key]) else "invalid"
    return "unknown"


MANIFEST_VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, 1, -1, 2, 3, -4, 0.5, 1.0, 2**20 + 1, 2**31, 10**30,
                     float("nan"), float("inf"), "", "x", "conv2d", "linear", [], [1], [1, 1], [1, 1, 1],
                     [0, 1], [2, 2], {}, {"name": "x"}]),
    st.integers(-5, 40), st.text(max_size=5))


def _mutate_manifest(data: st.DataObject, text: str) -> tuple[str, str, str]:
    kind = data.draw(st.sampled_from(["set", "set", "set", "delete", "rename", "noop", "control", "truncate",
                                      "duplicate", "nonfinite"]))
    if kind == "noop":
        return text, "valid", "unchanged"
    if kind == "control":
        at = data.draw(st.integers(0, len(text)))
        char = data.draw(st.sampled_from([c for c in CONTROL if c not in "\t\n\r"]))
        return text[:at] + char + text[at:], "invalid", f"control {char!r} at {at}"
    if kind == "truncate":
        at = data.draw(st.integers(0, len(text.rstrip()) - 1))
        return text[:at], "invalid", f"truncated at {at}"
    if kind == "duplicate":
        key = data.draw(st.sampled_from(REQUIRED))
        return text.replace("{", f'{{"{key}": null, ', 1), "invalid", f"{key} twice"
    if kind == "nonfinite":
        word = data.draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        return text.replace('"batch_size": 2', f'"batch_size": {word}', 1), "invalid", f"batch_size {word}"
    doc = json.loads(text)
    path, parent, last = _pick(data, doc)
    if kind == "set":
        value = data.draw(MANIFEST_VALUES)
        old = parent[last]
        same = type(old) is type(value) and old == value
        label = "valid" if same else _manifest_set_label(doc, path, value)
        parent[last] = value
        return json.dumps(doc), label, f"set {path} = {value!r}"
    if isinstance(parent, list):
        del parent[last]
        return json.dumps(doc), "unknown", f"dropped {path}"
    in_layer = len(path) == 3 and path[0] == "layers"
    if kind == "delete":
        del parent[last]
        required = (len(path) == 1 and last in REQUIRED) or (in_layer and last in LAYER_REQUIRED) or \
            (len(path) == 2 and path[0] in ("model", "method", "dataset") and last == "name") or \
            path[0] == "files"  # a complete trace's file without its digest
        return json.dumps(doc), "invalid" if required else "unknown", f"deleted {path}"
    new = data.draw(st.text(min_size=1, max_size=6))
    value = parent.pop(last)
    parent[new] = value
    if new == last:
        label = "valid"
    elif in_layer and new not in LAYER_KEYS:
        label = "invalid"  # an unknown layer field
    elif (len(path) == 1 and last in REQUIRED) or (in_layer and last in LAYER_REQUIRED):
        label = "invalid"  # a required field is gone
    elif path[0] == "files":
        label = "invalid"  # a file's digest under another name
    else:
        label = "unknown"
    return json.dumps(doc), label, f"renamed {path} to {new!r}"


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_fuzz_manifests(work, data):
    trace = work / "m.trace"
    shutil.rmtree(trace, ignore_errors=True)
    shutil.copytree(work / "tiny", trace)
    text, label, what = _mutate_manifest(data, (trace / "manifest.json").read_text())
    (trace / "manifest.json").write_text(text)
    status, err = cli(["trace", "validate", str(trace)])
    judge("manifests", label, status, what, err)
    if status == 0:
        replay_runs(trace)
        status, err = cli(["trace", "info", str(trace)])
        assert status == 0, err


# -- (c) iteration files -------------------------------------------------------------------------

def _rewrite_npz(path: Path, change: typing.Callable[[dict[str, np.ndarray]], None]) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _digest_changed(trace: Path, file: Path) -> bool:
    """The file is still a zip whose digest (its zip structure) is not the recorded one."""
    try:
        found = file_digest(file)
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    return found != json.loads((trace / "manifest.json").read_text())["files"][file.name]


def _set_meta(key: str, value: object) -> typing.Callable[[dict], None]:
    def change(arrays: dict) -> None:
        meta = json.loads(arrays["meta"].tobytes())
        meta[key] = value
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return change


def _mutate_iteration(data: st.DataObject, path: Path) -> tuple[str, str]:
    kind = data.draw(st.sampled_from(["truncate", "flip", "drop", "junk", "garbage", "empty", "meta",
                                      "counts", "noop", "mask dtype"]))
    raw = path.read_bytes()
    if kind == "noop":
        return "valid", "unchanged"
    if kind == "truncate":
        at = data.draw(st.integers(0, len(raw) - 1))
        path.write_bytes(raw[:at])
        return "invalid", f"truncated to {at} of {len(raw)} bytes"
    if kind == "flip":
        buf = bytearray(raw)
        spots = data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8))
        for at in spots:
            buf[at] ^= 0xFF
        path.write_bytes(bytes(buf))
        return "unknown", f"flipped bytes {spots}"
    if kind == "garbage":
        path.write_bytes(data.draw(st.binary(min_size=1, max_size=200)))
        return "invalid", "random bytes"
    if kind == "empty":
        path.write_bytes(b"")
        return "invalid", "empty file"
    with np.load(path) as z:
        members = sorted(z.files)
    if kind == "drop":
        name = data.draw(st.sampled_from(members))
        _rewrite_npz(path, lambda a: a.pop(name))
        return "invalid" if name in ("meta", "counts") else "unknown", f"dropped {name}"
    if kind == "junk":
        name = data.draw(st.sampled_from(["junk", "L9.x", "L0.zz", "Lx.x"]))
        _rewrite_npz(path, lambda a: a.__setitem__(name, np.zeros(3, dtype=np.uint8)))
        return "invalid", f"added {name}"
    if kind == "mask dtype":
        name = data.draw(st.sampled_from([m for m in members if m.split(".")[-1] in MASK_TENSORS]))
        _rewrite_npz(path, lambda a: a.__setitem__(name, a[name].astype(np.int64)))
        return "invalid", f"{name} as int64"
    if kind == "counts":
        value = data.draw(st.sampled_from([-5, 10**12, 0]))
        at = data.draw(st.tuples(st.integers(0, 1), st.integers(0, 8)))
        _rewrite_npz(path, lambda a: a["counts"].__setitem__(at, value))
        return "invalid" if value in (-5, 10**12) else "unknown", f"counts{at} = {value}"
    key = data.draw(st.sampled_from(["batch", "mask_batch", "has_masks"]))
    value = data.draw(st.sampled_from([0, -1, 2, 3, 2**30, "2", None, True, 1.5, [2]]))
    _rewrite_npz(path, _set_meta(key, value))
    if key == "batch":
        label = "invalid" if not _int(value) or value < 1 or value > 2**20 else "unknown"
    elif key == "mask_batch":
        label = "unknown" if value is None or (_int(value) and 1 <= value <= 2) else "invalid"
    else:
        label = "unknown"
    return label, f"meta.{key} = {value!r}"


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_fuzz_iteration_files(work, data):
    trace = work / "i.trace"
    shutil.rmtree(trace, ignore_errors=True)
    shutil.copytree(work / "tiny", trace)
    target = data.draw(st.sampled_from(sorted(trace.glob("iter-*.npz"))))
    label, what = _mutate_iteration(data, target)
    if label == "unknown" and _digest_changed(trace, target):
        label = "invalid"  # its arrays changed after recording: the manifest's digest refuses it
    status, err = cli(["trace", "validate", str(trace)])
    judge("iteration files", label, status, f"{target.name}: {what}", err)
    if status == 0:
        replay_runs(trace)
    else:
        cli(["replay", str(trace), "--arch", "edge-npu"])  # refused or run, but cleanly


# -- (d) options -----------------------------------------------------------------------------------

PASS_WORDS = ["fwd", "bwd-data", "bwd-weight", "update", "forward", "backward_data", "sideways", "", " ",
              "FWD"]
ARCH_FAMILY = {"edge-npu": "edge_npu", "eyeriss-v2-pe": "edge_npu",
               str(PRESET_DIR / "edge-npu.yaml"): "edge_npu", "edge-npx": None, "gpu-a100": "gpu",
               "reram-isaac": "reram", "missing.yaml": None}
ARCHS = {name: family in SIMULATED for name, family in ARCH_FAMILY.items()}


def _replay_case(data: st.DataObject, work: Path) -> tuple[list[str], str]:
    args = ["replay", str(work / "tiny")]
    valid = True
    arch = data.draw(st.sampled_from(sorted(ARCHS)))
    args += ["--arch", arch]
    valid &= ARCHS[arch]
    if data.draw(st.booleans()):
        words = data.draw(st.lists(st.sampled_from(PASS_WORDS), max_size=4))
        text = data.draw(st.sampled_from([",", ", ", ";"])).join(words)
        args += [f"--passes={text}"]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        valid &= bool(parts) and all(p in PASS_NAMES for p in parts)
        # the tiny trace records neither input nor weight gradients (dx, dw): only forward has work
        valid &= "forward" in {PASS_NAMES.get(p) for p in parts}
    if data.draw(st.booleans()):
        its = data.draw(st.sampled_from(["0", "1", "0,1", "", "2", "-1", "a", "0,,1", "1e3", " 1", "1,0"]))
        args += [f"--iterations={its}"]
        try:
            valid &= not its or all(int(v) in (0, 1) for v in its.split(","))
        except ValueError:
            valid = False
    if data.draw(st.booleans()):
        flow = data.draw(st.sampled_from(["ws", "os", "is", "xs", ""]))
        args += [f"--dataflow={flow}"]
        valid &= flow in ("ws", "os", "is") and ARCH_FAMILY[arch] == "edge_npu"  # PE arrays only
    if data.draw(st.booleans()):
        backend = data.draw(st.sampled_from(["analytic", "event", "fast"]))
        args += ["--backend", backend]
        valid &= backend != "fast"
    if data.draw(st.booleans()):
        (work / "a-file").write_text("")
        (work / "a-dir.csv").mkdir(exist_ok=True)
        outs = {"r.parquet": True, "r.csv": True, "sub/r.csv": True, "r.xlsx": False, "a-dir.csv": False,
                "a-file/r.csv": False, "/proc/hwsim/r.csv": False}
        name = data.draw(st.sampled_from(sorted(outs)))
        out = name
        if not name.startswith("/"):  # writable ones in a directory the writer creates
            out = str(work / "out" / name) if outs[name] else str(work / name)
        args += ["--out", out]
        valid &= outs[name]
    return args, "valid" if valid else "invalid"


def _synth_case(data: st.DataObject, work: Path) -> tuple[list[str], str]:
    table = work / "layers.csv"
    table.write_text("c1,conv2d,2,6,6,3,3,1,1,1\nfc,linear,12,4\n")
    out = work / "synth.trace"
    shutil.rmtree(out, ignore_errors=True)
    args = ["trace", "synth", "--layers", str(table), "--out", str(out)]
    valid = True
    density = data.draw(st.sampled_from(["", "0.5", "x=0.2,w=0.5,dy=0.3", "1", "x=0", "nan", "x=1.5", "q=0.5",
                                         "x=0.2,w", "inf", "-0.1", "x=0.5=1"]))
    args += [f"--density={density}"]
    try:
        from hwsim.cli.trace import parse_density

        dens = parse_density(density)
        valid &= all(k in ("x", "w", "dy") and 0 < v <= 1 for k, v in dens.items())
    except ValueError:
        valid = False
    batch = data.draw(st.sampled_from([-1, 0, 1, 2, 3, 2**20 + 1, 10**30]))
    iterations = data.draw(st.sampled_from([-1, 0, 1, 2]))
    seed = data.draw(st.sampled_from([0, 1, -1, 2**64]))
    args += ["--batch", str(batch), "--iterations", str(iterations), "--seed", str(seed)]
    valid &= 1 <= batch <= 2**20 and iterations >= 1 and seed >= 0
    if data.draw(st.booleans()):
        args.append("--per-channel")
    return args, "valid" if valid else "invalid"


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_fuzz_options(work, data):
    command = data.draw(st.sampled_from(["replay", "replay", "synth", "archs show", "trace info"]))
    if command == "replay":
        args, label = _replay_case(data, work)
    elif command == "synth":
        args, label = _synth_case(data, work)
    elif command == "archs show":
        arch = data.draw(st.sampled_from([*PRESETS, "edge-npx", "missing.yaml", ""]))
        args, label = ["archs", "show", arch], "valid" if arch in PRESETS else "invalid"
    else:
        target = data.draw(st.sampled_from(["tiny", "missing", "layers.csv", "."]))
        (work / "layers.csv").write_text("fc,linear,12,4\n")
        args, label = ["trace", "info", str(work / target)], "valid" if target == "tiny" else "invalid"
    status, err = cli(args)
    judge("options", label, status, args, err)
    if status == 0 and command == "synth":
        status, err = cli(["trace", "validate", str(work / "synth.trace")])
        assert status == 0, err
        replay_runs(work / "synth.trace")


def test_fuzz_counts():
    """The tallies of the corpora that ran in this session (`-s` prints them): each ran its cases,
    refused every invalid input and accepted every valid one. Alone (e.g. `-k counts`) no corpus
    has run, so there is nothing to tally."""
    ran = {corpus: c for corpus, c in COUNTS.items() if c["cases"]}
    if not ran:
        pytest.skip("no fuzz corpus ran in this session: run it with the fuzz tests above")
    print("\nfuzz corpus: cases / rejected / accepted / tracebacks (0: every case asserts none)")
    for corpus, c in ran.items():
        print(f"  {corpus:16s} {c['cases']:4d} / {c['rejected']:4d} / {c['accepted']:4d} / 0   "
              f"(oracle: invalid {c['invalid rejected']} refused, {c['invalid accepted']} accepted; "
              f"valid {c['valid accepted']} accepted, {c['valid rejected']} refused; "
              f"unknown {c['unknown accepted']} accepted, {c['unknown rejected']} refused)")
        assert c["cases"] == c["rejected"] + c["accepted"], corpus
        assert c["invalid accepted"] == 0 and c["valid rejected"] == 0, corpus
        assert c["invalid rejected"] > 0, f"{corpus}: the corpus produced no invalid input to refuse"
    for corpus, c in COUNTS.items():
        assert c["cases"] >= 50, f"{corpus}: only {c['cases']} cases ran (run the whole file)"
        assert c["invalid accepted"] == 0 and c["valid rejected"] == 0
