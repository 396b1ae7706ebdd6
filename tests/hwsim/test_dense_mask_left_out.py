"""A mask iteration may leave out the mask of a dense tensor (its count equals its size:
``traces.format.checks.check_mask_members``); the reader then gives the all-ones mask, so every
pass is replayed as with the stored mask. On main, replay skipped the passes needing that mask
without a word (``x`` left out: no forward and no backward-weight rows) or died with a TypeError
(``w`` left out: backward-weight)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import traces
from hwsim.simulate import simulate
from traces.format.digest import seal
from traces.synth import conv, linear, write_synthetic


@pytest.fixture(scope="module")
def dense_trace(tmp_path_factory):
    layers = [conv("conv", 3, 4, 6, 6, 3, padding=1), linear("fc", 4 * 6 * 6, 5)]
    path = tmp_path_factory.mktemp("dense") / "t.trace"
    return write_synthetic(layers, path, batch=2, density={"x": 1.0, "w": 1.0, "dy": 0.5}, seed=0)


def _drop(trace, tmp_path, member: str):
    copy = tmp_path / f"without-{member}.trace"
    shutil.copytree(trace, copy)
    f = copy / "iter-00000000.masks.npz"
    with np.load(f) as z:
        kept = {k: z[k] for k in z.files if k != member}
    assert len(kept) == len(np.load(f).files) - 1
    np.savez(f, **kept)
    seal(copy)  # as a writer that leaves the mask out would have sealed it
    return copy


@pytest.mark.parametrize("member", ["L0.x", "L0.w", "L1.w"])
def test_a_dense_mask_left_out_replays_as_the_stored_all_ones_mask(dense_trace, tmp_path, member):
    want = simulate(dense_trace, "edge-npu").to_frame()
    tr = traces.load(_drop(dense_trace, tmp_path, member))
    with tr.iteration(0) as it:
        layer, tensor = member[1], member.split(".")[1]
        assert it.mask(int(layer), tensor).all()
    got = simulate(tr, "edge-npu").to_frame()
    assert list(got[["layer", "pass"]].itertuples(index=False)) == \
        list(want[["layer", "pass"]].itertuples(index=False))
    assert got["cycles"].tolist() == want["cycles"].tolist()
    assert got["energy_pj"].tolist() == want["energy_pj"].tolist()
