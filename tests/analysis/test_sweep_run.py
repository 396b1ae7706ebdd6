"""Running sweeps: resume after SIGKILL, the same rows on every scheduler, failures recorded,
the worker cache changes nothing but the time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.sweep import execute, load, load_spec
from analysis.sweep.cache import worker_cache
from analysis.sweep.evaluate import cache_stats
from analysis.sweep.store import Store

from .sweep_helpers import kill_sweep_midway, small_trace, spec_text

REPO = Path(__file__).resolve().parents[2]
BIG_AXES = """      compute.rows: [4, 8, 16]
      compute.cols: [4, 8, 16]
      memories.glb.capacity_bytes: ["32 KiB", "64 KiB", "128 KiB"]"""


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return small_trace(tmp_path_factory.mktemp("sweep") / "t.trace")


def write_spec(tmp_path, trace, **kw):
    p = tmp_path / "spec.yaml"
    p.write_text(spec_text(trace, **kw))
    return p


def test_the_cache_changes_no_row_and_is_used(trace, tmp_path):
    spec = load_spec(write_spec(tmp_path, trace))
    plain = execute(spec, tmp_path / "plain", scheduler="inprocess", use_cache=False, reprice=False)
    worker_cache().clear()
    before = cache_stats()
    cached = execute(spec, tmp_path / "cached", scheduler="inprocess")
    after = cache_stats()
    assert plain.computed == cached.computed == 12 and plain.failed == cached.failed == 0
    pd.testing.assert_frame_equal(load(tmp_path / "plain")[1], load(tmp_path / "cached")[1], check_exact=True)
    # 10 NPU points × 8 GEMM passes (the first layer has no backward-data): operands built once per pass
    hits = after.get("operands_hits", 0) - before.get("operands_hits", 0)
    misses = after.get("operands_misses", 0) - before.get("operands_misses", 0)
    assert hits + misses == 10 * 8 and misses <= 8
    assert after.get("tiles_hits", 0) > before.get("tiles_hits", 0)  # the two GLB sizes share tile costs


def test_energy_only_points_reuse_tiles_and_schedules(trace, tmp_path):
    """Replayed per point (re-pricing off: the path a group that cannot be re-priced takes), energy-only
    points still share their mask reductions (tests/analysis/test_sweep_reprice.py: re-pricing on)."""
    axes = """      compute.mac_energy_pj: [0.2, 0.3, 0.4]
      compute.rows: [16]"""
    spec = load_spec(write_spec(tmp_path, trace, axes=axes))
    execute(spec, tmp_path / "plain", scheduler="inprocess", use_cache=False, reprice=False)
    worker_cache().clear()  # earlier tests replayed this trace: start cold
    before = cache_stats()
    execute(spec, tmp_path / "cached", scheduler="inprocess", reprice=False)
    after = cache_stats()
    plain, cached = load(tmp_path / "plain")[1], load(tmp_path / "cached")[1]
    pd.testing.assert_frame_equal(plain, cached, check_exact=True)
    npu = cached[cached["arch"] == "edge-npu"]
    assert npu.groupby("point_key")["energy_compute_pj"].sum().nunique() == 3  # the energies did change
    keys = ("tiles_hits", "tiles_misses", "schedule_hits", "schedule_misses")
    gained = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    # the second and third points reduce no mask: their tile costs all come from the first
    assert gained["tiles_misses"] > 0 and gained["tiles_hits"] == 2 * gained["tiles_misses"]
    from hwsim.npu import replay

    if hasattr(replay, "timing_backend"):  # whole-pass timing: the schedules are reused too
        assert gained["schedule_misses"] > 0 and gained["schedule_hits"] == 2 * gained["schedule_misses"]


def test_a_copy_of_a_trace_is_read_from_where_it_is(trace, tmp_path):
    import shutil

    copy = shutil.copytree(trace, tmp_path / "copy.trace")
    for t, out in ((trace, "a"), (copy, "b")):  # same content, same keys; each run names its own trace
        execute(load_spec(write_spec(tmp_path, t)), tmp_path / out, scheduler="inprocess")
    a, b = load(tmp_path / "a")[1], load(tmp_path / "b")[1]
    assert set(a["trace"]) == {str(Path(trace).resolve())} and set(b["trace"]) == {str(copy.resolve())}
    pd.testing.assert_frame_equal(a.drop(columns="trace"), b.drop(columns="trace"), check_exact=True)


def test_a_rerun_adds_only_new_points(trace, tmp_path):
    spec = load_spec(write_spec(tmp_path, trace))
    first = execute(spec, tmp_path / "out", scheduler="inprocess")
    again = execute(spec, tmp_path / "out", scheduler="inprocess")
    assert (first.computed, again.computed, again.already_done) == (12, 0, 12)
    axes = BIG_AXES.replace("[4, 8, 16]\n      compute.cols", "[4, 8, 16, 32]\n      compute.cols")
    wider = load_spec(write_spec(tmp_path, trace, axes=axes))
    more = execute(wider, tmp_path / "out", scheduler="inprocess")
    points, rows = load(tmp_path / "out")
    # 4 × 3 × 3 NPU points less the three 32 × 16 ones, and the two GPU points; the first spec's 12 are in it
    assert (more.total, more.already_done, more.computed, more.rejected) == (35, 12, 23, 3)
    assert len(points) == 35
    assert rows["point_key"].nunique() == (points["status"] == "ok").sum()


def test_a_failing_point_records_its_error_and_the_rest_go_on(trace, tmp_path):
    # a 1 KiB GLB cannot hold one 8×8 array's operands: the mapper refuses (MappingError)
    axes = """      memories.glb.capacity_bytes: [16, "128 KiB"]
      compute.rows: [8]
      compute.cols: [8]"""
    spec = load_spec(write_spec(tmp_path, trace, axes=axes))
    counts = execute(spec, tmp_path / "out", scheduler="inprocess")
    points, _ = load(tmp_path / "out")
    failed = points[points["status"] == "failed"]
    assert counts.failed == len(failed) == 1 and counts.computed == 4
    assert failed["error"].iloc[0].startswith("MappingError: ")
    assert (points["status"] == "ok").sum() == 3


def test_a_sweep_killed_mid_way_resumes_to_the_same_rows(trace, tmp_path):
    spec_path = write_spec(tmp_path, trace, axes=BIG_AXES)
    spec = load_spec(spec_path)
    whole = execute(spec, tmp_path / "whole", scheduler="inprocess")
    out = tmp_path / "killed"
    kill_sweep_midway(spec_path, out, 3)
    written = len(Store(out).done_keys())
    assert 3 <= written < whole.total, "the sweep should have been killed part-way"
    resumed = execute(spec, out, scheduler="inprocess")
    assert resumed.already_done == written
    assert resumed.computed == whole.total - written  # only the missing points were computed
    a_points, a_rows = load(tmp_path / "whole")
    b_points, b_rows = load(out)
    assert list(a_points["point_key"]) == list(b_points["point_key"])
    pd.testing.assert_frame_equal(a_rows, b_rows, check_exact=True)


def test_a_half_written_batch_is_dropped_on_open(tmp_path):
    s = Store(tmp_path)
    s.open()
    pts = pd.DataFrame({"point_key": ["a"], "status": ["ok"]})
    rows = pd.DataFrame({"point_key": ["a", "a"], "row": [0, 1], "cycles": [1, 2]})
    s.append(pts, rows)
    rows.assign(point_key="b").to_parquet(s.rows_dir / "part-000001.parquet")  # its points never came
    (s.points_dir / ".part-000002.parquet.tmp-999999").write_bytes(b"half")
    s.open()
    assert sorted(f.name for f in s.rows_dir.iterdir()) == ["part-000000.parquet"]
    assert not list(s.points_dir.glob(".part-*"))
    assert s.done_keys() == {"a"} and list(s.rows()["cycles"]) == [1, 2]


def test_a_second_run_on_the_same_directory_is_refused_while_the_first_lives(trace, tmp_path):
    spec = load_spec(write_spec(tmp_path, trace))
    out = tmp_path / "out"
    out.mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(str(alive.pid))
        with pytest.raises(ValueError, match=f"another sweep \\(process {alive.pid}\\) is writing here"):
            execute(spec, out, scheduler="inprocess")
    finally:
        alive.kill()
        alive.wait()
    counts = execute(spec, out, scheduler="inprocess")  # the lock of a process that is gone is taken over
    assert counts.computed == 12 and not (out / ".lock").exists()


def test_in_process_local_cluster_and_external_scheduler_agree(trace, tmp_path):
    # two array shapes × three MAC energies: each shape's energies are re-priced on whichever worker
    axes = """      compute.rows: [8, 16]
      compute.cols: [8]
      compute.mac_energy_pj: [0.2, 0.3, 0.4]"""
    spec = load_spec(write_spec(tmp_path, trace, axes=axes))
    execute(spec, tmp_path / "inprocess", scheduler="inprocess")
    execute(spec, tmp_path / "local", scheduler="local", workers=2)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sched_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--scheduler-file", str(sched_file), "--port", "0",
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 120  # generous: the machine may be busy
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs += [subprocess.Popen([*dask, "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                                    "--no-dashboard", "--name", f"w{i}"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) for i in range(2)]
        import json

        from distributed import Client

        address = json.loads(sched_file.read_text())["address"]
        with Client(address, timeout=120) as c:
            c.wait_for_workers(2, timeout=120)
            assert len(c.scheduler_info()["workers"]) == 2
        counts = execute(spec, tmp_path / "external", scheduler=address)
        assert counts.computed == 8
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    frames = [load(tmp_path / d) for d in ("inprocess", "local", "external")]
    for points, rows in frames[1:]:
        pd.testing.assert_frame_equal(frames[0][1], rows, check_exact=True)
        assert list(points["point_key"]) == list(frames[0][0]["point_key"])
        pd.testing.assert_frame_equal(frames[0][0].drop(columns="seconds"), points.drop(columns="seconds"),
                                      check_exact=True)


def test_the_dataset_reads_the_same_whatever_the_batches(tmp_path):
    npu = (pd.DataFrame({"point_key": ["b"], "compute.rows": [8]}),
           pd.DataFrame({"point_key": ["b"], "row": [0], "compute_cycles": [5], "cycles": [7]}))
    gpu = (pd.DataFrame({"point_key": ["a"], "gpu.sms": [54]}),
           pd.DataFrame({"point_key": ["a"], "row": [0], "cycles": [9], "waves": [3]}))
    frames = []
    for order in ((npu, gpu), (gpu, npu)):  # batches in either order (as schedulers return them)
        s = Store(tmp_path / str(len(frames)))
        s.open()
        for pts, rows in order:
            s.append(pts, rows)
        frames.append((s.points(), s.rows()))
    pd.testing.assert_frame_equal(frames[0][0], frames[1][0], check_exact=True)
    pd.testing.assert_frame_equal(frames[0][1], frames[1][1], check_exact=True)
    assert list(frames[0][1].columns) == ["point_key", "row", "compute_cycles", "cycles", "waves"]
