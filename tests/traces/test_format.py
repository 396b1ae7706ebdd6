"""Trace format v1: round trip, weight-mask deltas, bad input, bounded-memory reading."""

from __future__ import annotations

import json
import tracemalloc
import zipfile

import numpy as np
import pytest

import traces
from traces import TraceFormatError
from traces.format.digest import seal
from traces.format.validate import validate

from .helpers import LAYERS, write_trace


def test_round_trip_masks_counts_and_weight_deltas(tmp_path):
    written = write_trace(tmp_path / "t", n_iter=12, mask_every=2, snapshot_every=3)
    tr = traces.load(tmp_path / "t")
    assert tr.iterations == list(range(12)) and tr.mask_iterations == [0, 2, 4, 6, 8, 10]
    assert tr.complete and [s.name for s in tr.layers] == ["conv", "fc"]
    kinds = []
    for it in tr.masks():
        for li in range(len(LAYERS)):
            for name, mask in written[it.index][li].items():
                np.testing.assert_array_equal(it.mask(li, name), mask)
                assert it.count(li, name) == int(mask.sum())
        kinds.append("full" if "L0.w" in it._members else "delta")
    # snapshot every 3 mask iterations; the others store only the flipped indices
    assert kinds == ["full", "delta", "delta", "full", "delta", "delta"]
    assert validate(tr).mask_iterations == 6


def test_delta_falls_back_to_a_snapshot_when_not_smaller(tmp_path):
    write_trace(tmp_path / "t", n_iter=4, mask_every=1, snapshot_every=100, flip_fraction=0.5)
    tr = traces.load(tmp_path / "t")
    with tr.iteration(1) as it:
        assert "L0.w" in it._members and "L0.w_delta" not in it._members


def test_no_pickles_anywhere(tmp_path):
    write_trace(tmp_path / "t")
    for f in (tmp_path / "t").glob("iter-*.npz"):
        with np.load(f, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)


# -- bad input: each a one-line TraceFormatError naming file, field, found, expected -----------

def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_manifest(tmp_path):
    write_trace(tmp_path / "t")
    (tmp_path / "t" / "manifest.json").unlink()
    with pytest.raises(TraceFormatError) as e:
        traces.load(tmp_path / "t")
    msg = one_line(e)
    assert "manifest.json: manifest: found no such file; expected the JSON manifest" in msg


def test_unknown_format_version(tmp_path):
    write_trace(tmp_path / "t")
    m = tmp_path / "t" / "manifest.json"
    doc = json.loads(m.read_text())
    doc["format_version"] = 99
    m.write_text(json.dumps(doc))
    with pytest.raises(TraceFormatError) as e:
        traces.load(tmp_path / "t")
    assert "manifest.json: format_version: found 99; expected 1, 2, 3, 4 or 5 (this hwsim reads" \
        in one_line(e)


def test_truncated_iteration_file(tmp_path):
    write_trace(tmp_path / "t")
    f = tmp_path / "t" / "iter-00000002.masks.npz"
    f.write_bytes(f.read_bytes()[:300])
    tr = traces.load(tmp_path / "t")
    with pytest.raises(TraceFormatError) as e:
        tr.iteration(2)
    msg = one_line(e)
    assert msg.startswith(str(f)) and "(archive): found unreadable data" in msg
    assert "expected a complete .npz iteration file" in msg
    with pytest.raises(TraceFormatError):
        validate(tr)


def test_corrupt_iteration_file(tmp_path):
    write_trace(tmp_path / "t")
    f = tmp_path / "t" / "iter-00000000.masks.npz"
    with zipfile.ZipFile(f) as z:
        info = z.getinfo("L0.x.npy")
    data = bytearray(f.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + 200  # inside the member's payload
    data[start : start + 8] = b"\xff" * 8
    f.write_bytes(bytes(data))
    with pytest.raises(TraceFormatError) as e:  # checked whole on opening
        traces.load(tmp_path / "t").iteration(0)
    msg = one_line(e)
    assert "L0.x: found damaged data (bad CRC-32)" in msg
    with traces.load(tmp_path / "t", check=False).iteration(0) as it, pytest.raises(TraceFormatError) as e:
        it.mask(0, "x")  # unchecked: the damage shows where the member is read
    msg = one_line(e)
    assert "L0.x: found unreadable data" in msg and "CRC" in msg


def test_mask_size_disagrees_with_layer_table(tmp_path):
    write_trace(tmp_path / "t")
    f = tmp_path / "t" / "iter-00000000.masks.npz"
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["L1.x"] = arrays["L1.x"][:-3]
    np.savez(f, **arrays)
    seal(tmp_path / "t")  # resealed, so that the check under test, not the file's digest, refuses it
    expected = ("L1.x: found uint8 of 125 bytes; expected uint8 of 128 bytes for a mask of shape (4, 256) "
                "(layer 'fc')")
    with pytest.raises(TraceFormatError) as e:  # the member headers are checked on opening
        traces.load(tmp_path / "t").iteration(0)
    assert expected in one_line(e)
    with traces.load(tmp_path / "t", check=False).iteration(0) as it, pytest.raises(TraceFormatError) as e:
        it.mask("fc", "x")  # unchecked: where the mask is read
    assert expected in one_line(e)


def test_path_that_is_not_a_trace(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(TraceFormatError) as e:
        traces.load(f)
    assert "notes.txt: path: found a file; expected a trace directory" in one_line(e)
    with pytest.raises(TraceFormatError) as e:
        traces.load(tmp_path / "nowhere")
    assert "nowhere: path: found nothing there; expected a trace directory" in one_line(e)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceFormatError, match="manifest: found no such file"):
        traces.load(tmp_path / "empty")


def test_layer_table_geometry_is_checked(tmp_path):
    write_trace(tmp_path / "t")
    m = tmp_path / "t" / "manifest.json"
    doc = json.loads(m.read_text())
    doc["layers"][0]["y_shape"] = [4, 7, 7]
    m.write_text(json.dumps(doc))
    with pytest.raises(TraceFormatError) as e:
        traces.load(tmp_path / "t")
    assert "layers[0].y_shape: found (4, 7, 7), but the geometry gives (4, 8, 8)" in one_line(e)


def test_count_mask_disagreement_is_caught_by_validate(tmp_path):
    write_trace(tmp_path / "t", n_iter=1)
    f = tmp_path / "t" / "iter-00000000.masks.npz"
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["counts"][1, 0] += 1
    np.savez(f, **arrays)
    seal(tmp_path / "t")  # resealed, so that the check under test, not the file's digest, refuses it
    with pytest.raises(TraceFormatError, match=r"L1\.x: found \d+ set bits; expected \d+, the recorded"):
        validate(traces.load(tmp_path / "t"))


# -- bounded memory ------------------------------------------------------------------------------

BIG = [traces.LayerSpec("conv", "conv2d", "conv", 0, "Conv2d", (32, 64, 64), (32, 32, 3, 3),
                        (32, 64, 64), padding=(1, 1))]


def peak_bytes_reading(path) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    for it in traces.load(path):
        for name in ("x", "y", "dy", "w"):
            it.mask(0, name)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_reading_memory_is_bounded_by_one_iteration(tmp_path):
    write_trace(tmp_path / "short", n_iter=3, mask_every=1, layers=BIG, batch=8)
    write_trace(tmp_path / "long", n_iter=30, mask_every=1, layers=BIG, batch=8)
    one_iteration = 4 * 8 * 32 * 64 * 64  # unpacked bool x, y, dy (w is small), bytes
    short, long = peak_bytes_reading(tmp_path / "short"), peak_bytes_reading(tmp_path / "long")
    assert long < 1.5 * one_iteration  # a tenth of all 30 iterations' masks, and then some
    assert long < 1.25 * short  # ten times the iterations, the same peak


def test_missing_iteration_files_are_refused(tmp_path):
    """A complete trace with a file deleted in the middle, or its last files gone, does not load
    (so neither validate nor replay extrapolates from what is left)."""
    import subprocess
    import sys

    write_trace(tmp_path / "t", n_iter=66, mask_every=10)
    assert json.loads((tmp_path / "t" / "manifest.json").read_text())["iterations"] == 66
    assert len(traces.load(tmp_path / "t")) == 66
    middle = sorted((tmp_path / "t").glob("iter-00000033.*"))
    middle[0].unlink()
    with pytest.raises(TraceFormatError, match=r"iterations: found 1 of 66 iteration files missing "
                                               r"\(iter-00000033\)"):
        traces.load(tmp_path / "t")
    write_trace(tmp_path / "u", n_iter=66, mask_every=10)
    for f in sorted((tmp_path / "u").glob("iter-*.npz"))[40:]:
        f.unlink()
    with pytest.raises(TraceFormatError, match=r"26 of 66 iteration files missing \(iter-00000040, "):
        traces.load(tmp_path / "u")
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", "trace", "validate", str(tmp_path / "u")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "26 of 66 iteration files missing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_killed_recording_may_lack_its_tail_but_not_a_middle_file(tmp_path):
    write_trace(tmp_path / "t", n_iter=8, mask_every=2)
    m = json.loads((tmp_path / "t" / "manifest.json").read_text())
    m["complete"], m["iterations"], m["files"] = False, None, {}  # as a killed recording leaves it
    (tmp_path / "t" / "manifest.json").write_text(json.dumps(m))
    for f in sorted((tmp_path / "t").glob("iter-*.npz"))[6:]:
        f.unlink()
    assert len(traces.load(tmp_path / "t")) == 6
    assert len(traces.load(tmp_path / "t").unsealed) == 6  # written after the manifest's last rewrite
    next((tmp_path / "t").glob("iter-00000003.*")).unlink()
    with pytest.raises(TraceFormatError, match=r"1 of 6 iteration files missing \(iter-00000003\)"):
        traces.load(tmp_path / "t")
