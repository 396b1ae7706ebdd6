"""A small synthetic trace and spec text shared by the sweep tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from traces.synth import conv, linear, write_synthetic

LAYERS = [conv("conv1", 3, 12, 12, 8, 3, padding=1), conv("conv2", 8, 12, 12, 16, 3, padding=1),
          linear("fc", 16 * 12 * 12, 10)]


def small_trace(path: Path, seed: int = 0) -> Path:
    """Three layers, batch 2, one iteration with masks (milliseconds per replay)."""
    return write_synthetic(LAYERS, path, batch=2, density={"x": 0.5, "w": 0.4, "dy": 0.3}, seed=seed)


def spec_text(trace: Path, *, axes: str | None = None, extra: str = "") -> str:
    """A spec over ``trace``: edge NPU rows × cols × GLB (12 points, 2 rejected) and the A100's SMs."""
    axes = axes or """      compute.rows: [8, 16, 32]
      compute.cols: [8, 16]
      memories.glb.capacity_bytes: ["64 KiB", "128 KiB"]"""
    return f"""version: 1
name: test
traces:
  - path: {trace}
designs:
  - base: edge-npu
    axes:
{axes}
    constraints: ["compute.rows * compute.cols <= 256"]
  - base: gpu-a100
    axes:
      gpu.sms: [54, 108]
options:
  passes: [forward, backward_data, backward_weight]
{extra}"""


def kill_sweep_midway(spec_path: Path, out: Path, parts_before_kill: int) -> None:
    """Run ``hwsim sweep SPEC --out OUT`` one point per batch in a subprocess and SIGKILL it once
    ``parts_before_kill`` result batches are on disk (or after two minutes)."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen([sys.executable, "-m", "hwsim.cli", "sweep", str(spec_path), "--out", str(out),
                             "--scheduler", "inprocess", "--batch-points", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / "results" / "points"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= parts_before_kill:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
