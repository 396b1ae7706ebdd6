"""Damaged sweep results are found on resume, recomputed or drawn again, and reported (issue 22,
item 5); failed points are retried on rerun unless told not to; workers get absolute paths.

Every case compares with an undamaged run of the same spec: the rows must be the same, bit for bit,
and the counts of recomputed points are what the damage removed (the points of one batch).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.sweep import evaluate, execute, load, load_spec
from hwsim.cli import main

REPO = Path(__file__).resolve().parents[2]
SPEC = """version: 1
name: damage
traces:
  - label: small
    synthetic:
      layers:
        - "conv1, conv2d, 3, 8, 8, 8, 3, 1, 1, 1"
        - "fc, linear, 512, 10"
      density: {x: 0.5, w: 0.4, dy: 0.3}
      batch: 2
designs:
  - base: edge-npu
    axes:
      compute.rows: [4, 8]
      compute.cols: [4, 8]
options:
  passes: [forward, backward_data, backward_weight]
"""
N_POINTS = 4


def cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(args)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The spec file and an undamaged run of it (one point per batch: four batches)."""
    base = tmp_path_factory.mktemp("damage")
    (base / "spec.yaml").write_text(SPEC)
    execute(load_spec(base / "spec.yaml"), base / "clean", scheduler="inprocess", batch_points=1)
    return base


def run_sweep(reference: Path, out: Path, *extra: str) -> str:
    status, text, err = cli(["sweep", str(reference / "spec.yaml"), "--out", str(out), "--scheduler",
                             "inprocess", "--batch-points", "1", *extra])
    assert status == 0, err
    return text


def same_as_clean(reference: Path, out: Path) -> None:
    a_points, a_rows = load(reference / "clean")
    b_points, b_rows = load(out)
    assert list(a_points["point_key"]) == list(b_points["point_key"])
    assert (b_points["status"] == "ok").all()
    # the rows name the drawn trace's path, which is under each sweep's own directory
    pd.testing.assert_frame_equal(a_rows.drop(columns="trace"), b_rows.drop(columns="trace"),
                                  check_exact=True)


def test_a_damaged_drawn_trace_is_drawn_again(reference, tmp_path):
    out = tmp_path / "out"
    run_sweep(reference, out)
    (drawn,) = (out / "traces").iterdir()
    victim = sorted(drawn.glob("iter-*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:100])  # truncated
    text = run_sweep(reference, out)
    assert f"repaired: trace 'small' ({drawn.name}) was damaged" in text
    assert f"{N_POINTS} already done, computed 0, failed 0" in text
    text = run_sweep(reference, out)  # the drawn trace is whole again: nothing to repair
    assert "repaired" not in text
    same_as_clean(reference, out)


@pytest.mark.parametrize("kind", ["points", "rows"])
def test_a_truncated_part_is_removed_and_its_points_computed_again(reference, tmp_path, kind):
    out = tmp_path / "out"
    run_sweep(reference, out)
    part = out / "results" / kind / "part-000001.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    if kind == "rows":  # the report refuses it in one line, naming the part and the fix
        status, _, err = cli(["report", str(out), "--out", str(tmp_path / "r.html")])
        assert status == 2 and err.count("\n") == 1, err
        assert "part-000001.parquet: damaged Parquet part" in err, err
    text = run_sweep(reference, out)
    assert f"repaired: results/{kind}/part-000001.parquet is damaged" in text
    assert f"{N_POINTS - 1} already done, computed 1, failed 0" in text
    same_as_clean(reference, out)
    status, _, err = cli(["report", str(out), "--out", str(tmp_path / "r.html")])
    assert status == 0, err


def _flip_in_data_page(part: Path, column: str) -> None:
    """Flip one bit in the middle of ``column``'s data in a Parquet part (the footer stays intact:
    without page checksums the part reads, with another number in it)."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(part).row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == column)
    raw = bytearray(part.read_bytes())
    raw[chunk.data_page_offset + chunk.total_compressed_size - 4] ^= 0x01  # the page's last value bytes
    part.write_bytes(bytes(raw))


@pytest.mark.parametrize("kind", ["points", "rows"])
def test_a_flipped_bit_in_a_data_page_is_found_by_its_checksum(reference, tmp_path, kind):
    """On main a bit flipped inside a data page (not the footer) read as another number: the report
    and the rerun took it as it was. Parts are written with page checksums and read verifying them."""
    out = tmp_path / "out"
    run_sweep(reference, out)
    part = out / "results" / kind / "part-000001.parquet"
    _flip_in_data_page(part, "cycles")
    status, _, err = cli(["report", str(out), "--out", str(tmp_path / "r.html")])
    assert status == 2 and "part-000001.parquet: damaged Parquet part" in err, err
    text = run_sweep(reference, out)
    assert f"repaired: results/{kind}/part-000001.parquet is damaged" in text
    assert f"{N_POINTS - 1} already done, computed 1, failed 0" in text
    same_as_clean(reference, out)


def test_failed_points_are_retried_unless_told_not_to(reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = evaluate.simulate
    calls = {"n": 0}

    def flaky(*args, **kw):  # the first two replays fail (a worker lost, a file briefly unreadable)
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError("transient failure")
        return real(*args, **kw)

    monkeypatch.setattr(evaluate, "simulate", flaky)
    text = run_sweep(reference, out, "--no-reprice")
    assert f"computed {N_POINTS}, failed 2" in text
    text = run_sweep(reference, out, "--no-retry-failed")
    assert f"{N_POINTS} already done, computed 0, failed 0" in text
    points, _ = load(out)
    assert (points["status"] == "failed").sum() == 2
    text = run_sweep(reference, out)
    assert f"{N_POINTS - 2} already done, computed 2 (2 failed before, retried), failed 0" in text
    same_as_clean(reference, out)


def test_external_scheduler_with_relative_paths(reference, tmp_path, monkeypatch):
    """docs/sweeps.md's external-scheduler command with a relative spec path and ``--out``, its worker
    started in another directory: every point computes (the worker gets absolute trace paths)."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "spec.yaml").write_text(SPEC)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sched_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--scheduler-file", str(sched_file), "--port", "0",
                               "--no-dashboard"], env=env, cwd=elsewhere, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 120  # generous: the machine may be busy
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = [*dask, "worker", "--scheduler-file", str(sched_file), "--nthreads", "1", "--no-dashboard"]
        procs.append(subprocess.Popen(worker, env=env, cwd=elsewhere, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        from distributed import Client

        address = json.loads(sched_file.read_text())["address"]
        with Client(address, timeout=120) as c:
            c.wait_for_workers(1, timeout=120)
        monkeypatch.chdir(here)
        status, text, err = cli(["sweep", "spec.yaml", "--out", "out/sweep", "--scheduler", address])
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    assert status == 0, err
    assert f"computed {N_POINTS}, failed 0" in text, text
    same_as_clean(reference, here / "out" / "sweep")


def test_a_damaged_run_log_is_kept_aside_and_a_new_one_started(reference, tmp_path):
    """A garbled sweep.json made the rerun compute nothing and end with a bare JSON error, naming no
    file; the run log records provenance only, so it is set aside and started again."""
    out = tmp_path / "out"
    run_sweep(reference, out)
    (out / "sweep.json").write_text("{garbage")
    text = run_sweep(reference, out)
    assert "repaired: sweep.json is damaged" in text
    assert (out / "sweep.json.damaged").read_text() == "{garbage"
    assert json.loads((out / "sweep.json").read_text())["runs"]  # a new, readable log
    same_as_clean(reference, out)
