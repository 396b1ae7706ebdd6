"""DESIGN.md's package boundaries, enforced on the source: import directions and heavy imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"hwsim", "traces", "archs", "analysis"}
ALLOWED = {  # package -> packages of ours it may import
    "traces": set(),
    "archs": set(),
    "hwsim": {"traces", "archs"},
    "analysis": {"hwsim", "traces", "archs"},
}
# Heavy imports and the only modules allowed to make them.
HEAVY = {
    "torch": {"traces/recording", "traces/zoo/models.py", "traces/zoo/transformer.py",
              "traces/zoo/recurrent.py", "traces/training.py", "traces/methods"},
    "simpy": {"hwsim/engines/event.py"},
    "plotly": {"analysis"},
    "dask": {"analysis/sweep"},
    "distributed": {"analysis/sweep"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


# Inside traces/: each folder is one noun, and the numpy-only side (format, stats) never reaches the
# torch side (recording, zoo, methods). Folder (or top-level module) -> traces folders it may import.
TRACES_ALLOWED = {
    "format": set(),
    "stats": {"format"},
    "zoo": set(),
    "recording": {"format"},
    "methods": {"format", "stats", "zoo", "recording"},
    "synth": {"format", "stats"},
    "synth_transformer": {"format"},
    "training": {"format", "zoo", "methods", "recording"},
    "__init__": {"format", "stats", "recording"},
}


def traces_imports(path: Path) -> set[str]:
    """The traces/ folders (or top-level modules) a file inside traces/ imports."""
    parts = path.relative_to(REPO).with_suffix("").parts  # ("traces", folder, ..., module)
    package = list(parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
            else:
                target = (node.module or "").split(".")
            names = [a.name for a in node.names] if len(target) == 1 else [None]
        elif isinstance(node, ast.Import):
            target, names = None, []
            for a in node.names:
                t = a.name.split(".")
                if t[0] == "traces" and len(t) > 1:
                    out.add(t[1])
            continue
        else:
            continue
        if target[:1] != ["traces"]:
            continue
        for name in names:
            sub = target[1] if len(target) > 1 else name
            if sub is not None:
                out.add(sub)
    return out


@pytest.mark.parametrize("path", sorted((REPO / "traces").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_traces_folders(path):
    rel = path.relative_to(REPO).as_posix()
    own = path.relative_to(REPO).with_suffix("").parts[1]
    assert own in TRACES_ALLOWED, f"{rel}: a new place in traces/; give it a row in TRACES_ALLOWED"
    extra = traces_imports(path) - {own} - TRACES_ALLOWED[own]
    assert not extra, f"{rel} imports traces.{sorted(extra)}"


def sources():
    for pkg in ALLOWED:
        yield from sorted((REPO / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", list(sources()), ids=lambda p: str(p.relative_to(REPO)))
def test_import_directions(path):
    rel = path.relative_to(REPO).as_posix()
    pkg = rel.split("/")[0]
    allowed = ALLOWED[pkg] | {pkg}
    if rel.startswith("hwsim/cli/"):  # the one place in hwsim that may reach analysis
        allowed = allowed | {"analysis"}
    found = imports(path)
    assert not (found & OURS) - allowed, f"{rel} imports {(found & OURS) - allowed}"
    for heavy, places in HEAVY.items():
        if heavy in found:
            assert any(rel == p or rel.startswith(p + "/") for p in places), \
                f"{rel} imports {heavy}; only {sorted(places)} may"


def test_import_and_trace_loading_do_not_import_torch(tmp_path):
    from .traces.helpers import write_trace

    write_trace(tmp_path / "t", n_iter=3, mask_every=1)
    code = (
        "import sys, hwsim, traces, archs, analysis, hwsim.cli\n"
        "from traces.format import validate\n"
        "from traces.stats import accounting\n"
        f"tr = traces.load({str(tmp_path / 't')!r})\n"
        "validate.validate(tr)\n"
        "for it in tr:\n"
        "    it.mask(0, 'x'); it.mask(0, 'w')\n"
        "heavy = sorted(m for m in ('torch', 'simpy', 'plotly', 'dask', 'distributed') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
