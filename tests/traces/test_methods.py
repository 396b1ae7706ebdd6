"""The three sparse training methods: signatures, invariants, and each paper's accounting."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

import traces
from traces import TraceFormatError
from traces.format.digest import seal
from traces.format.validate import validate
from traces.stats.dsg_ops import projection_dim
from traces.stats.paper_stats import dsg_stats, dst_stats, mlevel_stats
from traces.training import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One short recorded run per method on the MLP with digits (shared by the tests below)."""
    root = tmp_path_factory.mktemp("methods")
    out = {}
    for method, params, epochs in (("dsg", {"gamma": 0.5, "eps": 0.5}, 2), ("dst", {}, 8),
                                   ("mlevel", {"levels": (0.05, 0.15)}, 4)):
        out[method] = train(method=method, epochs=epochs, every=5, out=root / method, method_params=params)
    return out


def rows_of(mask: np.ndarray) -> np.ndarray:
    return mask.reshape(-1, mask.shape[-1])


# -- DSG ---------------------------------------------------------------------------------------------

def test_dsg_trace_invariants(runs):
    tr = traces.load(runs["dsg"].trace)
    assert validate(tr).iterations == runs["dsg"].iterations
    dsg_layers = tr.manifest["method"]["params"]["layers"]
    assert list(dsg_layers) == ["fc1", "fc2"]  # the classifier stays dense
    for it in tr.masks():
        for name in dsg_layers:
            sel = it.mask(name, "y_sel")
            assert (rows_of(sel).sum(axis=1) == math.ceil(0.5 * sel.shape[-1])).all()
            assert not (it.mask(name, "dy") & ~sel).any()  # dY within the selection
            y_out = it.mask(name, "y_out")
            assert not (y_out & ~sel).any()  # DMS: the block output is zero outside the selection
            if it.index > 0:  # ... and equals it once BN's β has moved off 0 (traces/format/invariants.py)
                assert np.array_equal(y_out, sel)
            spec = tr.layers[tr.layer_index(name)]
            assert it.layer_stats(name)["proj_k"] == projection_dim(spec.reduction, 0.5)


def test_dsg_forward_macs_match_the_closed_form(runs):
    tr = traces.load(runs["dsg"].trace)
    gamma, eps = 0.5, 0.5
    expected_fwd = 0
    for s in tr.layers:  # fc1 64→128, fc2 128→64 are selected; out is dense
        rows, kr, k_out = 64, s.reduction, s.w_shape[0]
        if s.name == "out":
            expected_fwd += rows * kr * k_out
        else:
            k = math.floor(math.log(kr + 1) / eps**2)  # the JL dimension, computed independently
            expected_fwd += rows * k_out * (k + (1 - gamma) * kr)  # rows·K·(k + (1 − γ)·Kr)
    stats = dsg_stats(tr)
    fwd = stats["dsg_forward_macs"] + stats["drs_overhead_macs"]
    assert (fwd == expected_fwd).all()
    dense_fwd = sum(64 * s.reduction * s.w_shape[0] for s in tr.layers)
    assert (stats["inference_mac_reduction"] == dense_fwd / expected_fwd).all()
    assert (stats["dense_training_macs"] == 3 * dense_fwd).all()
    # the sparse weight-gradient alternative is beside the paper's dense count, on mask iterations
    sparse = stats["dsg_backward_weight_macs_sparse"]
    assert sparse.notna().sum() == len(tr.mask_iterations)
    assert (sparse.dropna() < stats["dsg_backward_weight_macs_dense"][0]).all()


def test_dsg_memory_follows_zvc(runs):
    tr = traces.load(runs["dsg"].trace)
    row = dsg_stats(tr).iloc[0]
    with tr.iteration(0) as it:
        weights = sum(s.numel("w", 1) for s in tr.layers) * 4
        acts = sum(s.numel("x", 64) * 4 for s in tr.layers)
        zvc = sum(it.count(i, "x") * 4 + math.ceil(s.numel("x", 64) / 8) for i, s in enumerate(tr.layers))
        masks = sum(math.ceil(s.numel("y", 64) / 8) for s in tr.layers if s.name != "out")
    assert row["training_memory_dense_bytes"] == weights + acts
    assert row["training_memory_dsg_bytes"] == weights + zvc + masks


def test_dsg_oracle_beats_random_at_high_sparsity_and_logs_recall():
    acc, recall = {}, {}
    for sel in ("oracle", "random", "drs"):
        r = train(method="dsg", epochs=8, method_params={"gamma": 0.9, "selection": sel})
        acc[sel] = r.test_accuracy
        recall[sel] = r.method.layers["fc1"].last_stats["recall_vs_oracle"]
    assert acc["oracle"] > acc["random"] + 0.3  # measured: 0.925 vs 0.162
    assert recall["oracle"] == 1.0 and recall["random"] < 0.5 and 0 < recall["drs"] <= 1


# -- DST ---------------------------------------------------------------------------------------------

def test_dst_density_falls_and_output_layer_stays_densest(runs):
    df = dst_stats(traces.load(runs["dst"].trace))
    per_epoch = len(df) // 8
    assert df["model"].iloc[0] > 0.99  # thresholds start at 0: dense
    assert df["model"].iloc[-1] < 0.5 * df["model"].iloc[per_epoch]  # falls well after the first epoch
    last = df.iloc[-1]
    assert last["out"] > max(last["fc1"], last["fc2"])  # the output layer stays the densest


def test_dst_mask_is_thresholded_weights_and_flips_are_logged(runs):
    tr = traces.load(runs["dst"].trace)
    flips = 0
    for it in tr.masks():
        for li, s in enumerate(tr.layers):
            w, _ = it.weights(li)
            expected = np.abs(w.astype(np.float32)) > it.array(li, "threshold").reshape(-1, 1)
            assert (it.mask(li, "w") == expected).mean() > 0.999  # float16 only blurs values at t
            stats = it.layer_stats(s.name)
            flips += stats["flips_on"] + stats["flips_off"]
    assert flips > 0  # the mask churns


# -- multi-level -------------------------------------------------------------------------------------

def test_mlevel_nested_levels_and_frozen_core(runs):
    tr = traces.load(runs["mlevel"].trace)
    validate(tr)
    kept, total = np.zeros(2), 0
    with tr.iteration(tr.mask_iterations[-1]) as it:
        for li, s in enumerate(tr.layers):
            l0 = traces.format.bits.unpack(it.array(li, "level0"), s.w_shape)
            l1 = traces.format.bits.unpack(it.array(li, "level1"), s.w_shape)
            assert not (l0 & ~l1).any()
            assert l0.mean() >= 0.01  # the global allocation's per-layer floor
            kept += [l0.sum(), l1.sum()]
            total += l0.size
    # global allocation: the network's weight density is the level's (per-layer densities differ)
    assert abs(kept[0] / total - 0.05) < 0.002 and abs(kept[1] / total - 0.15) < 0.002
    grow = [i for i in tr.mask_iterations if tr.iteration(i).layer_stats(0).get("stage") == 1]
    assert len(grow) >= 2
    first = tr.iteration(grow[0])
    core = traces.format.bits.unpack(first.array(0, "level0"), tr.layers[0].w_shape)
    for i in grow[1:]:
        later = tr.iteration(i)
        assert np.array_equal(later.weights(0)[0][core], first.weights(0)[0][core])
        assert later.layer_stats(0)["core_hash"] == first.layer_stats(0)["core_hash"]


def test_mlevel_macs_grow_with_reroute_point_and_dense_level_is_better(runs):
    tr = traces.load(runs["mlevel"].trace)
    stats = mlevel_stats(tr)
    flops = stats["reroute"]["flops_per_sample"].tolist()
    assert flops == sorted(flops) and flops[0] < flops[-1]
    acc = stats["levels"]["accuracy"].tolist()
    assert acc[-1] >= acc[0]
    assert len(runs["mlevel"].evaluation["reroute"]) == len(tr.layers) + 1


# -- invariants reject tampered traces ---------------------------------------------------------------

def _rewrite(path, index, change):
    f = next(path.glob(f"iter-{index:08d}.*.npz"))
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(f, **arrays)


@pytest.mark.parametrize(("method", "member", "expect"), [
    ("dsg", "L0.y_sel", "L0.y_sel: found rows keep"),
    ("dst", "L0.m_threshold", "L0.w: found weight mask differs from |W| > t"),
    ("mlevel", "L0.m_level0", "L0.m_level0: found not a subset of level 1"),
])
def test_invariants_reject_tampered_traces(runs, tmp_path, method, member, expect):
    path = tmp_path / method
    shutil.copytree(runs[method].trace, path)
    index = traces.load(path).mask_iterations[-1]
    with traces.load(path, check=False).iteration(index) as it:
        numel = int(np.prod(it.mask_shape(0, "y_sel")))

    def tamper(arrays):
        a = arrays[member]
        if method == "dsg":  # move a selected output of the first row to the last: the count holds
            flat = np.unpackbits(a, bitorder="little")[:numel]
            i, j = np.flatnonzero(flat)[0], np.flatnonzero(flat == 0)[-1]
            flat[i], flat[j] = 0, 1
            arrays[member] = np.packbits(flat, bitorder="little")
            return
        arrays[member] = a + np.float32(0.05) if a.dtype.kind == "f" else a ^ np.uint8(0xFF)

    _rewrite(path, index, tamper)
    with pytest.raises(TraceFormatError, match="digest: found"):  # changed after recording
        traces.load(path).iteration(index)
    seal(path)  # resealed (as `trace rehash` would without its validation): the invariant refuses it
    with pytest.raises(TraceFormatError, match="invariant to hold") as e:
        traces.load(path).iteration(index)
    assert expect in str(e.value)
    traces.load(path, check=False).iteration(index).close()  # readable when asked not to check
