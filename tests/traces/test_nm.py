"""N:M structured sparsity end to end: the mask builders, SR-STE training, the invariant, synthetic
N:M traces and the N:M table of `hwsim trace stats`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import traces
from hwsim.cli import main
from traces import TraceFormatError
from traces.format import bits
from traces.format.digest import seal
from traces.format.structured import (
    backward_data_nm,
    forward_nm,
    nm_mask,
    parse_nm,
    random_nm_mask,
    transposable_mask,
    transposable_patterns,
)
from traces.format.validate import validate
from traces.methods import make_method
from traces.methods.nm import NMLinear
from traces.stats.paper_stats import nm_stats
from traces.synth import conv, linear, write_synthetic
from traces.training import train

# -- mask builders against scalar references ----------------------------------------------------------


def all_transposable_blocks(n: int, m: int) -> np.ndarray:
    """Brute force: every m×m 0/1 matrix (2^(m·m) of them) with n ones per row and per column."""
    codes = np.arange(2 ** (m * m))
    blocks = ((codes[:, None] >> np.arange(m * m)) & 1).astype(bool).reshape(-1, m, m)
    return blocks[(blocks.sum(axis=1) == n).all(axis=1) & (blocks.sum(axis=2) == n).all(axis=1)]


@pytest.mark.parametrize(("n", "count"), [(1, 24), (2, 90), (3, 24)])
def test_pattern_set_is_every_transposable_block(n, count):
    brute = all_transposable_blocks(n, 4)
    pats = transposable_patterns(n, 4)
    assert len(pats) == len(brute) == count
    assert {p.tobytes() for p in pats} == {b.tobytes() for b in brute}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_transposable_picker_equals_brute_force_on_random_blocks(n):
    rng = np.random.default_rng(7)
    scores = rng.random((8, 4 * 25))  # 2 × 25 blocks of 4×4
    got = transposable_mask(scores, n, 4)
    brute = all_transposable_blocks(n, 4).astype(np.float64)  # (P, 4, 4)
    for r in range(0, 8, 4):
        for c in range(0, 100, 4):
            block = scores[r:r + 4, c:c + 4]
            best = brute[int(np.argmax((brute * block).sum(axis=(1, 2))))]  # scalar reference
            assert np.array_equal(got[r:r + 4, c:c + 4], best.astype(bool)), (r, c)


def test_nm_mask_keeps_the_top_n_of_each_group_with_a_short_last_group():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 3, 3, 3))  # Kr = 27: six groups of 4 and one of 3
    got = nm_mask(np.abs(w), 2, 4).reshape(6, 27)
    flat = np.abs(w).reshape(6, 27)
    for r in range(6):
        for start in range(0, 27, 4):
            group = flat[r, start:start + 4]
            keep = sorted(range(len(group)), key=lambda i: -group[i])[:2]
            assert [bool(got[r, start + i]) for i in range(len(group))] == \
                [i in keep for i in range(len(group))]


def test_edge_blocks_and_greedy_ratios_stay_valid_in_both_directions():
    rng = np.random.default_rng(3)
    w = rng.random((10, 3, 5, 5))  # Kout = 10 and Kr = 75: partial blocks on both edges
    t = transposable_mask(w, 2, 4)
    assert forward_nm(t, 2, 4) and backward_data_nm(t, 2, 4)
    g = transposable_mask(rng.random((16, 40)), 2, 8)  # 28^8 candidates: the greedy picker
    assert forward_nm(g, 2, 8) and backward_data_nm(g, 2, 8) and g.mean() == 0.25
    grouped = transposable_mask(rng.random((8, 4, 3, 3)), 2, 4, groups=2)
    assert backward_data_nm(grouped, 2, 4, groups=2)
    assert not forward_nm(np.ones((4, 8), bool), 2, 4)


def test_bad_n_m_options_are_named():
    for params, word in (({"n": 5, "m": 4}, "n (kept per group)"), ({"m": 0}, "m (group size)"),
                         ({"n": 0}, "n (kept per group)"), ({"decay": -1.0}, "decay")):
        with pytest.raises(ValueError, match="nm: ") as e:
            make_method("nm", **params)
        assert word in str(e.value)
    with pytest.raises(ValueError, match="expected N:M"):
        parse_nm("2-4")
    with pytest.raises(ValueError, match="n \\(kept per group\\)"):
        parse_nm("5:4t")


# -- SR-STE ---------------------------------------------------------------------------------------------

def test_srste_gradient_is_straight_through_plus_decay_on_pruned_weights():
    torch.manual_seed(0)
    layer = NMLinear(8, 3, bias=False)
    layer.setup_nm(2, 4, False, decay=0.5)
    x = torch.randn(5, 8)
    mask = layer.nm_mask()
    assert forward_nm(mask.numpy(), 2, 4)
    y = layer(x)
    assert torch.allclose(y, x @ (layer.weight * mask).T)  # the forward uses W ⊙ M only
    y.sum().backward()
    w = layer.weight.detach()
    expected = torch.ones(5, 3).T @ x + 0.5 * (~mask) * w  # ∇W̃ on every weight, + λ_W·(¬M ⊙ W)
    assert torch.allclose(layer.weight.grad, expected)


# -- training -------------------------------------------------------------------------------------------

# Budgets where both dense and nm have settled (lr / 10 for the last epochs); measured test accuracy
# dense vs nm: MLP 0.983 vs 0.989, VGG-8 0.983 vs 0.981 (docs/methods.md).
TRAIN = {"mlp": {"epochs": 6, "lr_milestones": (4,)},
         "vgg8": {"epochs": 4, "lr": 0.05, "lr_milestones": (3,)}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("nm")
    out = {}
    for model, kw in TRAIN.items():
        out[("dense", model)] = train(method="dense", model=model, **kw)
        out[("nm", model)] = train(method="nm", model=model, every=20, out=root / model, **kw)
    return out


@pytest.mark.parametrize("model", list(TRAIN))
def test_nm_training_keeps_2_4_masks_and_dense_accuracy(runs, model):
    dense, nm = runs[("dense", model)], runs[("nm", model)]
    assert nm.test_accuracy >= dense.test_accuracy - 0.02  # measured: see docs/methods.md
    tr = traces.load(nm.trace)
    assert validate(tr).iterations == len(tr)  # the nm invariant on every iteration
    params = tr.manifest["method"]["params"]
    assert params["estimator"] == "sr-ste" and params["layers"] == [s.name for s in tr.layers]
    flips = 0
    for it in tr.masks():
        for li, s in enumerate(tr.layers):
            w = it.mask(li, "w")
            assert forward_nm(w, 2, 4)
            kr = s.reduction  # 2 of every 4 kept, a short last group keeps min(2, its length)
            assert w.sum() == s.w_shape[0] * (kr // 4 * 2 + min(2, kr % 4))
            assert it.count(li, "dw_needed") in (None, s.numel("w", 1))  # SR-STE: every weight's gradient
            stats = it.layer_stats(s.name)
            assert stats["nm_fraction"] == 1.0 and 0 < stats["pruned_magnitude_fraction"] < 0.5
            flips += stats["flips_on"] + stats["flips_off"]
    assert flips > 0  # masks are recomputed every step from the dense weights
    df = nm_stats(tr)
    assert (df["forward_nm_fraction"] == 1.0).all() and len(df) == len(tr.mask_iterations) * len(tr.layers)


def test_transposable_training_masks_both_directions(tmp_path):
    r = train(method="nm", model="vgg8", epochs=1, batch_size=128, every=4, out=tmp_path / "t",
              method_params={"transposable": True, "dense_first": True})
    tr = traces.load(r.trace)
    assert tr.manifest["method"]["params"]["transposable_solver"] == "exact"
    assert tr.manifest["method"]["params"]["layers"][0] != tr.layers[0].name  # first layer dense
    for it in tr.masks():
        for li, s in enumerate(tr.layers[1:], start=1):
            w = it.mask(li, "w")
            assert forward_nm(w, 2, 4) and backward_data_nm(w, 2, 4, s.groups)
            assert it.layer_stats(s.name)["transposed_nm"] is True
        assert it.mask(0, "w").all()


def test_invariant_rejects_a_broken_group(runs, tmp_path):
    path = tmp_path / "nm"
    shutil.copytree(runs[("nm", "mlp")].trace, path)
    index = traces.load(path).mask_iterations[0]  # a full weight-mask snapshot
    f = next(path.glob(f"iter-{index:08d}.*.npz"))
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files}
    shape = traces.load(path, check=False).layers[1].w_shape
    w = bits.unpack(arrays["L1.w"], shape).copy()
    r, c = map(int, np.argwhere(~w)[0])  # one pruned weight turned on: 3 of 4 in its group
    w[r, c] = True
    r2, c2 = map(int, np.argwhere(w)[-1])  # and one kept weight of the last group off: the count holds
    assert (r2, c2 // 4) != (r, c // 4)
    w[r2, c2] = False
    arrays["L1.w"] = bits.pack(w)
    np.savez(f, **arrays)
    seal(path)  # resealed: the invariant under test, not the file's digest, refuses it
    with pytest.raises(TraceFormatError, match="invariant to hold") as e:
        traces.load(path).iteration(index)
    msg = str(e.value)
    assert f.name in msg and "L1.w" in msg and "layer fc2" in msg and "1 of" in msg and "not 2:4" in msg
    assert f"output {r}, Kr {c // 4 * 4}.." in msg
    traces.load(path, check=False).iteration(index).close()


# -- synthetic N:M traces and `trace stats` -----------------------------------------------------------

LAYERS = [conv("c1", 3, 8, 8, 12, 3, padding=1), conv("c2", 12, 8, 8, 8, 3, groups=2), linear("fc", 30, 10)]


@pytest.mark.parametrize("transposable", [False, True])
def test_synthetic_structured_masks_satisfy_nm(tmp_path, transposable):
    path = write_synthetic(LAYERS, tmp_path / "s", iterations=2, seed=4, structured=(2, 4, transposable),
                           density={"x": 0.5})
    tr = traces.load(path)
    validate(tr)
    seen = []
    for it in tr.masks():
        for li, s in enumerate(tr.layers):
            w = it.mask(li, "w")
            assert forward_nm(w, 2, 4)
            assert backward_data_nm(w, 2, 4, s.groups) == transposable or not transposable
            seen.append(w)
    assert not np.array_equal(seen[0], seen[len(LAYERS)])  # a fresh random pattern per iteration
    again = write_synthetic(LAYERS, tmp_path / "again", iterations=2, seed=4,
                            structured=(2, 4, transposable), density={"x": 0.5})
    with traces.load(again).iteration(1) as it:
        assert np.array_equal(it.mask(2, "w"), seen[-1])  # seeded
    ordinary = random_nm_mask(np.random.default_rng(0), (64, 64), 2, 4)
    assert not backward_data_nm(ordinary, 2, 4)  # plain 2:4 is (almost surely) not transposable
    with pytest.raises(ValueError, match="exclude each other"):
        write_synthetic(LAYERS, tmp_path / "bad", structured=(2, 4, False), density={"w": 0.5})


def test_cli_synth_structured_and_stats(tmp_path, capsys):
    layers = tmp_path / "layers.csv"
    layers.write_text("name, kind, C, H, W, K, kernel, stride, padding, groups\n"
                      "c1, conv2d, 4, 8, 8, 8, 3, 1, 1, 1\nfc, linear, 64, 10\n")
    out = tmp_path / "syn"
    assert main(["trace", "synth", "--layers", str(layers), "--structured", "2:4t", "--out", str(out)]) == 0
    tr = traces.load(out)
    assert tr.manifest["method"]["params"]["structured"] == {"n": 2, "m": 4, "transposable": True}
    with tr.iteration(0) as it:
        assert all(forward_nm(it.mask(i, "w"), 2, 4) and backward_data_nm(it.mask(i, "w"), 2, 4)
                   for i in range(2))
    capsys.readouterr()
    assert main(["trace", "stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "N:M structure (2:4)" in text and "1.0000" in text
    assert main(["trace", "synth", "--layers", str(layers), "--structured", "5:4", "--out",
                 str(tmp_path / "bad")]) != 0
    assert "--structured" in capsys.readouterr().err


def test_stats_on_a_dense_trace_find_unstructured_groups(tmp_path, capsys):
    out = tmp_path / "dense"
    train(method="dense", epochs=1, every=5, out=out)
    df = nm_stats(traces.load(out))
    last = df[df["iteration"] == df["iteration"].max()].set_index("layer")
    assert (last["forward_nm_fraction"] < 1).all() and (last["density"] > 0.99).all()
    assert (nm_stats(traces.load(out), 4, 4)["forward_nm_fraction"] == 1.0).all()  # 4 of 4 is 4:4
    assert main(["trace", "stats", str(out), "--nm", "1:2"]) == 0
    text = capsys.readouterr().out
    assert "no paper accounting for method 'dense'" in text and "N:M structure (1:2)" in text


def test_cli_nm_options(tmp_path, capsys):
    out = tmp_path / "nm14"
    assert main(["train", "--method", "nm", "--nm-n", "1", "--nm-m", "4", "--nm-decay", "0", "--epochs", "1",
                 "--out", str(out)]) == 0
    tr = traces.load(out)
    p = tr.manifest["method"]["params"]
    assert (p["n"], p["m"], p["decay"]) == (1, 4, 0.0)
    with tr.iteration(tr.mask_iterations[-1]) as it:
        assert forward_nm(it.mask(0, "w"), 1, 4) and not forward_nm(np.ones((1, 4), bool), 1, 4)
    capsys.readouterr()
    assert main(["train", "--method", "dst", "--nm-n", "2", "--out", str(tmp_path / "x")]) != 0
    assert "--nm-n does not apply to --method dst" in capsys.readouterr().err
    assert main(["train", "--method", "nm", "--nm-n", "3", "--nm-m", "2", "--out", str(tmp_path / "y")]) != 0
    assert "--nm-n" in capsys.readouterr().err

