"""Strict YAML loading and dumping of architectures, and dotted-path variants.

Every problem is collected with its path and raised together as one :class:`ConfigError`:
duplicate keys, unknown keys (with a did-you-mean), wrong types, values out of range, missing
fields, unreadable units, and cross-field inconsistencies.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import units
from .architecture import Architecture
from .errors import ConfigError
from .fields import MAX_NUMBER

FORMAT_VERSION = 1
_BAD = object()  # a value that failed conversion (its problem is already recorded)


# -- YAML with duplicate-key detection ------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate keys instead of silently keeping the last one."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            if key in seen:
                loader.duplicates.append(f"line {line}: duplicate key {key!r} (first at line {seen[key]}); "
                                         "keep one")
            else:
                seen[key] = line
        except TypeError:  # an unhashable key: let the base constructor report it
            break
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML strictly; raise ConfigError on syntax errors, control characters, nesting too
    deep to read and duplicate keys."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # the reader refuses control characters here, before parsing
        data = loader.get_single_data()
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError([f"line {line}: control character {char} is not allowed in YAML; "
                           "remove it (is this a text file?)"], source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{where}YAML syntax error: {problem}"], source) from None
    except RecursionError:
        raise ConfigError(["YAML nested too deeply to read; an architecture is a few levels deep"],
                          source) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.duplicates:
        raise ConfigError(loader.duplicates, source)
    return data


# -- dict -> dataclasses ---------------------------------------------------------------------------

@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def build(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    """Build dataclass ``cls`` from plain data, appending ``path: message`` problems."""
    where = path or "(top level)"
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping of {cls.__name__} fields, got {_show(data)}")
        return _BAD
    fields = {f.name: f for f in dataclasses.fields(cls)}
    before = len(problems)
    for key in data:
        if key not in fields:
            guess = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}?" if guess else f"known keys: {', '.join(fields)}"
            problems.append(f"{_join(path, str(key))}: unknown key; {hint}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING:
                problems.append(f"{sub}: missing; {f.metadata.get('doc', 'required')}")
            continue
        value = convert(_hints(cls)[name], data[name], sub, name, f.metadata, problems)
        if value is not _BAD:
            kwargs[name] = value
    if len(problems) > before:
        return _BAD
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None and cls is not Architecture:  # Architecture is checked by the caller
        problems.extend(f"{_join(path, p)}" for p in check())
    return obj


def convert(tp: Any, raw: Any, path: str, name: str, meta: Any, problems: list[str]) -> Any:
    """Convert one raw YAML value to type ``tp``; on failure record a problem and return _BAD."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if raw is None:
            return None
        return convert(args[0], raw, path, name, meta, problems)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if raw in choices and isinstance(raw, str):
            return raw
        guess = difflib.get_close_matches(str(raw), [str(c) for c in choices], n=1, cutoff=0.5)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        problems.append(f"{path}: must be one of {', '.join(map(repr, choices))}, got {_show(raw)}{hint}")
        return _BAD
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if not isinstance(raw, (list, tuple)):
            problems.append(f"{path}: expected a list, got {_show(raw)}")
            return _BAD
        out = []
        for i, item in enumerate(raw):
            label = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
            sub = f"{path}.{label}" if label else f"{path}[{i}]"
            out.append(convert(item_tp, item, sub, name, meta, problems))
        return _BAD if any(v is _BAD for v in out) else tuple(out)
    if dataclasses.is_dataclass(tp):
        return build(tp, raw, path, problems)
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        problems.append(f"{path}: expected true or false, got {_show(raw)}")
        return _BAD
    if tp is str:
        if isinstance(raw, str):
            return raw
        problems.append(f"{path}: expected text, got {_show(raw)}")
        return _BAD
    if tp in (int, float):
        return _number(tp, raw, path, name, meta, problems)
    problems.append(f"{path}: unsupported type {tp!r}")  # a bug in a component definition
    return _BAD


def _number(tp: type, raw: Any, path: str, name: str, meta: Any, problems: list[str]) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        problems.append(f"{path}: expected {'an integer' if tp is int else 'a number'}, got {_show(raw)}")
        return _BAD
    if isinstance(raw, str):
        try:
            value: float = units.parse(raw, name)
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            return _BAD
    else:
        value = raw
    if isinstance(value, int) and abs(value) > MAX_NUMBER:  # too large even to turn into a float
        problems.append(f"{path}: must be <= {_fmt_bound(meta.get('le') or MAX_NUMBER)}, got {_show(raw)}")
        return _BAD
    if not math.isfinite(value):
        problems.append(f"{path}: must be finite, got {_show(raw)}")
        return _BAD
    if tp is int:
        if float(value) != int(value):
            problems.append(f"{path}: expected an integer, got {_show(raw)}")
            return _BAD
        value = int(value)
    else:
        value = float(value)
    for key, ok, text in (("gt", lambda v, b: v > b, ">"), ("ge", lambda v, b: v >= b, ">="),
                          ("le", lambda v, b: v <= b, "<=")):
        bound = meta.get(key)
        if key == "le" and bound is None:
            bound = MAX_NUMBER
        if bound is not None and not ok(value, bound):
            problems.append(f"{path}: must be {text} {_fmt_bound(bound)}, got {_show(raw)}")
            return _BAD
    least = meta.get("nonzero_ge")
    if least is not None and value != 0 and value < least:
        zero = re.search(r"\b0 = ([^);]+)", meta.get("doc", ""))  # what 0 means: the doc's "(0 = ...)"
        problems.append(f"{path}: must be 0 ({zero.group(1) if zero else 'unlimited'}) or >= "
                        f"{_fmt_bound(least)}, got {_show(raw)}")
        return _BAD
    return value


def _fmt_bound(b: float) -> str:
    if float(b).is_integer() and b >= 2**16 and int(b) & (int(b) - 1) == 0:
        return f"2**{int(b).bit_length() - 1}"  # powers of two as written in components.py
    return str(int(b)) if float(b).is_integer() and abs(b) < 1e16 else str(b)


def _show(raw: Any) -> str:
    if isinstance(raw, str):
        return repr(raw)
    if isinstance(raw, (dict, list)):
        return f"a {'mapping' if isinstance(raw, dict) else 'list'}"
    if raw is None:
        return "nothing (null)"
    return repr(raw)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# -- entry points ------------------------------------------------------------------------------------

def from_dict(data: Any, source: str | None = None) -> Architecture:
    """Build an :class:`Architecture` from plain data (a parsed YAML document with ``version``)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping, got {_show(data)}"], source)
    body = dict(data)
    version = body.pop("version", None)
    if version is None:
        problems.append(f"version: missing; put 'version: {FORMAT_VERSION}' at the top of the file")
    elif version != FORMAT_VERSION or isinstance(version, bool):
        problems.append(f"version: must be {FORMAT_VERSION}, got {_show(version)}")
    arch = build(Architecture, body, "", problems)
    if arch is not _BAD:
        problems.extend(arch.check())
    if problems:
        raise ConfigError(problems, source)
    return arch


def loads(text: str, source: str = "<string>") -> Architecture:
    """Parse an architecture from YAML text."""
    return from_dict(parse_yaml(text, source), source)


def irregular(path: str | Path) -> str | None:
    """What ``path`` is when it exists but is no regular file (reading a FIFO would wait forever, a
    directory or a device holds no text): ``"a directory"``, ``"a dangling link"`` or ``"not a regular
    file (a FIFO, socket or device)"``; None for a regular file or for nothing at all. (The same rule
    as ``traces.format.reader.irregular``: archs may not import traces.)"""
    p = Path(path)
    if p.is_file() or not (p.exists() or p.is_symlink()):
        return None
    if p.is_dir():
        return "a directory"
    return "a dangling link" if not p.exists() else "not a regular file (a FIFO, socket or device)"


def read_config(path: str | Path, kind: str = "a YAML file") -> str:
    """The text of a configuration file (``kind`` names what it should be, for the hint);
    ``ConfigError`` naming the file when it cannot be read (or is not a regular file: reading a
    FIFO would wait forever)."""
    what = irregular(path)
    if what is not None:
        raise ConfigError([f"{what}; give {kind}"], str(path))
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read the file ({exc.__class__.__name__}: {exc})"], str(path)) from None


def load_file(path: str | Path) -> Architecture:
    """Parse an architecture YAML file; an empty file, or one whose last line has no newline (a copy
    cut short, perhaps inside a comment, would otherwise read as a machine with default sparse
    features and peripherals), is refused."""
    text = read_config(path)
    data = parse_yaml(text, str(path))  # control characters and syntax errors first, with their line
    check_complete(text, str(path))
    return from_dict(data, str(path))


def check_complete(text: str, source: str) -> None:
    """ConfigError for an empty text or one that ends inside a line (written files end with a newline)."""
    if not text.strip():
        raise ConfigError(["the file is empty; an architecture needs version, name, family, clock_hz, "
                           "memories, vector_unit and its family's section (start from `hwsim archs show "
                           "edge-npu`)"], source)
    if not text.endswith(("\n", "\r")):
        line = text.count("\n") + 1
        tail = text.rsplit("\n", 1)[-1].strip()
        raise ConfigError([f"line {line}: the file ends inside a line ({tail[-40:]!r}), without a final "
                           "newline: it looks cut short (an interrupted copy or download); restore the whole "
                           "file, or end it with a newline if it is complete"], source)


# -- dataclasses -> plain data and YAML --------------------------------------------------------------

def to_dict(obj: Any) -> Any:
    """Plain data (dicts, lists, scalars) for a component or architecture, with ``version``."""
    out = _plain(obj)
    return {"version": FORMAT_VERSION, **out} if isinstance(obj, Architecture) else out


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    return obj


def dump(arch: Architecture, comments: bool = True) -> str:
    """YAML text for an architecture; with ``comments``, each field carries its description."""
    lines = [f"version: {FORMAT_VERSION}"]
    _emit(arch, 0, lines, comments)
    return "\n".join(lines) + "\n"


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        if "e" in text and "." not in text.split("e")[0]:  # PyYAML needs a dot to read 1e-05 as float
            mantissa, exp = text.split("e")
            text = f"{mantissa}.0e{exp}"
        return text
    return json.dumps(v, ensure_ascii=False)


def _emit(obj: Any, indent: int, lines: list[str], comments: bool, first_prefix: str | None = None) -> None:
    pad = " " * indent
    for i, f in enumerate(dataclasses.fields(obj)):
        v = getattr(obj, f.name)
        note = f"  # {f.metadata['doc']}" if comments and f.metadata.get("doc") else ""
        lead = first_prefix if (first_prefix is not None and i == 0) else pad
        if dataclasses.is_dataclass(v):
            lines.append(f"{lead}{f.name}:{note}")
            _emit(v, indent + 2, lines, comments)
        elif isinstance(v, tuple) and v and dataclasses.is_dataclass(v[0]):
            lines.append(f"{lead}{f.name}:{note}")
            for item in v:
                _emit(item, indent + 4, lines, comments, first_prefix=pad + "  - ")
        elif isinstance(v, tuple):
            lines.append(f"{lead}{f.name}: [{', '.join(_scalar(x) for x in v)}]{note}")
        else:
            lines.append(f"{lead}{f.name}: {_scalar(v)}{note}")


# -- variants -----------------------------------------------------------------------------------------

def replace(arch: Architecture, changes: dict[str, Any] | None = None, **kwargs: Any) -> Architecture:
    """A variant of ``arch`` with fields changed by dotted path, validated like a YAML file.

    Paths go through nested sections and through lists by element name or index:
    ``replace(a, {"compute.rows": 32, "memories.glb.capacity_bytes": "256 KiB"})``; keyword
    arguments use ``__`` for dots (``replace(a, compute__rows=32)``).
    """
    data = to_dict(arch)
    edits = {**(changes or {}), **{k.replace("__", "."): v for k, v in kwargs.items()}}
    problems: list[str] = []
    for path, value in edits.items():
        _set_path(data, path, value, problems)
    if problems:
        raise ConfigError(problems, f"replace({arch.name})")
    return from_dict(data, f"replace({arch.name})")


def _set_path(data: Any, path: str, value: Any, problems: list[str]) -> None:
    parts = path.split(".")
    node = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, dict):
            if part not in node:
                guess = difflib.get_close_matches(part, [str(k) for k in node], n=1, cutoff=0.6)
                hint = f"; did you mean {guess[0]!r}?" if guess else f"; keys: {', '.join(map(str, node))}"
                problems.append(f"{where}: no such field{hint}")
                return
            if last:
                node[part] = value
            else:
                node = node[part]
        elif isinstance(node, list):
            idx = next((i for i, e in enumerate(node) if isinstance(e, dict) and e.get("name") == part), None)
            if idx is None and part.isdigit() and int(part) < len(node):
                idx = int(part)
            if idx is None:
                names = [e.get("name") for e in node if isinstance(e, dict)]
                problems.append(f"{where}: no element named {part!r}; elements are {names}")
                return
            if last:
                node[idx] = value
            else:
                node = node[idx]
        else:
            problems.append(f"{where}: cannot go inside {_show(node)}")
            return
