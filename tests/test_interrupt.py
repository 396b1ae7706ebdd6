"""Ctrl-C during `hwsim replay`: one line, exit status 130, however many times it is pressed.

The replay runs in a child process over 40 different iterations of layers that take a good
fraction of a second each (identical iterations could be served from caches; a press must land
while a layer worker is busy and others are queued); SIGINT is sent once, then as a
burst of presses. How long the exit takes is measured in the report of issue 22, not asserted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from traces.synth import conv, write_synthetic

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    layers = [conv(f"c{i}", 64, 56, 56, 64, 3, padding=1) for i in range(4)]
    return write_synthetic(layers, tmp_path_factory.mktemp("t") / "t", batch=4, iterations=40,
                           density={"x": 0.4, "w": 0.6, "dy": 0.5})  # 40 different iterations: a long replay


def _reading(pid: int, trace: Path) -> bool:
    """Whether process ``pid`` has a file of ``trace`` open (it is replaying)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(str(trace) in os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir))
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches /proc for the replay to start")
@pytest.mark.parametrize("presses", [1, 4])
def test_ctrl_c_during_replay_exits_130_with_one_line(trace, presses):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PYTHONFAULTHANDLER": "1"}
    child = subprocess.Popen([sys.executable, "-m", "hwsim.cli", "replay", str(trace), "--arch", "edge-npu"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        started = time.monotonic()
        while not _reading(child.pid, trace.resolve()) and time.monotonic() - started < 60:
            assert child.poll() is None, child.stderr.read()
            time.sleep(0.01)
        time.sleep(0.3)  # the layer workers are busy and more layers are queued
        for _ in range(presses):
            child.send_signal(signal.SIGINT)
            time.sleep(0.15)
        try:
            out, err = child.communicate(timeout=300)
        except subprocess.TimeoutExpired:  # show where it is stuck (faulthandler dumps every thread)
            child.send_signal(signal.SIGABRT)
            out, err = child.communicate()
            pytest.fail(f"still running 300 s after SIGINT:\n{err}")
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines() == ["hwsim: interrupted"], err
    assert out == ""  # stopped before any summary


LOADING_INTERRUPTED = """
import sys


class Interrupt:
    # Ctrl-C landing while the command's modules load (numpy, pandas, the verbs: most of a second)
    def find_spec(self, name, path=None, target=None):
        if name == "hwsim.cli.main":
            raise KeyboardInterrupt


sys.meta_path.insert(0, Interrupt())
from hwsim.cli import run

run()
"""


def test_ctrl_c_while_the_modules_load_prints_one_line():
    """Pressed while the command's modules were still loading, Ctrl-C printed a KeyboardInterrupt
    traceback from inside an import (the first half second of every command); the console script
    now starts before them: ``import hwsim.cli`` loads neither numpy nor the verbs."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    loaded = ("import sys, hwsim.cli; print(sorted(m for m in sys.modules "
              "if m.split('.')[0] in ('numpy', 'traces', 'archs') or m == 'hwsim.cli.main'))")
    light = subprocess.run([sys.executable, "-c", loaded], capture_output=True, text=True, env=env,
                           check=True)
    assert light.stdout.strip() == "[]"
    child = subprocess.run([sys.executable, "-c", LOADING_INTERRUPTED], capture_output=True, text=True,
                           env=env)
    assert (child.returncode, child.stderr) == (130, "hwsim: interrupted\n")


def test_ctrl_c_while_the_options_are_parsed_prints_one_line(monkeypatch, capsys):
    import importlib

    main_module = importlib.import_module("hwsim.cli.main")

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(main_module, "parser", interrupted)
    monkeypatch.setattr(main_module, "_ignore_further_interrupts", lambda: None)  # keep pytest's handler
    assert main_module.main(["archs", "list"]) == 130
    assert capsys.readouterr().err == "hwsim: interrupted\n"
