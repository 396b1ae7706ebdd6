"""Iteration files are sealed by digests in the manifest (format 5, ``traces.format.digest``).

A consistent rewrite of an iteration file (a count changed within every bound and the ``.npz`` re-saved
with valid CRC-32s, a file copied over another with its iteration number edited) passes every check
of the file's content; the digest the writer recorded refuses it, in ``trace validate`` and ``replay``,
in one line naming the file and what to do. ``trace rehash`` reseals a trace edited on purpose,
after validating it. The oracle for "consistent" is the content checks themselves: each rewrite here
passes ``validate`` with the digests off (``traces.load(..., digests=False)``).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import traces
from hwsim.cli import main
from traces.format import checks
from traces.format.digest import file_digest
from traces.format.manifest import TENSOR_INDEX, TENSORS
from traces.format.validate import validate

from .helpers import write_trace

REPLAY = ["--arch", "edge-npu", "--iterations", "0,1,2,3,4,5,6,7,8,9,10,11"]


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(args)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A trace recorded by ``traces.record`` (an MLP without biases, so that every count bound
    applies): 12 steps, masks every 4, counts-only steps in batch files of 2."""
    import torch
    import torch.nn.functional as F

    from traces.zoo.models import MLP

    path = tmp_path_factory.mktemp("digests") / "mlp.trace"
    torch.manual_seed(0)
    net = MLP(64, 10, hidden=(32, 16))
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            m.bias = None
    x, t = torch.relu(torch.randn(8, 64)), torch.randint(0, 10, (8,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with traces.record(net, path, every=4, optimizer=opt, seed=0, background=False, counts_batch=2) as rec:
        for _ in range(12):
            opt.zero_grad()
            F.cross_entropy(net(x), t).backward()
            opt.step()
            rec.step()
    return path


def resave(path: Path, change) -> None:
    """Rewrite an ``.npz`` as a user would: load every array, change some, save with ``np.savez``
    (valid zip, valid CRC-32s)."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def content_ok(trace: Path) -> bool:
    """Every check of ``validate`` but the digests passes."""
    try:
        validate(traces.load(trace, digests=False))
    except traces.TraceFormatError:
        return False
    return True


def refused(trace: Path) -> bool:
    try:
        validate(traces.load(trace))
    except traces.TraceFormatError:
        return True
    return False


def assert_one_line_refusal(trace: Path, name: str) -> None:
    for args in (["trace", "validate", str(trace)], ["replay", str(trace), *REPLAY],
                 ["trace", "info", str(trace)]):
        status, out, err = run(args)
        assert status == 2, f"hwsim {' '.join(args)} exited {status}\n{out}"
        assert err.startswith("hwsim: error: ") and err.count("\n") == 1, err
        assert f"{name}: digest: found" in err and "expected" in err and "trace rehash" in err, err
        assert "energy" not in out


def test_an_untouched_recorded_trace_is_sealed_and_passes(recorded):
    files = json.loads((recorded / "manifest.json").read_text())["files"]
    on_disk = sorted(f.name for f in recorded.glob("iter-*.npz"))
    # masks 0, 4, 8; batches 1-2, 5-6, 9-10; 3, 7 and 11 alone
    assert sorted(files) == on_disk and len(on_disk) == 9
    assert all(file_digest(recorded / n) == d for n, d in files.items())
    status, out, err = run(["trace", "validate", str(recorded)])
    assert status == 0, err
    assert "9 files sealed by their digests" in out
    status, out, err = run(["trace", "info", str(recorded)])
    assert status == 0 and "(format 5, complete, 9 files sealed by their digests)" in out, err
    status, out, err = run(["replay", str(recorded), *REPLAY])
    assert status == 0, err


def test_a_consistent_rewrite_of_counts_is_refused(recorded, tmp_path):
    """Lower ``y`` and ``dx`` of a hidden layer on a counts-only iteration: a result count lowered keeps
    every bound (at most fan × its operands' counts), so the content checks cannot see it."""
    trace = tmp_path / "t"
    shutil.copytree(recorded, trace)
    name = "iter-00000005-00000006.counts.npz"
    tr = traces.load(trace)
    before = tr.iteration(6).counts.copy()
    li = 1
    assert before[li, TENSOR_INDEX["y"]] > 1 and before[li, TENSOR_INDEX["dx"]] > 1

    def lower(a: dict) -> None:
        a["counts"][1, li, TENSOR_INDEX["y"]] //= 2  # row 1: iteration 6
        a["counts"][1, li, TENSOR_INDEX["dx"]] //= 2
    resave(trace / name, lower)
    assert content_ok(trace), "the rewrite is not consistent: the test would not test the digest"
    assert_one_line_refusal(trace, name)


def test_an_iteration_file_copied_over_another_with_its_number_edited_is_refused(recorded, tmp_path):
    trace = tmp_path / "t"
    shutil.copytree(recorded, trace)
    shutil.copy(trace / "iter-00000004.masks.npz", trace / "iter-00000008.masks.npz")

    def renumber(a: dict) -> None:
        meta = json.loads(a["meta"].tobytes())
        meta["iteration"] = 8
        a["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    resave(trace / "iter-00000008.masks.npz", renumber)
    assert content_ok(trace)
    assert_one_line_refusal(trace, "iter-00000008.masks.npz")


def test_random_rewrites_of_counts_are_all_refused(recorded, tmp_path):
    """129 random rewrites, each one count of one iteration set to a random value within its tensor's
    size and the file re-saved with valid CRC-32s (the probe of issue 22): the content checks (count
    bounds, popcounts) refuse some, the digests every one."""
    trace = tmp_path / "t"
    shutil.copytree(recorded, trace)
    tr = traces.load(trace)
    rng = np.random.default_rng(22)
    by_content = by_digest = 0
    n_cases = 129
    for case in range(n_cases):
        index = int(rng.choice(tr.iterations))
        file, row = tr.file_of(index), tr.row_of(index)
        with tr.iteration(index) as it:
            limit = checks.numel(tr.element_table, it.batch)
            present = np.argwhere(it.counts >= 0)
        li, ti = (int(v) for v in present[rng.integers(len(present))])
        old = int(tr.iteration(index).counts[li, ti])
        new = int(rng.integers(0, limit[li, ti] + 1))
        new = new if new != old else (old + 1 if old < limit[li, ti] else old - 1)
        original = file.read_bytes()

        def change(a: dict, at=(li, ti) if row is None else (row, li, ti), value=new) -> None:
            a["counts"][at] = value
        resave(file, change)
        by_content += not content_ok(trace)
        by_digest += refused(trace)
        file.write_bytes(original)
        assert by_digest == case + 1, f"{case}: {file.name} counts[{TENSORS[ti]}] {old} -> {new} accepted"
    print(f"\n{n_cases} random count rewrites: content checks refuse {by_content}, with digests {by_digest}")
    assert by_digest == n_cases
    assert by_content < n_cases  # the probe holds rewrites only the digests see


def test_every_file_is_checked_though_replay_reads_only_the_mask_iterations(recorded, tmp_path):
    """A default replay reads the mask iterations; a changed counts-only file is still refused
    (``check_unread`` opens every file the replay skips)."""
    trace = tmp_path / "t"
    shutil.copytree(recorded, trace)
    resave(trace / "iter-00000001-00000002.counts.npz", lambda a: a["counts"].__setitem__((0, 2, 8), 0))
    status, _, err = run(["replay", str(trace), "--arch", "gpu-a100"])
    assert status == 2 and "iter-00000001-00000002.counts.npz: digest: found" in err, err


def test_same_inputs_give_a_bit_identical_trace(tmp_path):
    """Members are dated the zip epoch, so the same data give the same files, digests and manifest
    (a recorded trace: tests/traces/test_background.py compares two recordings byte for byte)."""
    for name in ("a", "b"):
        write_trace(tmp_path / name, n_iter=5, mask_every=2, counts_batch=2)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert [n for n in names if (tmp_path / "a" / n).read_bytes() != (tmp_path / "b" / n).read_bytes()] == []
    with zipfile.ZipFile(tmp_path / "a" / "iter-00000000.masks.npz") as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_rehash_reseals_an_edit_after_validating_it(recorded, tmp_path):
    trace = tmp_path / "t"
    shutil.copytree(recorded, trace)
    name = "iter-00000009-00000010.counts.npz"
    resave(trace / name, lambda a: a["counts"].__setitem__((0, 0, TENSOR_INDEX["dw"]), 5))
    assert run(["trace", "validate", str(trace)])[0] == 2
    status, out, err = run(["trace", "rehash", str(trace)])
    assert status == 0, err
    assert f"9 iteration files validated and sealed; 1 digest recorded anew ({name})" in out
    status, out, err = run(["trace", "validate", str(trace)])
    assert status == 0 and "9 files sealed by their digests" in out, err
    # an edit the content checks refuse is not sealed: rehash refuses it and leaves the manifest alone
    resave(trace / name, lambda a: a["counts"].__setitem__((0, 0, TENSOR_INDEX["x"]), 10**9))
    manifest = (trace / "manifest.json").read_bytes()
    status, out, err = run(["trace", "rehash", str(trace)])
    assert status == 2 and err.count("\n") == 1 and f"{name}: counts[" in err and "1000000000" in err, err
    assert (trace / "manifest.json").read_bytes() == manifest


def _as_format(trace: Path, version: int) -> None:
    doc = json.loads((trace / "manifest.json").read_text())
    doc["format_version"] = version
    del doc["files"]
    if version < 4:
        del doc["layout"]["matmul_operands"], doc["vector_ops"]
    (trace / "manifest.json").write_text(json.dumps(doc))


def test_older_formats_read_unsealed_and_format_4_can_be_sealed(recorded, tmp_path):
    trace = tmp_path / "t"
    shutil.copytree(recorded, trace)
    _as_format(trace, 4)
    status, out, err = run(["trace", "validate", str(trace)])
    assert status == 0 and "files not sealed (format 4 records no digests)" in out, err
    status, out, err = run(["trace", "rehash", str(trace)])
    assert status == 0 and "format 4 -> 5" in out, err
    assert traces.load(trace).manifest["format_version"] == 5
    assert json.loads((trace / "manifest.json").read_text())["files"] == \
        json.loads((recorded / "manifest.json").read_text())["files"]
    _as_format(trace, 3)
    status, out, err = run(["trace", "rehash", str(trace)])
    assert status == 2 and "format_version: found 3; expected 4 or later" in err, err
    with pytest.raises(traces.TraceFormatError, match="files: found a files table in a version 4 manifest"):
        doc = json.loads((recorded / "manifest.json").read_text())
        doc["format_version"] = 4
        (trace / "manifest.json").write_text(json.dumps(doc))
        traces.load(trace)


@pytest.mark.parametrize("case", ["files removed", "a digest replaced", "a file left out", "a file gone"])
def test_a_damaged_files_table_is_refused(recorded, tmp_path, case):
    trace = tmp_path / "t"
    shutil.copytree(recorded, trace)
    doc = json.loads((trace / "manifest.json").read_text())
    name = "iter-00000004.masks.npz"
    if case == "files removed":
        del doc["files"]
        expect = "manifest.json: files: found nothing (field missing)"
    elif case == "a digest replaced":
        doc["files"][name] = doc["files"]["iter-00000000.masks.npz"]
        expect = f"{name}: digest: found"
    elif case == "a file left out":
        del doc["files"][name]
        expect = f"{name}: file: found a file manifest.json's files does not list"
    else:  # iterations 9 and 10 moved from their batch file to files of their own: all there, not the files
        with np.load(trace / "iter-00000009-00000010.counts.npz") as z:
            counts, metas = z["counts"], json.loads(z["meta"].tobytes())
        (trace / "iter-00000009-00000010.counts.npz").unlink()
        for row, index in enumerate((9, 10)):
            with open(trace / f"iter-{index:08d}.counts.npz", "wb") as f:
                np.savez(f, counts=counts[row], meta=np.frombuffer(json.dumps(metas[row]).encode(), np.uint8))
        expect = "iter-00000009-00000010.counts.npz: file: found nothing there"
    (trace / "manifest.json").write_text(json.dumps(doc))
    for args in (["trace", "validate", str(trace)], ["replay", str(trace), *REPLAY]):
        status, _, err = run(args)
        assert status == 2 and err.count("\n") == 1 and expect in err, (args, err)


def test_an_incomplete_trace_reads_its_unsealed_files_with_a_note(recorded, tmp_path):
    """A recording killed before its manifest's last rewrite lists none of the files (the recorder writes
    the manifest before the first file and at close): replay refuses it unless --allow-incomplete, and
    then says the files are not sealed."""
    trace = tmp_path / "t"
    shutil.copytree(recorded, trace)
    doc = json.loads((trace / "manifest.json").read_text())
    doc["complete"], doc["iterations"], doc["files"] = False, None, {}
    (trace / "manifest.json").write_text(json.dumps(doc))
    status, out, err = run(["replay", str(trace), *REPLAY])
    assert status == 2 and "--allow-incomplete" in err, err
    status, out, err = run(["replay", str(trace), *REPLAY, "--allow-incomplete"])
    assert status == 0 and "(9 files not sealed by digests)" in err, err
    status, out, err = run(["trace", "validate", str(trace)])
    assert status == 0 and "9 of 9 files not sealed" in out, err


def test_the_synthetic_writers_seal_their_files(tmp_path):
    """``trace synth`` and sweeps draw traces with ``write_synthetic`` and ``write_transformer``: their
    manifests list every file they wrote with its digest."""
    from traces.synth import conv, linear, write_synthetic
    from traces.synth_transformer import parse_config, write_transformer

    paths = [write_synthetic([conv("c", 3, 4, 6, 6, 3, padding=1), linear("f", 4 * 6 * 6, 5)], tmp_path / "s",
                             batch=2, density={"x": 0.5}, iterations=3, seed=0),
             write_transformer(parse_config("layers=1,d_model=16,heads=2,seq=8,d_ff=32,vocab=11", batch=1),
                               tmp_path / "g", density={"x": 0.5}, iterations=2, seed=0)]
    for path in paths:
        files = json.loads((path / "manifest.json").read_text())["files"]
        assert sorted(files) == sorted(f.name for f in path.glob("iter-*.npz")) != []
        assert all(file_digest(path / n) == d for n, d in files.items())
        validate(traces.load(path))


def test_every_single_byte_change_of_an_iteration_file_is_refused(tmp_path):
    """Each byte of a counts file changed in turn (XOR 0xFF): every one is refused on opening. Data
    bytes fail their member's CRC-32; the others are the structure the digest covers, including the
    zip fields no reader uses (attributes, disk numbers, the version that made the file: 42 of this
    file's 698 bytes, accepted before digests)."""
    write_trace(tmp_path / "t", n_iter=2, batch=2, mask_every=2)
    f = tmp_path / "t" / "iter-00000001.counts.npz"
    raw = f.read_bytes()
    accepted = []
    for at in range(len(raw)):
        f.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:])
        try:
            traces.load(tmp_path / "t").iteration(1).close()
            accepted.append(at)
        except traces.TraceFormatError:
            pass
    assert len(raw) > 600 and accepted == []
