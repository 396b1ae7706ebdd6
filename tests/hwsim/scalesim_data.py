"""The committed SCALE-Sim 3.0.0 reference data (scripts/scalesim_reference.py) and the synthetic
dense traces of its topologies, shared by the SCALE-Sim agreement tests."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from traces.synth import read_scalesim_topology, write_synthetic

DATA = Path(__file__).resolve().parents[1] / "data" / "scalesim"


def reference(folder: Path = DATA) -> list[dict[str, str]]:
    """The rows of ``folder/reference.csv`` (its ``#`` provenance lines skipped)."""
    lines = [ln for ln in (folder / "reference.csv").read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def topology_traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One batch-1 dense trace per reference topology (conv_layers, gemm_layers)."""
    out = {}
    for topo in ("conv_layers", "gemm_layers"):
        layers = read_scalesim_topology(DATA / f"{topo}.csv")
        out[topo] = write_synthetic(layers, tmp_path_factory.mktemp(topo) / "t", batch=1)
    return out
