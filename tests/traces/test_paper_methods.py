"""The papers' models, schedules and the methods' paper-faithful details (hand and closed-form checks)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import traces
from hwsim.cli import main
from traces import TraceFormatError
from traces.format import bits
from traces.format.digest import seal
from traces.format.validate import validate
from traces.methods import make_method
from traces.stats.paper_stats import dsg_stats, mlevel_stats
from traces.training import augment_batch, train
from traces.zoo.models import build_model

# -- models ------------------------------------------------------------------------------------------


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_lenet_parameter_counts_are_the_published_ones():
    # LeNet-300-100: 784·300+300 + 300·100+100 + 100·10+10; LeNet-5-Caffe: 20·1·25+20 + 50·20·25+50
    # + 800·500+500 + 500·10+10 (the counts the pruning literature quotes: 266.6 k and 431 k)
    assert n_params(build_model("lenet-300-100", (1, 28, 28), 10)) == 266_610
    assert n_params(build_model("lenet-5-caffe", (1, 28, 28), 10)) == 431_080


@pytest.mark.parametrize("name", ["vgg8-paper", "resnet8", "resnet20", "wrn-8-2", "vgg16"])
def test_cifar_models_take_32x32(name):
    net = build_model(name, (3, 32, 32), 10)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    blocks = net.blocks()
    convs = sum(isinstance(b.gemm, torch.nn.Conv2d) for b in blocks)
    fcs = len(blocks) - convs
    expected = {"vgg8-paper": (6, 2), "resnet8": (9, 2), "resnet20": (21, 1), "wrn-8-2": (10, 1),
                "vgg16": (13, 2)}[name]  # resnets: stem + 2 per block + projections (wrn-8-2: 16 → 32 too)
    assert (convs, fcs) == expected
    if name == "vgg8-paper":  # the DSG paper's width: 128-128-256-256-512-512, FC 1024
        assert [b.gemm.weight.shape[0] for b in blocks] == [128, 128, 256, 256, 512, 512, 1024, 10]


# -- training schedule and augmentation ----------------------------------------------------------------


def test_augmentation_is_a_seeded_crop_and_flip():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    a = augment_batch(x, torch.Generator().manual_seed(7), pad=2)
    b = augment_batch(x, torch.Generator().manual_seed(7), pad=2)
    assert torch.equal(a, b)
    # scalar reference: draw the same offsets and flips, then crop and flip by loops
    g = torch.Generator().manual_seed(7)
    dy, dx = torch.randint(0, 5, (2,), generator=g), torch.randint(0, 5, (2,), generator=g)
    flip = torch.rand(2, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for n in range(2):
        for c in range(3):
            for i in range(5):
                for j in range(5):
                    jj = 4 - j if flip[n] else j
                    assert a[n, c, i, j] == padded[n, c, dy[n] + i, dx[n] + jj]


def test_cosine_schedule_best_and_last_accuracy():
    r = train(model="mlp", epochs=3, lr=0.05, schedule="cosine", weight_decay=1e-4)
    accs = [h["test_accuracy"] for h in r.history]
    assert r.test_accuracy == accs[-1] and r.best_accuracy == max(accs)
    assert r.history[r.best_epoch]["test_accuracy"] == r.best_accuracy


# -- synthetic data difficulty -----------------------------------------------------------------------


def dense_vgg8_accuracies(difficulty: float, epochs: int) -> list[float]:
    """Test accuracy per epoch of a dense VGG-8 (width 16) on 1,024 synthetic samples (small scale)."""
    from traces.methods import accuracy
    from traces.zoo.datasets import synthetic_cifar

    d = synthetic_cifar(n_train=1024, n_test=512, difficulty=difficulty)
    torch.manual_seed(0)
    net = build_model("vgg8", (3, 32, 32), 10)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(epochs):
        perm = torch.randperm(1024, generator=gen)
        for b in range(16):
            i = perm[b * 64:(b + 1) * 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i]), y[i]).backward()
            opt.step()
        out.append(accuracy(net, torch.from_numpy(d.x_test), torch.from_numpy(d.y_test)))
    return out


def test_dense_vgg8_does_not_saturate_the_synthetic_set():
    # the same budget saturates the old set (difficulty 0: 1.0 after one epoch) ...
    assert max(dense_vgg8_accuracies(0.0, 2)) >= 0.95
    # ... but not the default one: measured 0.45, 0.38, 0.82, 0.76, 0.56, 0.70 over 6 epochs
    accs = dense_vgg8_accuracies(1.0, 6)
    assert 0.3 < max(accs) <= 0.95


# -- DSG ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dsg_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dsg")
    out = {}
    for sel in ("drs", "oracle"):
        out[sel] = train(method="dsg", model="lenet5", epochs=1, every=3, max_batches=4, out=root / sel,
                         method_params={"gamma": 0.8, "selection": sel})
    return out


def jl_k(d: int, eps: float) -> int:
    return max(1, min(d, math.floor(math.log(d + 1) / eps**2)))


def test_dsg_defaults_are_the_papers():
    p = make_method("dsg").params
    assert p["eps"] == 0.5 and p["s"] == 3


def test_projection_additions_are_n_d_k_per_layer(dsg_runs):
    tr = traces.load(dsg_runs["drs"].trace)
    # LeNet-5 on 8×8 digits, padding 2: conv1 1→6 (5×5) keeps 8×8; pool 4×4; conv2 6→16 keeps 4×4
    geometry = {"conv1": (64 * 8 * 8, 1 * 25, 6), "conv2": (64 * 4 * 4, 6 * 25, 16),
                "fc1": (64, 16 * 2 * 2, 120), "fc2": (64, 120, 84)}  # (rows, d, K) for batch 64
    seen = 0
    for it in tr:
        for name, (rows, d, k_out) in geometry.items():
            st = it.layer_stats(name)
            k = jl_k(d, 0.5)
            assert st["proj_k"] == k
            assert st["drs_proj_adds"] == (rows + k_out) * d * k  # n vectors of length d, k outputs
            assert st["drs_macs"] == rows * k_out * k
            kept = math.ceil(0.2 * k_out - 1e-9)
            assert st["selection_compares"] == rows * k_out + rows * k_out * math.ceil(math.log2(kept + 1))
            seen += 1
    assert seen == 4 * len(tr)
    stats = dsg_stats(tr)
    assert (stats["drs_projection_additions"] ==
            sum((r + k_out) * d * jl_k(d, 0.5) for r, d, k_out in geometry.values())).all()
    # counting the additions can only lower the reduction
    assert (stats["inference_reduction_with_overheads"] < stats["inference_mac_reduction"]).all()
    assert (stats["training_reduction_with_overheads"] < stats["training_mac_reduction"]).all()


def test_replay_charges_dsgs_selection_work_on_the_vector_unit(dsg_runs):
    """Forward vector ops = 1 per output for the bias (the trace counts the activations as
    vector_ops rows of their own) + DRS MACs + projection additions + selection compares, each
    from the trace's own closed-form stats (checked above)."""
    from hwsim.simulate import simulate

    tr = traces.load(dsg_runs["drs"].trace)
    frame = simulate(dsg_runs["drs"].trace, "edge-npu", passes=("forward",)).to_frame()
    specs = {s.name: s for s in tr.layers}
    by_index = {it.index: it for it in tr}
    checked = 0
    assert tr.manifest["vector_ops"]
    for _, row in frame[frame["layer"].isin(["conv1", "conv2", "fc1", "fc2"])].iterrows():
        it = by_index[int(row["iteration"])]
        st = it.layer_stats(row["layer"])
        spec = specs[row["layer"]]
        expected = spec.bias * spec.numel("y", int(row["simulated_batch"])) + st["drs_macs"] \
            + st["drs_adds"] + st["selection_compares"]
        assert row["vector_ops"] == expected and st["selection_compares"] > 0
        checked += 1
    assert checked >= 4


def test_oracle_selection_costs_no_projection(dsg_runs):
    tr = traces.load(dsg_runs["oracle"].trace)
    validate(tr)
    for it in tr:
        for name in ("conv1", "conv2", "fc1", "fc2"):
            st = it.layer_stats(name)
            assert st["drs_macs"] == st["drs_proj_adds"] == st["selection_compares"] == st["drs_adds"] == 0
            assert st["recall_vs_oracle"] == 1.0
    stats = dsg_stats(tr)
    assert (stats["drs_overhead_macs"] == 0).all()
    assert (stats["inference_reduction_with_overheads"] == stats["inference_mac_reduction"]).all()
    # forward = selected outputs × Kr only: the closed form without the k term
    dense = sum(s.gemm("forward", 64).macs for s in tr.layers)
    with tr.iteration(0) as it:
        sel = sum(it.count(i, "y_sel") * s.reduction for i, s in enumerate(tr.layers) if s.name != "out")
    out = tr.layers[tr.layer_index("out")]
    assert stats["inference_mac_reduction"][0] == dense / (sel + out.gemm("forward", 64).macs)


def test_trace_stats_labels_both_conventions(dsg_runs, capsys):
    assert main(["trace", "stats", str(dsg_runs["drs"].trace)]) == 0
    text = capsys.readouterr().out
    assert "paper convention: projection adds left out" in text
    assert "with DRS projection adds + selection" in text


# -- DST ----------------------------------------------------------------------------------------------


def test_dst_alpha_defaults_follow_the_papers_table():
    assert make_method("dst", "mnist").params["alpha"] == 5e-4
    assert make_method("dst", "cifar10").params["alpha"] == 5e-6
    assert make_method("dst", "digits").params["alpha"] == 5e-4  # stands in for MNIST
    assert make_method("dst", "cifar10", alpha=1e-5).params["alpha"] == 1e-5


@pytest.mark.parametrize("decay_thresholds", [True, False])
def test_dst_threshold_weight_decay_is_the_official_choice_or_off(decay_thresholds):
    m = make_method("dst", threshold_weight_decay=decay_thresholds)
    m.prepare(build_model("mlp", (64,), 10))
    groups = m.param_groups(1e-4)
    thresholds = {id(layer.threshold) for layer in m.layers.values()}
    t_group = next(g for g in groups if {id(p) for p in g["params"]} == thresholds)
    assert t_group["weight_decay"] == (1e-4 if decay_thresholds else 0.0)
    rest = [g for g in groups if g is not t_group]
    assert all(g["weight_decay"] == 1e-4 for g in rest)
    assert sum(len(g["params"]) for g in groups) == len(list(m.model.parameters()))


def test_dst_thresholds_stay_finite_under_a_huge_alpha():
    r = train(method="dst", epochs=2, lr=0.5, method_params={"alpha": 50.0, "collapse_reset": False})
    for layer in r.method.layers.values():
        t = layer.threshold.detach()
        ceiling = layer.weight.detach().abs().reshape(len(t), -1).amax(dim=1) + 1 + 1e-3
        assert torch.isfinite(t).all() and (t <= ceiling + 1e-6).all()
    assert r.method.density() < 0.05  # the regularizer did push (everything, here) out


def test_dst_threshold_clamp_changes_no_gradient():
    from traces.methods import make_method
    from traces.zoo.models import build_model

    m = make_method("dst", "digits", "mlp")
    net = m.prepare(build_model("mlp", (64,), 10))
    layer = m.layers["fc1"]
    with torch.no_grad():
        layer.threshold[0] = 100.0  # row 0 fully masked, far outside the estimator's support
    grads = []
    for clamp in (False, True):
        if clamp:
            layer.clamp_threshold()
            top = layer.weight.detach()[0].abs().max()
            assert float(layer.threshold.detach()[0]) == pytest.approx(float(top) + 1.001)
        net.zero_grad()
        x = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
        net(x).pow(2).mean().backward()  # the task loss only (no α term)
        grads.append((layer.weight.grad[0].clone(), layer.threshold.grad[0].clone()))
    for w_grad, t_grad in grads:  # before and after the clamp: no gradient reaches row 0
        assert (w_grad == 0).all() and t_grad == 0


def tamper(trace_dir, edit) -> None:
    """Rewrite one mask-iteration file of a trace through ``edit(arrays)``, and reseal it (the content
    checks under test, not the file's digest, refuse it)."""
    f = sorted(trace_dir.glob("iter-*.masks.npz"))[0]
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files}
    edit(arrays)
    np.savez(f, **arrays)
    seal(trace_dir)


def test_a_trace_with_an_infinite_threshold_is_rejected(tmp_path):
    r = train(method="dst", epochs=1, every=5, max_batches=3, out=tmp_path / "t")
    validate(traces.load(r.trace))  # untouched: valid

    def set_inf(arrays):
        key = next(k for k in arrays if k.endswith("m_threshold"))
        t = arrays[key].copy()
        t[0] = np.inf
        arrays[key] = t
    tamper(tmp_path / "t", set_inf)
    with pytest.raises(TraceFormatError, match=r"L0\.threshold: found 1 non-finite threshold"):
        validate(traces.load(tmp_path / "t"))


def test_a_trace_whose_logged_threshold_overflowed_is_rejected(tmp_path):
    r = train(method="dst", epochs=1, every=5, max_batches=3, out=tmp_path / "t")

    def log_inf(arrays):
        meta = json.loads(arrays["meta"].tobytes())
        name = next(iter(meta["layer_stats"]))
        meta["layer_stats"][name]["threshold_max"] = 1e309  # JSON has no inf: a float that overflows
        arrays["meta"] = np.frombuffer(json.dumps(meta).replace("Infinity", "1e309").encode(), np.uint8)
    tamper(r.trace, log_inf)
    with pytest.raises(TraceFormatError):
        validate(traces.load(r.trace))


# -- multi-level ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlevel_run(tmp_path_factory):
    return train(method="mlevel", model="lenet5", epochs=4, every=10, out=tmp_path_factory.mktemp("ml") / "t",
                 method_params={"levels": (0.0538, 0.1338)})


def test_reroute_flops_are_monotone_and_the_closed_form(mlevel_run):
    tr = traces.load(mlevel_run.trace)
    validate(tr)  # nested levels, frozen core (rerouting-aware growth included)
    tables = mlevel_stats(tr)
    rr = tables["reroute"]
    flops = rr["flops_per_sample"].to_numpy()
    assert (np.diff(flops) >= 0).all() and flops[-1] > flops[0]
    # closed form: Σ_l 2·nnz(level mask of layer l)·output positions (conv: P·Q, from the geometry)
    positions = {"conv1": 64, "conv2": 16, "fc1": 1, "fc2": 1, "out": 1}
    with tr.iteration(tr.mask_iterations[-1]) as it:
        nnz = {s.name: [int(bits.unpack(it.array(i, f"level{lv}"), s.w_shape).sum()) for lv in (0, 1)]
               for i, s in enumerate(tr.layers)}
    names = [s.name for s in tr.layers]
    for r in range(len(names) + 1):
        expected = sum(2 * nnz[n][1 if i < r else 0] * positions[n] for i, n in enumerate(names))
        assert flops[r] == expected
    # the method's own evaluation agrees with the trace's accounting
    ev = mlevel_run.evaluation["reroute"]
    assert [row["flops_per_sample"] for row in ev] == flops.tolist()


def test_global_allocation_makes_flops_and_weight_fractions_differ(mlevel_run):
    levels = mlevel_run.evaluation["levels"]
    gaps = []
    for lv, target in zip(levels, (0.0538, 0.1338), strict=True):
        assert abs(lv["weight_fraction"] - target) < 0.002  # the level's density, network-wide
        gaps.append(abs(lv["flop_fraction"] - lv["weight_fraction"]))
        assert len(set(lv["layer_densities"].values())) > 1
    # measured on digits: 5.38 % weights / 8.78 % FLOPs, 13.38 % / 12.85 % (uniform: equal)
    assert max(gaps) > 0.01 and min(gaps) > 0.001


def test_uniform_allocation_keeps_every_layer_at_the_level():
    r = train(method="mlevel", epochs=4, max_batches=3, method_params={"allocation": "uniform"})
    for lv, target in zip(r.evaluation["levels"], (0.05, 0.15), strict=True):
        for density in lv["layer_densities"].values():
            assert abs(density - target) < 0.01


def test_nm_channel_grouping_is_the_official_sr_ste_grouping(tmp_path):
    import traces
    from traces.format.validate import validate

    r = train(method="nm", model="vgg8", epochs=1, max_batches=3, every=1, out=tmp_path / "t",
              method_params={"grouping": "channels"})
    tr = traces.load(tmp_path / "t")
    assert validate(tr).iterations == 3
    layer = r.method.layers["conv2"]  # 16 input channels, 3×3
    w = layer.nm_mask().numpy()  # (Kout, C, R, S)
    per_position = w.reshape(w.shape[0], w.shape[1] // 4, 4, 3, 3).sum(axis=2)  # 4 channels per group
    assert (per_position == 2).all()  # exactly 2 of every 4 input channels, at every kernel position
    along_kr = w.reshape(w.shape[0], -1).reshape(w.shape[0], -1, 4).sum(axis=2)
    assert (along_kr > 2).any()  # not 2:4 in the (C, R, S) order: the grouping really differs


def test_mlevel_dense_classifier_is_shared_and_frozen_while_levels_grow():
    r = train(method="mlevel", epochs=4, method_params={"dense_last": True})
    assert "out" not in r.method.layers and list(r.method.layers) == ["fc1", "fc2"]
    classifier = r.method.shared[0]
    assert not any(p.requires_grad for p in classifier.parameters())  # frozen in the last (grow) phases
    assert r.method.params["reroute_training"] is False  # the paper's procedure by default
