"""README.md's demo excerpt is generated: it equals ``scripts/readme_demo.py``'s rendering of the
committed demo summary and timing, and that summary's format is what the demo prints.

``make demo-check`` reruns the full demo (about 2 min of CPU, too long for ``make test``) and
fails unless it reproduces ``docs/demo-summary.txt`` bit for bit; here the quick demo's summary
(tests/test_cli.py's test_demo_quick runs it) must be what the demo prints and parse the same way.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generator():
    spec = importlib.util.spec_from_file_location("readme_demo", ROOT / "scripts" / "readme_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_excerpt_is_the_rendering_of_the_committed_demo_summary():
    g = generator()
    summary = (ROOT / "docs" / "demo-summary.txt").read_text(encoding="utf-8")
    timing = json.loads((ROOT / "docs" / "demo-timing.json").read_text(encoding="utf-8"))
    block = g.readme_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block == g.render(summary, timing)  # run `make readme-demo` (or `--render`) and commit
    rows = g.excerpt(summary)
    assert len(rows) == 2 + len(g.ROWS)
    for (method, machine), line in zip(g.ROWS, rows[2:], strict=True):
        assert line.split()[:2] == [method, machine] and line[len(method):] in summary
