"""The field's baselines (SET, RigL, SNFS, GMP, Top-KAST): allocations, update rules, replay.

Each update rule runs once, through the method, on a toy layer whose weights, gradients and
momenta the test sets; the exact pruned and regrown sets are compared with a slow reference
written here with Python's ``sorted`` (ties by index), independent of traces.methods.rules.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import traces
from traces.methods import BASELINES, make_method
from traces.methods.allocation import kept_counts, layer_densities
from traces.training import train
from traces.zoo.models import build_model

# -- allocations ---------------------------------------------------------------------------------------


def test_erk_densities_by_hand():
    shapes = [(100, 50), (10, 100)]  # Linear (out, in): ERK raw 150/5000 and 110/1000
    eps = 0.2 * 6000 / (150 + 110)  # the budget 1200 weights over Σ raw·n
    assert layer_densities(shapes, 0.2, "erk") == pytest.approx([0.03 * eps, 0.11 * eps])
    # at 0.5 the second layer would exceed 1: dense, and the first takes the rest (3000 − 1000)
    assert layer_densities(shapes, 0.5, "erk") == pytest.approx([2000 / 5000, 1.0])
    # conv: (out, in, kh, kw) raw = (16 + 8 + 3 + 3) / (16·8·9); a dense layer is outside the budget
    d = layer_densities([(16, 8, 3, 3), (10, 64)], 0.1, "erk", dense=[False, True])
    assert d == pytest.approx([0.1, 1.0])
    assert layer_densities(shapes, 0.2, "uniform") == [0.2, 0.2]
    assert kept_counts(shapes, [0.2, 0.2]) == [1000, 200]


def test_erk_keeps_the_network_budget():
    shapes = [(32, 3, 3, 3), (64, 32, 3, 3), (128, 64, 3, 3), (10, 128)]
    for density in (0.05, 0.1, 0.3):
        d = layer_densities(shapes, density, "erk")
        kept = sum(di * math.prod(s) for di, s in zip(d, shapes, strict=True))
        assert kept == pytest.approx(density * sum(math.prod(s) for s in shapes))
        assert d[0] > d[2]  # small layers stay denser


# -- a toy layer: the method on the small MLP, one layer's tensors set by the test -------------------------


def toy(method: str, **params):
    m = make_method(method, "digits", "mlp", **params)
    model = m.prepare(build_model("mlp", (64,), 10, m.block_order))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    m.attach_optimizer(opt)
    m.begin_training(1000, 100)
    return m, model, opt


def slow_smallest(values, positions, n):
    """The n positions of smallest value (ties: lower index first)."""
    return {i for _, i in sorted((values[i], i) for i in positions)[:n]}


def slow_largest(values, positions, n):
    return {i for _, i in sorted((-values[i], i) for i in positions)[:n]}


def flat_set(mask: torch.Tensor) -> set[int]:
    return set(mask.flatten().nonzero().flatten().tolist())


def seeded(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_rigl_update_drops_smallest_and_grows_largest_gradient():
    m, _, _ = toy("rigl", density=0.2, allocation="uniform", delta_t=10)
    layer = m.layers["fc2"]
    w, g = seeded(layer.weight.shape, 1), seeded(layer.weight.shape, 2)
    with torch.no_grad():
        layer.weight.copy_(w * layer.mask)
    before = flat_set(layer.mask)
    for i, other in enumerate(m.layers.values()):
        other.dense_grad = seeded(other.weight.shape, 30 + i)
    layer.dense_grad = g
    m.update(10)  # step 10 of 1000: an update step, T_end = 750
    f = 0.3 / 2 * (1 + math.cos(math.pi * 10 / 750))
    n = math.floor(f * len(before))
    wv, gv = w.flatten().abs().tolist(), g.flatten().abs().tolist()
    dropped = slow_smallest(wv, before, n)
    kept = before - dropped
    grown = slow_largest(gv, set(range(w.numel())) - kept, n)
    assert flat_set(layer.mask) == kept | grown
    assert len(flat_set(layer.mask)) == len(before)  # constant count
    new = grown - before
    assert (layer.weight.detach().flatten()[list(new)] == 0).all()  # new connections start at 0


def test_rigl_records_a_dense_weight_gradient_only_on_update_steps(tmp_path):
    r = train(method="rigl", epochs=1, every=1, max_batches=12, out=tmp_path / "t",
              method_params={"delta_t": 5, "density": 0.2, "end_fraction": 1.0})
    tr = traces.load(tmp_path / "t")
    seen = []
    for it in tr.masks():
        dense = it.layer_stats("fc1")["dense_grad"]
        needed = it.mask("fc1", "dw_needed")
        w = it.mask("fc1", "w")
        seen.append(dense)
        if dense:
            assert needed is None or needed.all()
        else:
            assert np.array_equal(needed, w)
        assert int(w.sum()) == r.method.keep["fc1"]  # constant count every iteration
    assert [i for i, d in enumerate(seen) if d] == [4, 9]  # steps 5 and 10 of 12


def test_set_update_drops_by_sign_and_regrows_as_many_at_random():
    m, _, _ = toy("set", density=0.3, allocation="uniform")
    layer = m.layers["fc1"]
    w = seeded(layer.weight.shape, 3)
    with torch.no_grad():
        layer.weight.copy_(w * layer.mask)
    before = flat_set(layer.mask)
    m.update(100)  # the end of the first epoch (100 iterations per epoch)
    vals = w.flatten().tolist()
    pos = [i for i in before if vals[i] > 0]
    neg = [i for i in before if vals[i] < 0]
    dropped = slow_smallest(vals, pos, math.floor(0.3 * len(pos))) | \
        slow_largest(vals, neg, math.floor(0.3 * len(neg)))
    after = flat_set(layer.mask)
    assert before - dropped <= after  # every survivor stays
    grown = after - (before - dropped)
    assert len(grown) == len(dropped)  # as many regrown as dropped
    m.update(150)  # not an epoch end: nothing changes
    assert flat_set(layer.mask) == after


def test_snfs_update_redistributes_by_momentum():
    m, _, opt = toy("snfs", density=0.2)
    names = list(m.layers)
    moms = {}
    with torch.no_grad():
        for i, name in enumerate(names):
            layer = m.layers[name]
            layer.weight.copy_(seeded(layer.weight.shape, 10 + i) * layer.mask)
            moms[name] = seeded(layer.weight.shape, 20 + i) * (1.0, 2.0, 0.1)[i]  # no layer fills up
            opt.state[layer.weight]["momentum_buffer"] = moms[name].clone()
    before = {n: flat_set(m.layers[n].mask) for n in names}
    wvals = {n: m.layers[n].weight.detach().flatten().abs().tolist() for n in names}
    m.update(100)  # the end of epoch 1 of 10
    p = 0.005 + (0.5 - 0.005) * 0.5 * (1 + math.cos(math.pi * 100 / 1000))
    kept = {n: before[n] - slow_smallest(wvals[n], before[n], math.ceil(p * len(before[n]))) for n in names}
    removed = sum(len(before[n]) - len(kept[n]) for n in names)
    score = {n: float(np.mean([abs(moms[n].flatten()[i].item()) for i in before[n]])) for n in names}
    share = {n: score[n] / sum(score.values()) * removed for n in names}
    grow = {n: math.floor(share[n]) for n in names}
    spare = removed - sum(grow.values())
    for n in sorted(names, key=lambda k: (-(share[k] - math.floor(share[k])), names.index(k)))[:spare]:
        grow[n] += 1
    for n in names:
        numel = m.layers[n].weight.numel()
        assert grow[n] <= numel - len(kept[n])  # no layer full here, so no capping is involved
        mv = moms[n].flatten().abs().tolist()
        grown = slow_largest(mv, set(range(numel)) - kept[n], grow[n])
        assert flat_set(m.layers[n].mask) == kept[n] | grown, n
        buf = opt.state[m.layers[n].weight]["momentum_buffer"]
        mask = m.layers[n].mask
        assert torch.allclose(buf[~mask], buf[mask].mean().expand(int((~mask).sum())))
    assert sum(len(flat_set(m.layers[n].mask)) for n in names) == sum(len(before[n]) for n in names)


def test_redistribution_caps_a_full_layer_and_splits_the_rest():
    from traces.methods.rules import redistribute

    # shares 2.5 / 2.5 / 5: the third layer has room for 2, the other 8 split evenly
    assert redistribute([1.0, 1.0, 2.0], 10, [10, 10, 2]) == [4, 4, 2]
    assert redistribute([1.0, 2.0], 7, [10, 10]) == [2, 5]  # 2.33 / 4.67: the spare to 4.67
    assert redistribute([1.0, 1.0], 50, [3, 4]) == [3, 4]  # more than fits: all the room


def test_gmp_prunes_on_the_cubic_ramp_by_magnitude():
    m, _, _ = toy("gmp", density=0.1, delta_t=50)  # t0 = 100, t_end = 750
    layer = m.layers["fc1"]
    assert layer.mask.all()  # dense to sparse
    w = seeded(layer.weight.shape, 4)
    with torch.no_grad():
        layer.weight.copy_(w)
    m.update(120)  # not on the Δt grid from t0: nothing
    assert layer.mask.all()
    m.update(400)  # (400 − 100) / 650 of the ramp
    s = 0.9 + (0.0 - 0.9) * (1 - 300 / 650) ** 3
    n = w.numel()
    keep = round((1 - s) * n)
    assert flat_set(layer.mask) == slow_largest(w.flatten().abs().tolist(), set(range(n)), keep)
    m.update(750)
    assert int(layer.mask.sum()) == round(0.1 * n)
    assert (layer.weight.detach()[~layer.mask] == 0).all()


def test_topkast_sets_and_only_b_moves():
    m, model, opt = toy("topkast", density=0.1, backward_density=0.3)
    layer = m.layers["fc2"]
    w = layer.weight.detach().flatten().abs().tolist()
    n = len(w)
    assert flat_set(layer.mask) == slow_largest(w, set(range(n)), round(0.1 * n))
    assert flat_set(layer.backward_set) == slow_largest(w, set(range(n)), round(0.3 * n))
    # the exploration penalty, by hand
    lam = m.params["exploration_l2"]
    expected = 0.0
    for name, lay in m.layers.items():
        wt = lay.weight.detach()
        a, b = lay.mask, lay.backward_set
        expected += float((wt[a] ** 2).sum()) + float((wt[b & ~a] ** 2).sum()) / m.densities[name]
    assert float(m.regularizer().detach()) == pytest.approx(lam * expected, rel=1e-5)
    before = layer.weight.detach().clone()
    b_set = layer.backward_set.clone()
    m.before_step()
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(5))
    loss = model(x).pow(2).mean() + m.regularizer()
    loss.backward()
    opt.step()
    m.after_step()
    after = layer.weight.detach()
    assert torch.equal(after[~b_set], before[~b_set])  # outside B: untouched
    assert (after[b_set] != before[b_set]).float().mean() > 0.5  # B: updated


# -- recorded and replayed on every family ------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline_traces(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    params = {"rigl": {"delta_t": 4}, "gmp": {"delta_t": 2}, "set": {"update_every": 4},
              "snfs": {"update_every": 4}, "topkast": {"backward_density": 0.4}}
    return {name: train(method=name, epochs=2, every=4, max_batches=8, out=root / name,
                        method_params={"density": 0.2, **params[name]})
            for name in BASELINES}


@pytest.mark.parametrize("family", ["edge-npu", "gpu-a100", "reram-isaac"])
def test_baselines_replay_with_their_own_weight_and_gradient_masks(baseline_traces, family):
    from hwsim.simulate import simulate

    for name, run in baseline_traces.items():
        tr = traces.load(run.trace)
        last = tr.mask_iterations[-1]
        frame = simulate(tr, family, iterations=[last]).to_frame()
        assert (frame["cycles"] > 0).all(), name
        with tr.iteration(last) as it:
            for li, s in enumerate(tr.layers):
                x = it.mask(li, "x").reshape(-1, s.reduction).astype(np.int64)
                dy = it.mask(li, "dy").reshape(-1, s.w_shape[0]).astype(np.int64)
                w = it.mask(li, "w").astype(np.int64)
                needed = it.mask(li, "dw_needed")
                needed = np.ones_like(w) if needed is None else needed.astype(np.int64)
                rows = frame[frame["layer"] == s.name].set_index("pass")["effectual_macs"]
                assert rows["forward"] == int((x @ w.T).sum()), (name, family, s.name)
                assert rows["backward_weight"] == int(((dy.T @ x) * needed).sum()), (name, family, s.name)


def test_baselines_hold_their_density_and_dw_needed_semantics(baseline_traces):
    for name, run in baseline_traces.items():
        tr = traces.load(run.trace)
        meth = run.method
        last = None
        for it in tr.masks():
            total = sum(int(it.mask(n, "w").sum()) for n in meth.layers)
            if name == "gmp":
                assert last is None or total <= last  # only shrinks
                last = total
            else:
                assert total == sum(meth.keep.values()), name  # constant weight count
            needed = [it.mask(n, "dw_needed") for n in meth.layers]
            if name == "snfs":
                assert all(nd is None or nd.all() for nd in needed)  # dense gradients every step
            if name == "topkast":
                for n, nd in zip(meth.layers, needed, strict=True):
                    assert not (it.mask(n, "w") & ~nd).any()  # A inside B
                    assert nd.sum() > it.mask(n, "w").sum()
        assert meth.density() == pytest.approx(0.2, abs=0.01), name


def test_a_baseline_trace_that_breaks_its_allocation_is_rejected(baseline_traces, tmp_path):
    import json
    import shutil

    from traces import TraceFormatError
    from traces.format.validate import validate

    for name in ("rigl", "snfs"):
        src = baseline_traces[name].trace
        assert validate(traces.load(src)).iterations == baseline_traces[name].iterations
        bad = tmp_path / name
        shutil.copytree(src, bad)
        manifest = json.loads((bad / "manifest.json").read_text())
        manifest["method"]["params"]["kept"]["fc1"] += 1  # claims one more weight than the masks hold
        (bad / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(TraceFormatError, match="allocated"):
            validate(traces.load(bad))
