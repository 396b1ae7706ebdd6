"""Every kind of damage to a trace's files gives one line and exit 2 (issue 22, item 4).

A zip archive's member records its compression method in its central-directory entry (offset 10;
``zipfile`` ignores the local header's copy, so changing only that one reads the intact data) and an
encryption flag (bit 0 of the general-purpose flags, offset 8); one changed byte there makes
``zipfile`` raise ``NotImplementedError`` or ``RuntimeError`` where a truncated file raises
``BadZipFile``. A FIFO in place of a file would block a reader forever. ``trace validate``, ``trace info``
and ``replay`` must refuse each in one ``hwsim: error:`` line, exit 2, without hanging (an alarm fails
a case that runs past 20 s).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import struct
from pathlib import Path

import pytest

from hwsim.cli import main
from traces.format.digest import seal

from .helpers import write_trace

CENTRAL = b"PK\x01\x02"  # a central-directory entry


class Hang(Exception):
    """A command ran past the alarm (not an OSError: the CLI would report that as a user error)."""


def run(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"hwsim {' '.join(args)} hung")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(20)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            status = main(args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return status, err.getvalue()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corrupt") / "clean.trace"
    write_trace(path, n_iter=6, batch=2, mask_every=3, counts_batch=2)  # masks 0, 3; batches 1-2, 4-5
    return path


def _patch(path: Path, signature: bytes, offset: int, value: bytes, nth: int = 0) -> None:
    raw = bytearray(path.read_bytes())
    at = -1
    for _ in range(nth + 1):
        at = raw.index(signature, at + 1)
    raw[at + offset:at + offset + len(value)] = value
    path.write_bytes(bytes(raw))


def method(code: int, nth: int = 0):
    return lambda p: _patch(p, CENTRAL, 10, struct.pack("<H", code), nth)


def encrypted(p: Path) -> None:
    _patch(p, CENTRAL, 8, struct.pack("<H", 1))


def fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def directory(p: Path) -> None:
    p.unlink()
    p.mkdir()


def dangling(p: Path) -> None:
    p.unlink()
    p.symlink_to(p.with_name("nowhere"))


DAMAGE = {
    "unsupported compression method (central directory)": method(99),
    "bzip2 method on stored data": method(12),
    "lzma method on stored data": method(14),
    "deflate method on stored data": method(8),
    "encrypted flag": encrypted,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "a FIFO": fifo,
    "a directory": directory,
    "a dangling link": dangling,
    # zipfile reads the central copy and skips these: caught by comparing the two (issue 22 probes)
    "local header method": lambda p: _patch(p, b"PK\x03\x04", 8, struct.pack("<H", 16)),
    "local header CRC-32": lambda p: _patch(p, b"PK\x03\x04", 14, b"\x00\x00"),
    "bytes appended": lambda p: p.write_bytes(p.read_bytes() + b"junk" * 10),
}
FILES = ["iter-00000000.masks.npz", "iter-00000001-00000002.counts.npz", "manifest.json"]
COMMANDS = {"validate": ["trace", "validate"], "info": ["trace", "info"],
            "replay": ["replay", "--arch", "edge-npu", "--iterations", "0,1,2,3,4,5"]}


ZIP_ONLY = {k for k in DAMAGE if "method" in k or "header" in k or k == "encrypted flag"}  # zip headers
# every damage on both archives; on the manifest (JSON, not a zip) all but the zip-header ones
CASES = [(name, kind) for name in FILES for kind in DAMAGE if name.endswith(".npz") or kind not in ZIP_ONLY]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_damage_is_one_line_exit_2(clean, tmp_path, name, kind):
    trace = tmp_path / "t.trace"
    shutil.copytree(clean, trace)
    DAMAGE[kind](trace / name)
    for command, args in COMMANDS.items():
        argv = [*args[:2], str(trace), *args[2:]] if command != "replay" else [args[0], str(trace), *args[1:]]
        status, err = run(argv)
        assert status == 2, f"{kind} in {name}: {command} exited {status}: {err}"
        assert err.startswith("hwsim: error: ") and err.count("\n") == 1, f"{kind}, {name}, {command}: {err}"
        assert name in err or str(trace) in err, err


def test_validate_reads_every_member(clean, tmp_path):
    """``validate`` reads every member of every file: an unsupported method on any one is refused
    (``info`` and ``replay`` read what they need, and refuse damage there, as above)."""
    import zipfile

    name = "iter-00000000.masks.npz"
    with zipfile.ZipFile(clean / name) as z:
        n_members = len(z.namelist())
    assert n_members > 5
    for nth in range(n_members):
        trace = tmp_path / f"t{nth}.trace"
        shutil.copytree(clean, trace)
        method(99, nth)(trace / name)
        status, err = run(["trace", "validate", str(trace)])
        assert status == 2 and err.count("\n") == 1 and name in err, (nth, err)


def test_clean_copy_passes(clean, tmp_path):
    """The same commands on the undamaged trace exit 0 (the damage, not the setup, is refused)."""
    for args in (["trace", "validate", str(clean)], ["trace", "info", str(clean)],
                 ["replay", str(clean), "--arch", "edge-npu", "--iterations", "0,1,2,3,4,5"]):
        status, err = run(args)
        assert status == 0, err


def _flip_inside(path: Path, member_name: str) -> None:
    """Flip one bit in the middle of a stored member's data (its CRC-32 no longer matches)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member_name)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    data_at = info.header_offset + 30 + name_len + extra_len
    raw[data_at + info.compress_size // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def _weights_trace(tmp_path: Path, weights_of=None) -> Path:
    """One mask iteration of dense x, w and y masks with stored weights (``weights_of(w, dw)`` may
    change them before they are written)."""
    import numpy as np

    from traces import TraceWriter
    from traces.format import bits
    from traces.format.manifest import TENSOR_INDEX, TENSORS, new_manifest

    from .helpers import LAYERS

    trace = tmp_path / "w.trace"
    writer = TraceWriter(trace)
    manifest = new_manifest(LAYERS, model={"name": "synthetic"}, method={"name": "dense", "params": {}},
                            dataset={"name": "random"}, schedule={"every": 1}, batch_size=2)
    writer.write_manifest(manifest)
    rng = np.random.default_rng(0)
    counts = np.full((len(LAYERS), len(TENSORS)), -1, dtype=np.int64)
    masks = {}
    for li, spec in enumerate(LAYERS):
        for t in ("x", "w", "y"):
            counts[li, TENSOR_INDEX[t]] = spec.numel(t, 2)
            masks[(li, t)] = bits.pack(np.ones(spec.tensor_shape(t, 2), dtype=bool))
    weights = {li: (rng.standard_normal(s.w_shape).astype(np.float16),
                    rng.standard_normal(s.w_shape).astype(np.float16)) for li, s in enumerate(LAYERS)}
    if weights_of is not None:
        weights = {li: weights_of(*wd) for li, wd in weights.items()}
    writer.write_iteration(0, {"batch": 2}, counts, masks, weights)
    writer.write_manifest({**manifest, "complete": True, "iterations": 1})
    return trace


REPLAY_FWD = ["--iterations", "0", "--passes", "fwd"]


def test_damage_in_a_member_replay_does_not_need_is_refused_too(tmp_path):
    """A bit flipped inside the stored weights (which an edge-NPU replay never reads) makes every
    command refuse the file: an iteration file is checked whole (CRC-32 of every member) on opening."""
    trace = _weights_trace(tmp_path)
    replay = ["replay", str(trace), "--arch", "edge-npu", *REPLAY_FWD]
    assert run(replay)[0] == 0
    _flip_inside(trace / "iter-00000000.masks.npz", "L0.weight.npy")
    for args in (replay, ["trace", "info", str(trace)], ["trace", "validate", str(trace)]):
        status, err = run(args)
        assert status == 2 and err.count("\n") == 1, (args, err)
        assert "iter-00000000.masks.npz: L0.weight" in err and "CRC-32" in err, err


def _nan_weights(w, dw):
    w = w.copy()
    w.flat[3] = float("nan")
    return w, dw


def _inf_deltas(w, dw):
    dw = dw.copy()
    dw.flat[0] = float("inf")
    return w, dw


@pytest.mark.parametrize(("change", "field"), [(_nan_weights, "L0.weight"), (_inf_deltas, "L0.delta_weight")])
def test_non_finite_stored_weights_are_refused(tmp_path, change, field):
    """NaN or infinite stored weights (written intact) would give a ReRAM replay garbage cell writes."""
    trace = _weights_trace(tmp_path, change)
    replay = ["replay", str(trace), "--arch", "reram-isaac", *REPLAY_FWD]
    for args in (replay, ["trace", "validate", str(trace)]):
        status, err = run(args)
        assert status == 2 and f"{field}: found 1 NaN or infinite values" in err, (args, err)


def test_a_weight_without_its_update_is_refused(tmp_path):
    """Stored weights come in pairs (the weight and its update): one left out is refused on opening."""
    import numpy as np

    trace = _weights_trace(tmp_path)
    f = trace / "iter-00000000.masks.npz"
    with np.load(f) as z:
        kept = {k: z[k] for k in z.files if k != "L1.delta_weight"}
    np.savez(f, **kept)
    seal(trace)  # resealed: the check under test, not the file's digest, refuses it
    for args in (["replay", str(trace), "--arch", "edge-npu", *REPLAY_FWD], ["trace", "info", str(trace)]):
        status, err = run(args)
        assert status == 2 and "L1.delta_weight: found field missing" in err, (args, err)


def test_a_mask_replay_does_not_read_is_checked_by_its_header(clean, tmp_path):
    """A ``y`` mask rewritten with another dtype or length (intact zip, CRC and all) was refused by
    ``validate`` but replayed with exit 0 (an edge-NPU replay never reads ``y``): every mask and
    weight member's header is checked when the iteration is opened."""
    import numpy as np

    for change in (lambda v: v.astype(np.int64), lambda v: v[:-1]):
        trace = tmp_path / "t.trace"
        shutil.rmtree(trace, ignore_errors=True)
        shutil.copytree(clean, trace)
        f = trace / "iter-00000000.masks.npz"
        with np.load(f) as z:
            members = {k: z[k] for k in z.files}
        members["L0.y"] = change(members["L0.y"])
        np.savez(f, **members)
        seal(trace)  # resealed: the check under test, not the file's digest, refuses it
        for args in (COMMANDS["replay"], COMMANDS["info"], COMMANDS["validate"]):
            argv = [args[0], str(trace), *args[1:]] if args[0] == "replay" else [*args, str(trace)]
            status, err = run(argv)
            assert status == 2 and "iter-00000000.masks.npz: L0.y: found" in err, (argv, err)


def test_counts_of_an_unsigned_type_are_refused(clean, tmp_path):
    """Counts rewritten as uint8 turn every -1 (absent) into 255, a plausible count (a y_sel of 255
    selected outputs): a signed integer type is required, as the writers write int64."""
    import numpy as np

    trace = tmp_path / "t.trace"
    shutil.copytree(clean, trace)
    f = trace / "iter-00000001-00000002.counts.npz"
    with np.load(f) as z:
        members = {k: z[k] for k in z.files}
    members["counts"] = members["counts"].astype(np.uint8)
    np.savez(f, **members)
    seal(trace)  # resealed: the check under test, not the file's digest, refuses it
    for args in (COMMANDS["replay"], COMMANDS["validate"]):
        argv = [args[0], str(trace), *args[1:]] if args[0] == "replay" else [*args, str(trace)]
        status, err = run(argv)
        assert status == 2 and "counts: found uint8" in err, (argv, err)


@pytest.mark.parametrize("arch", ["edge-npu", "gpu-a100", "reram-isaac"])
@pytest.mark.parametrize(("name", "member_name"), [("iter-00000001-00000002.counts.npz", "counts.npy"),
                                                   ("iter-00000004-00000005.counts.npz", "meta.npy"),
                                                   ("iter-00000003.masks.npz", "L1.dy.npy")])
def test_damage_in_a_file_the_replay_does_not_open_is_refused(clean, tmp_path, arch, name, member_name):
    """A replay of the mask iterations (the default) never opened the counts-only files, and one of
    ``--iterations 0`` not iteration 3's file: a bit flipped in them replayed with exit 0 where
    ``validate`` refused the trace. Every file is checked (CRC-32, headers, counts) before a replay."""
    trace = tmp_path / "t.trace"
    shutil.copytree(clean, trace)
    _flip_inside(trace / name, member_name)
    extra = ["--iterations", "0"] if name.endswith(".masks.npz") else []
    for args in (["replay", str(trace), "--arch", arch, *extra], ["trace", "validate", str(trace)]):
        status, err = run(args)
        assert status == 2 and err.count("\n") == 1, (args, err)
        assert f"{name}: {member_name.removesuffix('.npy')}: found damaged data" in err or \
            f"{name}: (archive)" in err, (args, err)
