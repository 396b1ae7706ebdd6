"""The sweep's traces: synthetic ones drawn into the sweep directory, and content hashes.

A point's key includes its trace's content hash (the bytes of the manifest and every iteration
file), so a trace rewritten under the same path gives new points, and a copy elsewhere keeps them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from traces.synth import read_layer_table, write_synthetic

from .spec import TraceSource

HASH_CHUNK_BYTES = 1 << 20


def check_synthetic(raw: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """The synthetic-trace settings with defaults, recording problems at ``where``."""
    out: dict[str, Any] = {"density": {}, "batch": 1, "iterations": 1, "seed": 0, "per_channel": False}
    layers = raw.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(r, str) for r in layers):
        problems.append(f"{where}.layers: expected a list of layer-table rows such as "
                        "'conv1, conv2d, 3, 32, 32, 16, 3, 1, 1, 1' or 'fc, linear, 512, 10'")
        return out
    try:
        parse_layers(layers)
    except ValueError as exc:
        problems.append(f"{where}.layers: {str(exc).split(': ', 1)[-1]}")
    out["layers"] = list(layers)
    dens = raw.get("density", {})
    values = list(dens.values()) if isinstance(dens, dict) else [dens]
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1]
    if not isinstance(dens, dict) or any(k not in ("x", "w", "dy") for k in dens) or bad:
        problems.append(f"{where}.density: expected densities in (0, 1] for x, w, dy, got {dens!r}")
    else:
        out["density"] = {k: float(v) for k, v in dens.items()}
    for key, least in (("batch", 1), ("iterations", 1), ("seed", 0)):
        v = raw.get(key, out[key])
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            problems.append(f"{where}.{key}: expected an integer >= {least}, got {v!r}")
        else:
            out[key] = v
    pc = raw.get("per_channel", False)
    if not isinstance(pc, bool):
        problems.append(f"{where}.per_channel: expected true or false, got {pc!r}")
    out["per_channel"] = bool(pc)
    return out


def parse_layers(rows: list[str]) -> list:
    """Layer specs from layer-table rows (``traces.synth.read_layer_table``'s format)."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "layers.csv"
        p.write_text("\n".join(rows) + "\n")
        return read_layer_table(p)


CHECKSUM_NAME = ".content-sha256"  # a drawn trace's content hash, written beside its files when drawn


def materialize(source: TraceSource, directory: Path, repairs: list[str] | None = None) -> Path:
    """The trace directory of ``source`` as an absolute path (workers may run in another directory):
    its path, or a synthetic trace drawn (once, seeded) under ``directory/traces/``. A synthetic trace
    already there with the same settings is reused when its content still has the checksum recorded
    when it was drawn; a damaged one (or one without a checksum that fails validation) is drawn again,
    the same bytes as before, and a line saying so is appended to ``repairs``."""
    if source.path is not None:
        return Path(source.path).resolve()
    s = source.synthetic or {}
    settings = json.dumps(s, sort_keys=True)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:12]
    out = (directory / "traces" / f"{_safe(source.label)}-{digest}").resolve()
    if out.exists():
        problem = _damage(out)
        if problem is None:
            return out
        import shutil

        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        else:
            out.unlink()
        if repairs is not None:
            repairs.append(f"trace {source.label!r} ({out.name}) was damaged ({problem}): drawn again")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    write_synthetic(parse_layers(s["layers"]), tmp, batch=s["batch"], density=s["density"],
                    per_channel=s["per_channel"], iterations=s["iterations"], seed=s["seed"],
                    name=source.label)
    (tmp / CHECKSUM_NAME).write_text(content_hash(tmp) + "\n")
    tmp.rename(out)
    return out


def _damage(path: Path) -> str | None:
    """Why a drawn trace cannot be reused (None: it can): its content differs from the checksum
    recorded when it was drawn; without a checksum (drawn by an older hwsim), it fails validation
    (and then gets its checksum)."""
    import traces
    from traces.format.validate import validate

    if not (path / "manifest.json").is_file():
        return "no manifest.json"
    stored = path / CHECKSUM_NAME
    try:
        if stored.is_file():
            expected = stored.read_text().strip()
            return None if content_hash(path) == expected else "content differs from its checksum"
        validate(traces.load(path))
    except (OSError, ValueError) as exc:  # TraceFormatError is a ValueError
        return str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__
    stored.write_text(content_hash(path) + "\n")
    return None


def content_hash(path: Path) -> str:
    """SHA-256 of a trace directory's manifest and iteration files (names and bytes), hex."""
    h = hashlib.sha256()
    files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK_BYTES):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60] or "trace"
