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
    "torch": {"traces/recorder.py", "traces/capture.py", "traces/watching.py", "traces/nonzero.py",
              "traces/models.py", "traces/training.py", "traces/methods"},
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
        "from traces import accounting, validate\n"
        f"tr = traces.load({str(tmp_path / 't')!r})\n"
        "validate.validate(tr)\n"
        "for it in tr:\n"
        "    it.mask(0, 'x'); it.mask(0, 'w')\n"
        "heavy = sorted(m for m in ('torch', 'simpy', 'plotly', 'dask', 'distributed') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
