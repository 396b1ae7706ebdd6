"""Design-space sweeps: a spec (YAML or :class:`Sweep`), points keyed by content, execution
in-process or on Dask, results as a Parquet dataset that a rerun completes (see docs/sweeps.md).

>>> from analysis.sweep import Sweep
>>> sw = Sweep(traces=["run.trace"], base="edge-npu", axes={"compute.rows": [8, 16, 32]})
>>> counts = sw.run("out/sweep", scheduler="inprocess")
>>> points, rows = sw.load("out/sweep")
"""

from __future__ import annotations

from .run import RunCounts, execute, load, plan
from .spec import SweepSpec, load_spec, spec_from_dict
from .sweep import Sweep

__all__ = ["RunCounts", "Sweep", "SweepSpec", "execute", "load", "load_spec", "plan", "spec_from_dict"]
