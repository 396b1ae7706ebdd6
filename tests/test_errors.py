"""Issue 9's cases: every user-facing failure is one line naming the file and the fix, exit 2, no
traceback; whatever `validate` accepts, `replay` runs. Each case failed (traceback or exit 0) before."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.cli import main
from traces.format.digest import seal

from .traces.helpers import write_trace

PRESET = Path(__file__).resolve().parents[1] / "archs" / "presets" / "edge-npu.yaml"


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("errors") / "t"
    write_trace(path, n_iter=2, mask_every=1)
    return path


def one_line_error(capsys, args: list[str], expect: str) -> str:
    """Run the CLI in-process: exit 2, one ``hwsim: error:`` line (then indented problems), ``expect``."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwsim: error:") and "Traceback" not in err, err
    assert all(line.startswith("  ") for line in err.splitlines()[1:]), err
    assert expect in err, err
    return err


# -- architecture specs ---------------------------------------------------------------------------

def _spec(tmp_path: Path, old: str, new: str) -> str:
    text = PRESET.read_text()
    assert old in text
    path = tmp_path / "m.yaml"
    path.write_text(text.replace(old, new, 1))
    return str(path)


GLB_A_BITMAP = '''- level: "glb"  # memory name
      operand: "a"  # GEMM operand
      format: "bitmap"'''

SPEC_CASES = {
    "control character": ('name: "edge-npu"', 'name: "edge\x01npu"', "line 5: control character U+0001"),
    "binary garbage": (None, "\x00\x7f\x1b garbage", "control character U+0000"),
    "tab": ("clock_hz: 500000000.0", "clock_hz:\t500000000.0\n\tx: 1", "YAML syntax error"),
    "latency 1e300": ("latency_cycles: 500", "latency_cycles: 1.0e300",
                      "memories.dram.latency_cycles: must be <= 2**40"),
    "rows 1e20": ("rows: 16", "rows: 1.0e20", "compute.rows: must be <= 2**20"),
    "huge integer": ("cols: 16", "cols: 1" + "0" * 400, "compute.cols: must be <= 2**20"),
    "array too large": ("rows: 16  # PE rows\n  cols: 16", "rows: 1048576\n  cols: 1048576",
                        "MACs per cycle exceeds 2**30"),
    "duplicate operands": ('operands: ["a", "b", "c"]  # GEMM operands this level holds',
                           'operands: ["a", "b", "b"]', "memories.rf.operands: 'b' listed twice"),
    "duplicate condition": ('condition_on: ["a", "b"]', 'condition_on: ["a", "a"]',
                            "sparse.actions[0].condition_on: 'a' listed twice"),
    "conflicting formats": (GLB_A_BITMAP, GLB_A_BITMAP + '\n    - level: "glb"\n      operand: "a"\n'
                            '      format: "rle"', "a second format for operand 'a' at 'glb'"),
    "huge bits": ("psum_bits: 32", "psum_bits: 100000", "compute.precision.psum_bits: must be <= 64"),
    "huge energy": ("mac_energy_pj: 0.3", "mac_energy_pj: 1.0e200", "must be <= 1e+30"),
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_bad_spec_is_refused_by_validate_and_replay(tmp_path, capsys, trace, case):
    old, new, expect = SPEC_CASES[case]
    if old is None:
        path = tmp_path / "m.yaml"
        path.write_text(new)
        spec = str(path)
    else:
        spec = _spec(tmp_path, old, new)
    one_line_error(capsys, ["archs", "validate", spec], expect)
    one_line_error(capsys, ["replay", str(trace), "--arch", spec], expect)


# -- the command line: options, file system, pipes ------------------------------------------------

def test_empty_passes(capsys, trace):
    one_line_error(capsys, ["replay", str(trace), "--arch", "edge-npu", "--passes", ""],
                   "--passes: name at least one pass")
    one_line_error(capsys, ["replay", str(trace), "--arch", "edge-npu", "--passes", " , "],
                   "--passes: name at least one pass")


def _no_simulation(monkeypatch) -> None:
    import hwsim.simulate

    def refuse(*args, **kwargs):
        raise AssertionError("simulated before checking the output path")

    monkeypatch.setattr(hwsim.simulate, "simulate", refuse)


def test_out_under_a_file_is_refused_before_simulating(tmp_path, capsys, monkeypatch, trace):
    _no_simulation(monkeypatch)
    (tmp_path / "f").write_text("")
    replay = ["replay", str(trace), "--arch", "edge-npu", "--out"]
    one_line_error(capsys, [*replay, str(tmp_path / "f" / "r.csv")], "is a file, not a directory")
    (tmp_path / "d.csv").mkdir()
    one_line_error(capsys, [*replay, str(tmp_path / "d.csv")], "is a directory; give a file name")


def test_unwritable_out_is_refused_before_simulating(capsys, monkeypatch, trace):
    _no_simulation(monkeypatch)
    one_line_error(capsys, ["replay", str(trace), "--arch", "edge-npu", "--out", "/proc/hwsim/r.parquet"],
                   "cannot write in /proc")


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare -rm to mount a read-only file system")
def test_read_only_file_system(tmp_path, trace):
    """A real read-only mount (in a private mount namespace): one line, exit 2, before simulating."""
    ro = tmp_path / "ro"
    ro.mkdir()
    script = (f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} -m hwsim.cli replay {trace} "
              f"--arch edge-npu --out {ro}/sub/r.parquet")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(PRESET.parents[2])})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"hwsim: error: --out {ro}/sub/r.parquet: cannot write in {ro} "
                                   "(Read-only file system); choose a writable location")
    assert proc.stdout == ""  # refused before the replay printed anything


def test_disk_full_while_writing_names_the_file(tmp_path, capsys, monkeypatch, trace):
    import traces.format.writer

    real_open = open

    def full_disk_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if "w" in mode and ".tmp-" in str(file):
            def write(data):
                raise OSError(errno.ENOSPC, "No space left on device")
            f.write = write
        return f

    monkeypatch.setattr(traces.format.writer, "open", full_disk_open, raising=False)
    out = tmp_path / "r.csv"
    err = one_line_error(capsys, ["replay", str(trace), "--arch", "edge-npu", "--out", str(out)],
                         f"{out}: No space left on device: the disk is full")
    assert "free some space" in err
    assert not list(tmp_path.iterdir())  # no partial file, no temporary


def test_broken_pipe_is_quiet_and_the_results_are_written_first(tmp_path, trace):
    """`hwsim replay ... | head -0`: the reader is gone before the first line (unbuffered output, so the
    first print meets the closed pipe); the --out file is written anyway, no traceback, status 141."""
    import os

    out = tmp_path / "r.parquet"
    read, write = os.pipe()
    os.close(read)  # the reader has gone
    try:
        proc = subprocess.run([sys.executable, "-u", "-m", "hwsim.cli", "replay", str(trace), "--arch",
                               "edge-npu", "--out", str(out)], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    finally:
        os.close(write)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
    assert out.exists()


# -- trace manifests ------------------------------------------------------------------------------

def _conv(m: dict) -> dict:
    return m["layers"][0]


MANIFEST_CASES = {
    "short stride": (lambda m: _conv(m).update(stride=[1]), "layers[0].stride: found a 2-D conv needs one"),
    "short padding": (lambda m: _conv(m).update(padding=[1]), "layers[0].padding: found a 2-D conv needs"),
    "3-element dilation": (lambda m: _conv(m).update(dilation=[1, 1, 1]), "layers[0].dilation"),
    "zero stride": (lambda m: _conv(m).update(stride=[0, 1]), "layers[0].stride: found values must be in"),
    "inf stride": (lambda m: _conv(m).update(stride=[float("inf"), 1]), "Infinity is not a number"),
    "nan density": (lambda m: m["method"].update(params={"gamma": float("nan")}), "NaN is not a number"),
    "float stride": (lambda m: _conv(m).update(stride=[1.5, 1]), "stride: found expected a list of integers"),
    "string groups": (lambda m: _conv(m).update(groups="1"), "layers[0].groups: found expected an integer"),
    "groups 0": (lambda m: _conv(m).update(groups=0), "layers[0].groups: found must be >= 1"),
    "linear groups 0": (lambda m: m["layers"][1].update(groups=0), "layers[1].groups: found must be >= 1"),
    "linear groups 2": (lambda m: m["layers"][1].update(groups=2), "a linear layer has groups 1"),
    "negative batch": (lambda m: m.update(batch_size=-4), "batch_size: found -4"),
    "zero dimension": (lambda m: _conv(m).update(x_shape=[3, 0, 8]), "x_shape: found every dimension"),
    "huge shape": (lambda m: m["layers"][1].update(x_shape=[2**31], w_shape=[2**20, 2**31],
                                                   y_shape=[2**20]), "w_shape: found 2.25e+15 elements"),
    "method without name": (lambda m: m["method"].pop("name"), "method.name: found None"),
    "optimizer without params": (lambda m: m.update(optimizer={"name": "SGD"}), "optimizer.params"),
    "list of layers not objects": (lambda m: m["layers"].__setitem__(0, [1, 2]), "layers[0].(entry)"),
    "unknown layer field": (lambda m: _conv(m).update(colour="red"), "unexpected keyword argument 'colour'"),
    "tensors as text": (lambda m: m.update(tensors="x,w"), "tensors: found str"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_bad_manifest_is_refused_by_validate_and_replay(tmp_path, capsys, trace, case):
    mutate, expect = MANIFEST_CASES[case]
    path = tmp_path / "t"
    shutil.copytree(trace, path)
    doc = json.loads((path / "manifest.json").read_text())
    mutate(doc)
    (path / "manifest.json").write_text(json.dumps(doc))
    for args in (["trace", "validate", str(path)], ["trace", "info", str(path)],
                 ["replay", str(path), "--arch", "edge-npu"]):
        one_line_error(capsys, args, expect)


# -- layer tables and options of `hwsim trace synth` ----------------------------------------------

CSV_CASES = {
    "kernel larger than the input": ("a,conv2d,3,8,8,4,9,1,0,1\n", "line 1: y_shape: every dimension"),
    "groups 0": ("a,conv2d,3,8,8,4,3,1,1,0\n", "line 1: sizes must be positive"),
    "groups not dividing": ("a,conv2d,3,8,8,4,3,1,1,2\n", "groups 2 does not divide 3"),
    "negative channels": ("a,conv2d,-3,8,8,4,3,1,1,1\n", "line 1: sizes must be positive"),
    "short row": ("a,linear,3\n", "a linear row has 4 columns"),
    "binary": ("\udcff\udcfe\x00garbage", "not a text file"),
    "topology with zeros": (None, "sizes must be positive integers"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_layer_table(tmp_path, capsys, case):
    text, expect = CSV_CASES[case]
    table = tmp_path / "layers.csv"
    if text is None:
        table.write_text("name, M, N, K\ng, 0, 4, 4\n")
        option = "--scalesim-topology"
    else:
        table.write_bytes(text.encode("utf-8", "surrogateescape"))
        option = "--layers"
    err = one_line_error(capsys, ["trace", "synth", option, str(table), "--out", str(tmp_path / "o")], expect)
    assert str(table) in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option", [["--batch", "0"], ["--batch", "-2"], ["--iterations", "0"],
                                    ["--iterations", "-1"], ["--batch", "1048577"]])
def test_bad_synth_options(tmp_path, capsys, option):
    table = tmp_path / "layers.csv"
    table.write_text("fc,linear,8,4\n")
    one_line_error(capsys, ["trace", "synth", "--layers", str(table), *option, "--out", str(tmp_path / "o")],
                   "must be")
    assert not (tmp_path / "o").exists()


# -- iteration files ------------------------------------------------------------------------------

def test_npz_header_promising_terabytes_is_refused_without_allocating(tmp_path, capsys, trace):
    """A corrupt .npy header inside an intact zip (CRC recomputed) claims a 9 TB mask."""
    import zipfile

    path = tmp_path / "t"
    shutil.copytree(trace, path)
    f = path / "iter-00000000.masks.npz"
    with zipfile.ZipFile(f) as z:
        items = [(n, z.read(n)) for n in z.namelist()]
    with zipfile.ZipFile(f, "w") as z:
        for name, data in items:
            if name == "L0.x.npy":
                data = data.replace(b"'shape': (", b"'shape': (99999999999", 1)
            z.writestr(name, data)
    seal(path)  # resealed: the check under test, not the file's digest, refuses it
    for args in (["trace", "validate", str(path)], ["replay", str(path), "--arch", "edge-npu"]):
        one_line_error(capsys, args, "L0.x: found unreadable data (its header promises 9999999999996 bytes")


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--batch-size", "-1"], ["--every", "0"],
                                    ["--seed", "-1"], ["--mask-samples", "0"], ["--lr", "nan"], ["--lr", "0"],
                                    ["--method", "dsg", "--gamma", "inf"]])
def test_bad_train_options_are_refused_before_training(tmp_path, capsys, option):
    one_line_error(capsys, ["train", *option, "--out", str(tmp_path / "t")], "must be")
    assert not (tmp_path / "t").exists()


FIFO_INPUTS = {  # each option's FIFO was opened for reading and waited forever for a writer
    "scalesim cfg as --arch": (["replay", "{trace}", "--arch", "{fifo}.cfg"], "give a SCALE-Sim .cfg file"),
    "scalesim cfg validated": (["archs", "validate", "{fifo}.cfg"], "give a SCALE-Sim .cfg file"),
    "layer table": (["trace", "synth", "--layers", "{fifo}.csv", "--out", "{tmp}/s"],
                    "give a CSV layer table"),
    "topology": (["trace", "synth", "--scalesim-topology", "{fifo}.csv", "--out", "{tmp}/s"],
                 "give a CSV layer table"),
    "mapping file": (["replay", "{trace}", "--arch", "edge-npu", "--mapping", "{fifo}.yaml"],
                     "give a YAML mapping file"),
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="os.mkfifo is POSIX-only: no FIFOs to give")
@pytest.mark.parametrize("case", list(FIFO_INPUTS))
def test_a_fifo_given_as_an_input_file_is_refused_not_waited_on(tmp_path, capsys, trace, case):
    import signal

    args, expect = FIFO_INPUTS[case]
    fifo = tmp_path / "fifo"
    for ext in (".cfg", ".csv", ".yaml"):
        os.mkfifo(f"{fifo}{ext}")

    def hung(signum, frame):
        raise AssertionError(f"{case}: the command waited on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        one_line_error(capsys, [a.format(trace=trace, fifo=fifo, tmp=tmp_path) for a in args],
                       f"not a regular file (a FIFO, socket or device); {expect}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
