"""Run a recording script in a subprocess and SIGKILL it once it has written some iteration files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def mlp_recording_script(record_options: str, steps: int) -> str:
    """A ``python -c`` script that trains a seeded MLP on one batch for ``steps`` steps, recording
    into ``sys.argv[1]`` with ``traces.record(model, path, <record_options>, optimizer=opt)``."""
    return textwrap.dedent(f"""
        import sys, torch, torch.nn.functional as F
        import traces
        from traces.zoo.models import MLP
        torch.manual_seed(0)
        model = MLP(64, 10, hidden=(256, 256))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x, t = torch.relu(torch.randn(32, 64)), torch.randint(0, 10, (32,))
        with traces.record(model, sys.argv[1], {record_options}, optimizer=opt) as rec:
            for i in range({steps}):
                opt.zero_grad()
                F.cross_entropy(model(x), t).backward()
                opt.step()
                rec.step()
    """)


def kill_after_files(script: str, path: Path, files: int, timeout_s: float = 120) -> None:
    """Start ``python -c script path``, wait until ``path`` holds ``files`` iteration files, SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout_s
        while len(list(path.glob("iter-*.npz"))) < files:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the recorder wrote nothing"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
