"""A user-given mapping file (``hwsim replay --mapping FILE``), checked strictly.

Format (YAML)::

    version: 1
    objective: energy          # optional: how layers the file does not list are searched
    layers:
      - layer: layer1.0.conv1  # a layer name of the trace, or "*" for every layer
        pass: forward          # optional: forward, backward_data, backward_weight (default: all)
        tile: {B: 1, K: 64, C: 64, OY: 8, OX: 56}   # buffer tile; every dimension a divisor
        order: [B, K, C, OY, OX]                     # optional: DRAM loops, outermost first
        slide: false             # optional (default true): false re-fetches every input window whole

The first entry that names a layer (then ``*``) and its pass wins; a layer and pass no entry
covers is searched. Every problem is reported as ``FILE: field: found ...; fix``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archs.loader import irregular, parse_yaml

from ..errors import MappingError
from .loopnest import DIMS, ROLES
from .mapper import OBJECTIVES, NestMapping

ENTRY_KEYS = ("layer", "pass", "tile", "order", "slide")


@dataclass(frozen=True)
class MappingFile:
    """Mappings by (layer or ``*``, pass or ``*``), and the objective for everything else."""

    path: str
    objective: str
    entries: tuple[tuple[str, str, NestMapping], ...]

    def lookup(self, layer: str, pass_: str) -> NestMapping | None:
        for want in ((layer, pass_), (layer, "*"), ("*", pass_), ("*", "*")):
            for name, p, mapping in self.entries:
                if (name, p) == want:
                    return mapping
        return None


def _fail(path: str, field: str, message: str) -> MappingError:
    return MappingError(f"{path}: {field}: {message}")


def _unknown(path: str, field: str, key: Any, known: tuple[str, ...]) -> MappingError:
    guess = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
    hint = f"did you mean {guess[0]!r}?" if guess else f"known: {', '.join(known)}"
    return _fail(path, field, f"unknown key {key!r}; {hint}")


def load_mapping_file(path: str | Path) -> MappingFile:
    """Read and check a mapping file; MappingError naming the file and field on any problem."""
    src = str(path)
    what = irregular(path)  # reading a FIFO would wait forever
    if what is not None:
        raise MappingError(f"{src}: {what}; give a YAML mapping file (see docs/mapping.md)")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise MappingError(f"{src}: cannot read the mapping file ({exc.strerror}); give a YAML file "
                           "(see docs/mapping.md)") from None
    try:
        data = parse_yaml(text, src)
    except ValueError as exc:
        raise MappingError(f"{src}: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(src, "(top)", f"expected a mapping with version and layers, found {type(data).__name__}")
    for key in data:
        if key not in ("version", "objective", "layers"):
            raise _unknown(src, "(top)", key, ("version", "objective", "layers"))
    if data.get("version") != 1:
        raise _fail(src, "version", f"found {data.get('version')!r}; write version: 1")
    objective = data.get("objective", "energy")
    if objective not in OBJECTIVES:
        raise _fail(src, "objective", f"found {objective!r}; use one of {', '.join(OBJECTIVES)}")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _fail(src, "layers", f"found {layers!r}; give a list of entries with layer and tile")
    entries = []
    for i, e in enumerate(layers):
        where = f"layers[{i}]"
        if not isinstance(e, dict):
            raise _fail(src, where, f"found {e!r}; give an entry with layer and tile")
        for key in e:
            if key not in ENTRY_KEYS:
                raise _unknown(src, where, key, ENTRY_KEYS)
        name = e.get("layer")
        if not isinstance(name, str) or not name:
            raise _fail(src, f"{where}.layer", f"found {name!r}; give a layer name or '*'")
        pass_ = e.get("pass", "*")
        if pass_ != "*" and pass_ not in ROLES:
            raise _fail(src, f"{where}.pass",
                        f"found {pass_!r}; use one of {', '.join(ROLES)} (or leave it out)")
        tile = e.get("tile")
        if not isinstance(tile, dict):
            raise _fail(src, f"{where}.tile", f"found {tile!r}; give a mapping like {{K: 64, C: 32, OY: 8}}")
        for key, v in tile.items():
            if key not in DIMS:
                raise _unknown(src, f"{where}.tile", key, DIMS)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise _fail(src, f"{where}.tile.{key}", f"found {v!r}; give a positive integer")
        order = e.get("order", list(DIMS))
        if not isinstance(order, list) or sorted(map(str, order)) != sorted(DIMS):
            raise _fail(src, f"{where}.order", f"found {order!r}; list each of {', '.join(DIMS)} once, "
                                               "outermost first")
        slide = e.get("slide", True)
        if not isinstance(slide, bool):
            raise _fail(src, f"{where}.slide", f"found {slide!r}; write true or false")
        sizes = tuple(int(tile.get(d, 0)) for d in DIMS)  # 0: the whole dimension (filled in per layer)
        entries.append((name, pass_, NestMapping(sizes, tuple(order), slide=slide)))
    return MappingFile(src, objective, tuple(entries))
