"""Run a recording script in a subprocess and SIGKILL it once it has written some iteration files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


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
