"""Arguments that would silently change the numbers are refused (issue 22 probes): an iteration,
layer or pass named twice was replayed twice, doubling the per-iteration cost and the whole-run
estimate; a memory budget of 1e400 bytes (infinite) died with an OverflowError traceback."""

from __future__ import annotations

import contextlib
import io

import pytest

from hwsim.cli import main
from hwsim.simulate import simulate
from traces.synth import conv, linear, write_synthetic


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    layers = [conv("conv", 3, 4, 6, 6, 3, padding=1), linear("fc", 4 * 6 * 6, 5)]
    return write_synthetic(layers, tmp_path_factory.mktemp("args") / "t.trace", batch=2, iterations=2, seed=0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"iterations": [1, 1]}, "iteration 1 is given twice"),
    ({"layers": ["fc", 1]}, "name a layer twice"),
    ({"passes": ["forward", "forward"]}, "name a pass twice"),
    ({"memory_budget_bytes": float("inf")}, "positive, finite"),
])
def test_a_repeated_or_infinite_argument_is_refused(trace, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate(trace, "edge-npu", **kwargs)


@pytest.mark.parametrize("args", [["--iterations", "1,1"], ["--memory-budget", "1e400"]])
def test_the_cli_refuses_them_in_one_line(trace, args):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main(["replay", str(trace), "--arch", "edge-npu", *args])
    assert status == 2 and err.getvalue().startswith("hwsim: error: ") and err.getvalue().count("\n") == 1


def test_a_gpu_without_a_modelled_vector_unit_replays(trace):
    """``vector_unit.lanes: 0`` (not modelled: counted, takes no time) is accepted by the loader; the
    GPU's memory kernels divided by it (ZeroDivisionError traceback)."""
    import archs
    from archs.loader import from_dict, to_dict

    data = to_dict(archs.load("gpu-a100"))
    data["vector_unit"]["lanes"] = 0
    df = simulate(trace, from_dict(data)).to_frame()
    assert len(df) and (df["cycles"] >= 0).all() and not df["cycles"].isna().any()
    assert (df["vector_ops"] > 0).any()  # the work is still counted


def test_a_row_over_2_62_cycles_is_refused_in_one_line():
    """Totals sum rows over layers and iterations in int64: a row of 2**62 cycles or more (a machine
    accepted field by field whose rates combine to a duration no report can hold) is a MappingError
    naming the layer and pass, not a Python int that a Parquet writer rejects with a traceback."""
    from archs import PRESETS
    from hwsim.errors import MappingError
    from hwsim.simulate import MAX_CYCLES, _bounded

    rows = [{"layer": "fc", "pass": "forward", "cycles": MAX_CYCLES - 1, "dense_cycles": 5}]
    assert _bounded(rows, PRESETS["edge-npu"]) is rows
    rows.append({"layer": "fc", "pass": "update", "cycles": 7, "dense_cycles": MAX_CYCLES})
    with pytest.raises(MappingError, match=r"^edge-npu: fc update takes 4.61e\+18 dense cycles, over 2\*\*"):
        _bounded(rows, PRESETS["edge-npu"])
