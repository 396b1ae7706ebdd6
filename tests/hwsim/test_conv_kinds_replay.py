"""Replay of ``conv3d`` and ``conv_transpose`` layers: their GEMM operands hold exactly the products
the exact counts count, and the three families replay a recorded 3-D conv net and a transposed-conv
decoder with those counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import traces
from hwsim.simulate import simulate
from hwsim.vector import gemm_pass_work
from hwsim.workload import effectual, operand_counts, operands
from tests.traces.test_conv_kinds import (
    CONV3D,
    TRANSPOSED,
    Decoder,
    decoder_trace,
    sparse,
    spec_of,
    volume_trace,
)
from traces.stats.convnd_counts import effectual as exact_counts

N = 2
PASSES = ("forward", "backward_data", "backward_weight")


def layer_and_masks(kind: str, case: tuple, masked: bool, seed: int = 3):
    rng = np.random.default_rng(seed)
    if kind == "conv3d":
        c, k, size, ks, stride, padding, dilation, groups = case
        out = tuple((size[i] + 2 * padding[i] - dilation[i] * (ks[i] - 1) - 1) // stride[i] + 1
                    for i in range(3))
        x_shape, w_shape, y_shape = (c, *size), (k, c // groups, *ks), (k, *out)
    else:
        cin, cout, size, ks, stride, padding, op, dilation, groups = case
        out = tuple((size[i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (ks[i] - 1) + op[i] + 1
                    for i in range(len(size)))
        x_shape, w_shape, y_shape = (cin, *size), (cin, cout // groups, *ks), (cout, *out)
    spec = spec_of(kind, x_shape, w_shape, y_shape, stride, padding, dilation, groups)
    masks = {"x": sparse(rng, (N, *x_shape)) != 0, "w": sparse(rng, w_shape, 0.6) != 0,
             "dy": sparse(rng, (N, *y_shape)) != 0,
             "y_sel": rng.random((N, *y_shape)) < 0.5 if masked else None,
             "dw_needed": rng.random(w_shape) < 0.5 if masked else None}
    return spec, masks


CASES = [("conv3d", c) for c in CONV3D] + [("conv_transpose", c) for c in TRANSPOSED]


@pytest.mark.parametrize(("kind", "case"), CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_the_gemm_operands_hold_exactly_the_counted_products(kind, case, masked):
    spec, masks = layer_and_masks(kind, case, masked)
    for pass_ in PASSES:
        groups = operands(spec, pass_, masks)
        g = spec.gemm(pass_, N)
        assert len(groups) == g.groups and all(op.dims == (g.m, g.k, g.n) for op in groups)
        products = [op.a.astype(np.int64) @ op.b.astype(np.int64) for op in groups]
        needed = sum(int(p[op.need].sum()) if op.need is not None else int(p.sum())
                     for p, op in zip(products, groups, strict=True))
        report, gemm_view = effectual(spec, pass_, masks)
        assert (report, gemm_view) == exact_counts(spec, pass_, masks)
        assert needed == report
        if not masked or pass_ == "backward_data":  # every product of the GEMM
            assert sum(int(p.sum()) for p in products) == gemm_view
        elif kind == "conv3d" or pass_ == "backward_weight":  # y_sel, dw_needed select in both views
            assert gemm_view == report
        else:  # a transposed conv's forward: y_sel selects, the products landing off y stay in the GEMM view
            assert report < gemm_view < sum(int(p.sum()) for p in products)
        assert operand_counts(spec, pass_, masks) == [(int(op.a.sum()), int(op.b.sum())) for op in groups]


def test_a_transposed_conv_scatters_in_forward_and_its_crossbar_holds_w_per_group():
    spec, masks = layer_and_masks("conv_transpose", TRANSPOSED[2], False)  # groups 2
    g = spec.gemm("forward", N)
    fwd = gemm_pass_work(spec, "forward", N, "dense", {}, counted=True).ops
    assert fwd == g.m * g.n * g.groups - spec.numel("y", N)  # col2im additions, no bias
    assert gemm_pass_work(spec, "backward_data", N, "dense", {}, counted=True).ops == 0  # a gather
    rows = spec.geometry.gemm_weight(spec, masks["w"])  # (groups·N, K): one crossbar column per output
    b = [op.b for op in operands(spec, "forward", masks)]
    assert np.array_equal(rows, np.concatenate([bg.T for bg in b]))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return [volume_trace(tmp_path_factory.mktemp("vol") / "t")[1],
            decoder_trace(tmp_path_factory.mktemp("dec") / "t")[1]]


@pytest.mark.parametrize("preset", ["edge-npu", "gpu-a100", "reram-isaac"])
def test_every_family_replays_3d_and_transposed_convs_with_exact_counts(recorded, preset):
    for tr in recorded:
        df = simulate(tr, preset).to_frame()
        for li, spec in enumerate(tr.layers):
            rows = df[df["layer"] == spec.name].set_index(["iteration", "pass"])
            for index in range(len(tr)):
                with tr.iteration(index) as it:
                    masks = {t: it.mask(li, t) for t in ("x", "w", "y_sel", "dy", "dw_needed")}
                    batch = it.mask_batch
                assert (index, "update") in rows.index
                for pass_ in PASSES:
                    if li == 0 and pass_ == "backward_data":
                        assert (index, pass_) not in rows.index  # nothing needs the input's gradient
                        continue
                    row = rows.loc[(index, pass_)]
                    assert row["algorithmic_macs"] == spec.gemm(pass_, batch).macs
                    done = row["actual_macs"] + row["gated_macs"] + row["skipped_macs"]
                    assert done == row["algorithmic_macs"]
                    assert row["cycles"] > 0
                    if spec.kind != "linear":
                        assert (row["effectual_macs"], row["effectual_macs_gemm_view"]) == \
                            exact_counts(spec, pass_, masks)


@pytest.mark.parametrize(("preset", "mode"), [("edge-npu", "expected"), ("gpu-a100", "expected"),
                                              ("reram-isaac", "dense_counts_only")])
def test_counts_only_iterations_replay_from_the_densities(tmp_path, preset, mode):
    torch.manual_seed(0)
    model = Decoder()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with traces.record(model, tmp_path / "t", every=2, optimizer=opt) as rec:  # iterations 1, 3: counts
        for _ in range(4):
            opt.zero_grad()
            (model(torch.randn(3, 8)) ** 2).mean().backward()
            opt.step()
            rec.step()
    tr = traces.load(tmp_path / "t")
    df = simulate(tr, preset, iterations=[1, 3]).to_frame()
    for spec in tr.layers[1:]:  # the transposed convs
        rows = df[df["layer"] == spec.name].set_index(["iteration", "pass"])
        for index in (1, 3):
            assert rows.loc[(index, "update"), "mode"] == mode
            for pass_ in PASSES:
                row = rows.loc[(index, pass_)]
                assert row["mode"] == mode and row["cycles"] > 0
                assert row["algorithmic_macs"] == spec.gemm(pass_, 3).macs


def test_a_pe_that_skips_on_its_own_skips_the_products_cropped_by_padding(tmp_path):
    """Dense input and weight of a ConvTranspose2d (stride 2, padding 1, output_padding 1, 5×5 ->
    10×10): along each dimension 14 of the 15 (input, tap) pairs land inside the output, so the
    forward needs 14² of every 15² products; an output-stationary PE array that skips on its own
    (eyeriss-v2-pe) performs exactly those and skips the rest; nothing multiplies an inserted zero."""
    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.rand_like(conv.weight) + 0.1)
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    with traces.record(conv, tmp_path / "t", every=1, optimizer=opt) as rec:
        opt.zero_grad()
        conv(torch.rand(2, 3, 5, 5) + 0.1).sum().backward()
        opt.step()
        rec.step()
    pairs = sum(0 <= 2 * i + t - 1 < 10 for i in range(5) for t in range(3))
    assert pairs == 14
    row = simulate(traces.load(tmp_path / "t"), "eyeriss-v2-pe", passes=("forward",)).to_frame().iloc[0]
    assert row["algorithmic_macs"] == 2 * 5 * 5 * 3 * 4 * 9
    assert row["effectual_macs"] == row["actual_macs"] == 2 * 3 * 4 * pairs * pairs
    assert row["skipped_macs"] == 2 * 3 * 4 * (15 * 15 - pairs * pairs)
    assert row["effectual_macs_gemm_view"] == row["algorithmic_macs"]
