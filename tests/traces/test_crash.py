"""A recording process killed with SIGKILL leaves a trace that loads with every completed iteration."""

from __future__ import annotations

import subprocess

import traces
from traces.format.validate import validate

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
    from traces.format.writer import atomic_write

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".r.parquet.tmp-{dead.pid}"
    stale.write_bytes(b"half")
    mine = tmp_path / ".r.parquet.tmp-unknown"  # not a pid: left alone
    mine.write_bytes(b"?")
    atomic_write(tmp_path / "r.parquet", lambda f: f.write(b"data"))
    assert not stale.exists() and mine.exists()
    assert (tmp_path / "r.parquet").read_bytes() == b"data"


def test_replay_refuses_an_incomplete_trace_in_one_line_unless_allowed(tmp_path, capsys):
    """An error inside a training step leaves the trace marked incomplete; replay says so."""
    import pytest
    import torch
    import torch.nn.functional as F
    from torch import nn

    from hwsim.cli import main

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "crashed.trace"
    with pytest.raises(FloatingPointError):
        with traces.record(model, path, every=2, optimizer=opt, counts_batch=1) as rec:
            for i in range(4):
                opt.zero_grad()
                loss = F.cross_entropy(model(torch.randn(5, 4)), torch.tensor([0, 1, 2, 0, 1]))
                if i == 3:
                    raise FloatingPointError("loss is NaN")  # the user's check, inside the step
                loss.backward()
                opt.step()
                rec.step()
    tr = traces.load(path)
    assert not tr.complete and tr.iterations == [0, 1, 2]
    capsys.readouterr()
    assert main(["replay", str(path), "--arch", "edge-npu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "incomplete trace" in err and "iterations 0..2 (2 with masks)" in err
    assert "--allow-incomplete" in err
    assert main(["replay", str(path), "--arch", "edge-npu", "--allow-incomplete"]) == 0
    assert "incomplete trace, replaying the 3 iterations it holds" in capsys.readouterr().err
