"""The notebooks run top to bottom (they are thin: every step is a library call)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.delenv("HWSIM_TRACE", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
    last = nb.cells[-1]["outputs"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) or "text/html" in o.get("data", {})
               for o in last)  # the figure came out


def test_there_is_a_trace_replay_notebook():
    assert any(p.name == "01_trace_replay.ipynb" for p in NOTEBOOKS)


def test_there_are_exploration_and_sweep_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"02_architecture_exploration.ipynb", "03_design_space_sweep.ipynb"} <= names
