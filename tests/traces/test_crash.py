"""A recording process killed with SIGKILL leaves a trace that loads with every completed iteration."""

from __future__ import annotations

import subprocess

import traces
from traces.validate import validate

from .killing import kill_after_files, mlp_recording_script

SCRIPT = mlp_recording_script("every=1", 100000)



def test_sigkill_mid_run_leaves_a_loadable_trace(tmp_path):
    path = tmp_path / "killed.trace"
    kill_after_files(SCRIPT, path, 8)
    tr = traces.load(path)
    assert not tr.complete  # never closed
    assert tr.iterations == list(range(len(tr.iterations)))  # no gaps: every completed iteration
    assert len(tr.iterations) >= 8
    summary = validate(tr)  # every file that is there reads completely
    assert summary.iterations == len(tr.iterations) == summary.mask_iterations


def test_temporaries_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    from traces.writer import atomic_write

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".r.parquet.tmp-{dead.pid}"
    stale.write_bytes(b"half")
    mine = tmp_path / ".r.parquet.tmp-unknown"  # not a pid: left alone
    mine.write_bytes(b"?")
    atomic_write(tmp_path / "r.parquet", lambda f: f.write(b"data"))
    assert not stale.exists() and mine.exists()
    assert (tmp_path / "r.parquet").read_bytes() == b"data"
