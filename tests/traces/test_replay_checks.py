"""What ``trace validate`` refuses, ``replay`` refuses too (issue 22, item 3): the cheap per-iteration
checks of ``traces.format.checks`` run whenever a trace is read with ``check=True``.

Each case damages one thing in a small trace written by ``TraceWriter`` and requires exit 2 with one
``hwsim: error:`` line naming the file and field, from ``trace validate`` and from ``replay`` (edge NPU
and GPU), never a number. The expected limits are closed-form element counts of the layer table.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import traces
from hwsim.cli import main
from traces.format import bits
from traces.format.digest import file_digest, seal
from traces.format.manifest import TENSOR_INDEX

from .helpers import LAYERS, write_trace

BATCH = 4


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(args)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("checks") / "clean.trace"
    write_trace(path, n_iter=6, batch=BATCH, mask_every=2)
    return path


def rewrite(path: Path, change) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def set_count(file: str, layer: int, tensor: str, value: int):
    at = (layer, TENSOR_INDEX[tensor])
    return lambda t: rewrite(t / file, lambda a: a["counts"].__setitem__(at, value))


def all_ones(t: Path) -> None:
    rewrite(t / "iter-00000002.masks.npz", lambda a: a.__setitem__("L0.x", np.full_like(a["L0.x"], 0xFF)))


def drop_member(t: Path) -> None:
    rewrite(t / "iter-00000002.masks.npz", lambda a: a.pop("L0.dy"))


def copy_over(t: Path) -> None:
    shutil.copy(t / "iter-00000000.masks.npz", t / "iter-00000002.masks.npz")


def manifest(change):
    def apply(t: Path) -> None:
        doc = json.loads((t / "manifest.json").read_text())
        change(doc)
        (t / "manifest.json").write_text(json.dumps(doc))
    return apply


CONV_X = 3 * 8 * 8  # elements of one sample's input of LAYERS[0]
CASES = {
    "count beyond the tensor (x = 1e9)": (set_count("iter-00000001.counts.npz", 0, "x", 10**9),
                                          f"counts[conv, x]: found 1000000000; expected -1 (absent) or "
                                          f"0..{CONV_X * BATCH}"),
    "count one past the tensor": (set_count("iter-00000001.counts.npz", 1, "x", 256 * BATCH + 1),
                                  f"0..{256 * BATCH}"),
    "negative count": (set_count("iter-00000001.counts.npz", 0, "dy", -7), "counts[conv, dy]: found -7"),
    "negative count on a mask iteration": (set_count("iter-00000002.masks.npz", 1, "w", -3),
                                           "counts[fc, w]: found -3"),
    "all-ones mask against its count": (all_ones, f"L0.x: found {CONV_X * BATCH} set bits"),
    "mask iteration with a tensor removed": (drop_member, "L0.dy: found field missing"),
    "iteration file copied over another": (copy_over, "meta.iteration: found 0; expected 2"),
    "garbage in gemm": (manifest(lambda d: d["layers"][0].__setitem__("gemm", "garbage")),
                        "layers[0].gemm: found 'garbage'"),
    "gemm of another layer": (manifest(lambda d: d["layers"][0].__setitem__("gemm", d["layers"][1]["gemm"])),
                              "layers[0].gemm"),
    "garbage in layout.bit_order": (manifest(lambda d: d["layout"].__setitem__("bit_order", "big")),
                                    "layout.bit_order: found 'big'"),
    "an unknown layout convention": (manifest(lambda d: d["layout"].__setitem__("endianness", "big")),
                                     "layout.endianness"),
    "impossible batch_size (gemm kept)": (manifest(lambda d: d.__setitem__("batch_size", 1000)),
                                          "layers[0].gemm"),
    "impossible batch_size (gemm rewritten)": (
        manifest(lambda d: (d.__setitem__("batch_size", 1000),
                            d.__setitem__("layers", [s.to_dict(1000) for s in LAYERS]))),
        "meta.batch: found 4; expected 1000"),
    "a manifest field it does not understand": (manifest(lambda d: d.__setitem__("frobnicate", 3)),
                                                "frobnicate: found a field this reader does not know"),
    # found by the corruption probe of issue 22: one flipped bit in the manifest, accepted before
    "a dtypes key it does not know": (
        manifest(lambda d: d["dtypes"].__setitem__("gradi%nt", d["dtypes"].pop("gradient"))),
        "dtypes.gradi%nt: found a key this reader does not know"),
    "an unknown dtype name": (manifest(lambda d: d["dtypes"].__setitem__("weight", "flo%t32")),
                              "dtypes.weight: found 'flo%t32'"),
    "a method key it does not know": (
        manifest(lambda d: d["method"].__setitem__("pasams", d["method"].pop("params"))),
        "method.pasams: found a key this reader does not know"),
    "a dilation on a linear layer": (manifest(lambda d: d["layers"][1].__setitem__("dilation", [1, 9])),
                                     "layers[1].dilation: found a linear layer has no window"),
    # counts each within its tensor's size, not with each other: an input element of the 3×3 conv
    # (4 output channels, no bias) reaches at most 3·3·4 = 36 outputs; one of fc (10 outputs) 10;
    # a weight of fc one output per sample (4); a conv output gradient 3·3·3 = 27 input positions
    "an input count too small for the output's": (set_count("iter-00000001.counts.npz", 0, "x", 1),
                                                  "counts[conv, y]: found"),
    "an all-zero input with non-zero outputs": (set_count("iter-00000003.counts.npz", 1, "x", 0),
                                                "expected at most 0 × 10 = 0"),
    "too few weights for the outputs": (set_count("iter-00000001.counts.npz", 1, "w", 1),
                                        "counts[fc, y]: found"),
    "an input gradient without an output gradient": (
        lambda t: (set_count("iter-00000001.counts.npz", 0, "dx", 5)(t),
                   set_count("iter-00000001.counts.npz", 0, "dy", 0)(t)),
        "counts[conv, dx]: found 5; expected at most 0 × 27 = 0"),
}


def changed_files(trace: Path) -> list[str]:
    """The iteration files whose digest is not the one the manifest recorded."""
    files = json.loads((trace / "manifest.json").read_text())["files"]
    return [f.name for f in sorted(trace.glob("iter-*.npz")) if file_digest(f) != files.get(f.name)]


@pytest.mark.parametrize("case", list(CASES))
def test_validate_and_replay_refuse(clean, tmp_path, case):
    """A damaged iteration file is refused by its digest first (it changed after recording); resealed
    (``seal``, what ``trace rehash`` does after validating), by the content check the case is about,
    which is what guards traces without digests (format 4 and older, another tool's writer)."""
    damage, message = CASES[case]
    trace = tmp_path / "t.trace"
    shutil.copytree(clean, trace)
    damage(trace)
    commands = [["trace", "validate", str(trace)]] + [
        ["replay", str(trace), "--arch", arch, "--iterations", "0,1,2,3,4,5"]
        for arch in ("edge-npu", "gpu-a100")]
    changed = changed_files(trace)
    expected = [(f"{changed[0]}: digest: found", False), (message, True)] if changed else [(message, False)]
    for line, reseal in expected:
        if reseal:
            seal(trace)
        for args in commands:
            status, out, err = run(args)
            assert status == 2, f"{case}: hwsim {' '.join(args)} exited {status}\n{out}"
            assert err.startswith("hwsim: error: ") and err.count("\n") == 1, err
            assert line in err, err
            assert "energy" not in out


def test_clean_trace_still_validates_and_replays(clean):
    """The checks refuse nothing a writer wrote: every iteration opens, counts and masks agree."""
    status, _, err = run(["trace", "validate", str(clean)])
    assert status == 0, err
    status, _, err = run(["replay", str(clean), "--arch", "gpu-a100", "--iterations", "0,1,2,3,4,5"])
    assert status == 0, err


def test_partial_masks_bound_the_count(tmp_path):
    """A mask of the first ``mask_batch`` samples: count >= its popcount, and count <= popcount plus
    what the other samples hold; a count outside is refused on reading, a count inside is read."""
    from traces import TraceWriter
    from traces.format.manifest import TENSORS, new_manifest

    spec = LAYERS[1]  # fc: x (256,), y (10,)
    per_sample = {"x": 256, "y": 10, "dy": 10}

    def write(path: Path, x_count: int) -> None:
        w = TraceWriter(path)
        m = new_manifest([spec], model={"name": "m"}, method={"name": "dense", "params": {}},
                         dataset={"name": "d"}, schedule={"every": 1, "mask_samples": 1}, batch_size=4)
        w.write_manifest(m)
        counts = np.full((1, len(TENSORS)), -1, dtype=np.int64)
        masks = {}
        for t in ("x", "y", "dy"):
            mask = np.zeros((1, per_sample[t]), dtype=bool)
            mask[0, :5] = True  # 5 set bits in the first sample
            masks[(0, t)] = bits.pack(mask)
            counts[0, TENSOR_INDEX[t]] = 5
        w_mask = np.ones(spec.w_shape, dtype=bool)
        masks[(0, "w")] = bits.pack(w_mask)
        counts[0, TENSOR_INDEX["w"]] = w_mask.size
        counts[0, TENSOR_INDEX["x"]] = x_count
        w.write_iteration(0, {"batch": 4, "mask_batch": 1}, counts, masks)
        m["complete"], m["iterations"] = True, 1
        w.write_manifest(m)

    write(tmp_path / "ok", 5 + 3 * 256)  # the other three samples all non-zero: the largest count
    with traces.load(tmp_path / "ok").iteration(0) as it:
        assert it.mask(0, "x").sum() == 5
    for bad in (4, 5 + 3 * 256 + 1):
        write(tmp_path / f"bad{bad}", bad)
        tr = traces.load(tmp_path / f"bad{bad}")
        with pytest.raises(traces.TraceFormatError, match=r"L0\.x"), tr.iteration(0) as it:
            it.mask(0, "x")


def test_synthetic_traces_are_exempt_from_the_count_bounds(tmp_path):
    """A synthetic trace writes y and dx dense whatever its inputs' densities: 12 inputs at density
    0.02 leave most samples without a non-zero input, whose outputs a recorded trace could not have.
    It validates (its y counts are a convention, not a recording)."""
    table = tmp_path / "layers.csv"
    table.write_text("fc,linear,12,4\n")
    out = tmp_path / "s.trace"
    status, _, err = run(["trace", "synth", "--layers", str(table), "--out", str(out), "--density",
                          "x=0.02,w=0.5,dy=0.3", "--batch", "8", "--iterations", "2", "--seed", "0"])
    assert status == 0, err
    with traces.load(out).iteration(0) as it:
        assert it.count(0, "x") < 8 and it.count(0, "y") == 8 * 4  # beyond x·4: a recording could not
    status, _, err = run(["trace", "validate", str(out)])
    assert status == 0, err
