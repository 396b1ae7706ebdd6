"""`--memory-budget` caps the whole process's peak resident memory, on every family.

Each replay runs in its own process, which writes its peak RSS (``/proc/self/status`` VmHWM) as
it exits. What the process holds before the replay (interpreter, numpy, pandas, pyarrow) is
read from the CLI's own refusal of a tiny budget, so the budgets below follow this machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archs.units import format_size, parse
from traces.synth import conv, linear, write_synthetic

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ["edge-npu", "gpu-a100", "reram-isaac"]
MIB = 2**20


# Runs the CLI and, on the way out, writes the process's peak resident set (VmHWM: the peak of this
# program's memory since exec; getrusage's ru_maxrss of a child would include the pytest process it
# was forked from).
LAUNCH = """import atexit, sys
def peak():
    with open("/proc/self/status") as f, open(sys.argv[1], "w") as out:
        out.write(next(line for line in f if line.startswith("VmHWM:")).split()[1])
atexit.register(peak)
from hwsim.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def replay(trace: Path, arch: str, budget: float) -> tuple[int, int, str]:
    """(exit status, peak RSS in bytes, stderr) of `hwsim replay` in its own process."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out, peak = trace.parent / f"{arch}.parquet", trace.parent / f"{arch}.peak"
    done = subprocess.run([sys.executable, "-c", LAUNCH, str(peak), "replay", str(trace), "--arch", arch,
                           "--memory-budget", str(int(budget)), "--out", str(out)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    return done.returncode, int(peak.read_text()) * 1024, done.stderr  # VmHWM is in kB


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """Six layers whose masks, im2col operands and tiles together take a few hundred MB."""
    layers = [conv(f"c{i}", 64, 56, 56, 64, 3, padding=1) for i in range(5)] + [linear("fc", 3136, 64)]
    return write_synthetic(layers, tmp_path_factory.mktemp("t") / "t", batch=8,
                           density={"x": 0.4, "w": 0.6, "dy": 0.5})


HELD: dict[str, float] = {}


@pytest.fixture
def held(trace, arch):
    """What `hwsim replay` on ``arch`` holds before replaying, as its refusal of a 1 MiB budget says
    (each family imports its own package and tables: the edge NPU's mapper tables take about 2 MiB
    more than the GPU model's)."""
    if arch not in HELD:
        status, _, err = replay(trace, arch, MIB)
        assert status == 2, err
        found = re.search(r"this process holds ([\d.,]+ \w+) before", err)
        assert found, err
        HELD[arch] = parse(found.group(1).replace(",", ""), "held_bytes")
    return HELD[arch]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc")
@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("replay_mib", [32, 64])
def test_the_budget_bounds_the_peak_resident_memory(trace, held, arch, replay_mib):
    """With 32 MiB for the replay a family runs its layers one at a time (NPU tiles in chunks) or
    refuses up front; with 64 MiB every family runs. Either way the peak stays under the budget
    (before issue 22 the NPU and ReRAM replays of this trace went over a 190 MiB budget)."""
    budget = held + 32 * MIB + replay_mib * MIB  # the report's reserve and the replay's part
    status, peak, err = replay(trace, arch, budget)
    if replay_mib == 64 or status != 0:
        assert status == (0 if replay_mib == 64 else 2), err
    assert peak <= budget, f"{arch}: peak {format_size(peak)} over the budget {format_size(budget)}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc")
@pytest.mark.parametrize("arch", ["gpu-a100", "reram-isaac"])
def test_a_budget_below_what_the_process_holds_is_refused_in_one_line(trace, arch):
    status, _, err = replay(trace, arch, 64 * MIB)  # the case: GPU and ReRAM ignored it
    assert status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "--memory-budget 64.0 MiB: this process holds" in err and "give more than" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc")
@pytest.mark.parametrize("arch", FAMILIES)
def test_a_layer_over_the_budget_is_refused_before_it_is_read(trace, held, arch):
    budget = held + 32 * MIB + 3 * MIB  # room for the report, not for a layer
    status, peak, err = replay(trace, arch, budget)
    assert status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(r"layer c0 needs about .* give at least|layer c0, forward: one row fold .* budget", err)
    assert peak <= budget, f"{arch}: peak {format_size(peak)} over the budget {format_size(budget)}"


def test_sizes_print_in_units_that_fit():
    assert [format_size(v) for v in (0, 512, 1536, 64 * MIB, 1.5 * 2**30, 2e12)] == \
        ["0 B", "512 B", "1.50 KiB", "64.0 MiB", "1.50 GiB", "1.82 TiB"]
