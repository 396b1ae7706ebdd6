"""``conv3d`` and ``conv_transpose`` layers: geometry, exact effectual MACs against scalar loops
(themselves checked against PyTorch's ops), and recording small models that train."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import traces
from traces import RecorderError
from traces.format.layer import LayerSpec
from traces.format.validate import validate
from traces.stats import accounting
from traces.stats.accounting import pass_counts
from traces.stats.convnd_counts import effectual
from traces.stats.paper_stats import nm_stats

from .scalar_convnd import conv_nd, conv_transpose_nd

N = 2
PASSES = ("forward", "backward_data", "backward_weight")


def sparse(rng: np.random.Generator, shape, density: float = 0.5) -> np.ndarray:
    return rng.standard_normal(shape) * (rng.random(shape) < density)


def spec_of(kind, x_shape, w_shape, y_shape, stride, padding, dilation, groups) -> LayerSpec:
    spec = LayerSpec(name="l", kind=kind, module="l", call=0, module_type=kind, x_shape=tuple(x_shape),
                     w_shape=tuple(w_shape), y_shape=tuple(y_shape), stride=tuple(stride),
                     padding=tuple(padding), dilation=tuple(dilation), groups=groups)
    assert spec.check() == []
    return spec


CONV3D = [  # (C, K, input size, kernel, stride, padding, dilation, groups)
    (2, 4, (3, 4, 6), (2, 3, 3), (1, 2, 1), (1, 1, 0), (1, 1, 2), 1),
    (4, 4, (4, 3, 3), (3, 1, 3), (2, 1, 1), (1, 0, 1), (1, 1, 1), 2),
]


@pytest.mark.parametrize("case", CONV3D)
@pytest.mark.parametrize("masked", [False, True])
def test_conv3d_counts_equal_the_scalar_reference(case, masked):
    c, k, size, ks, stride, padding, dilation, groups = case
    rng = np.random.default_rng(len(size) + groups + masked)
    x, w = sparse(rng, (N, c, *size)), sparse(rng, (k, c // groups, *ks), 0.6)
    y = F.conv3d(torch.tensor(x), torch.tensor(w), None, stride, padding, dilation, groups).numpy()
    dy = sparse(rng, y.shape)
    y_sel = rng.random(y.shape) < 0.5 if masked else None
    need = rng.random(w.shape) < 0.5 if masked else None
    y_ref, (fwd, bd, bd_in, bw) = conv_nd(x, w, y_sel, dy, need, stride, padding, dilation, groups)
    np.testing.assert_allclose(y_ref, y, atol=1e-9)  # the loop is the conv
    spec = spec_of("conv3d", x.shape[1:], w.shape, y.shape[1:], stride, padding, dilation, groups)
    masks = {"x": x != 0, "w": w != 0, "dy": dy != 0, "y_sel": y_sel, "dw_needed": need}
    assert effectual(spec, "forward", masks) == (fwd, fwd)
    assert effectual(spec, "backward_data", masks) == (bd_in, bd)
    assert effectual(spec, "backward_weight", masks) == (bw, bw)
    assert 0 < bd_in < bd  # padding: some backward-data products land outside x
    m = masks  # the public accounting functions count the same
    assert accounting.forward_effectual(spec, m["x"], m["w"], y_sel) == fwd
    assert accounting.backward_data_effectual(spec, m["dy"], m["w"]) == (bd, bd_in)
    assert accounting.backward_weight_effectual(spec, m["x"], m["dy"], need) == bw
    macs = N * math.prod(y.shape[2:]) * k * (c // groups) * math.prod(ks)  # closed form, every pass
    assert {p: spec.gemm(p, N).macs for p in PASSES} == dict.fromkeys(PASSES, macs)
    g = spec.gemm("forward", N)
    assert (g.m, g.k, g.n, g.groups) == (N * math.prod(y.shape[2:]), c // groups * math.prod(ks),
                                         k // groups, groups)


TRANSPOSED = [  # (Cin, Cout, input size, kernel, stride, padding, output_padding, dilation, groups)
    (2, 4, (7,), (3,), (2,), (1,), (1,), (1,), 2),
    (3, 2, (4, 3), (3, 3), (2, 2), (1, 0), (1, 0), (1, 1), 1),
    (4, 4, (3, 3), (2, 3), (2, 1), (1, 1), (1, 0), (2, 1), 2),
    (2, 2, (2, 3, 2), (2, 2, 3), (2, 1, 2), (0, 1, 1), (1, 0, 0), (1, 1, 1), 1),
]
TORCH_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@pytest.mark.parametrize("case", TRANSPOSED)
@pytest.mark.parametrize("masked", [False, True])
def test_transposed_conv_counts_equal_the_scalar_reference(case, masked):
    cin, cout, size, ks, stride, padding, out_pad, dilation, groups = case
    rng = np.random.default_rng(len(size) + groups + masked)
    x, w = sparse(rng, (N, cin, *size)), sparse(rng, (cin, cout // groups, *ks), 0.6)
    xt = torch.tensor(x, requires_grad=True)
    y = TORCH_T[len(size)](xt, torch.tensor(w), None, stride, padding, out_pad, groups, dilation)
    dy = sparse(rng, tuple(y.shape))
    y.backward(torch.tensor(dy))
    y_sel = rng.random(y.shape) < 0.5 if masked else None
    need = rng.random(w.shape) < 0.5 if masked else None
    y_ref, dx_ref, (fwd, fwd_gemm, bd, bw), zero_inserted = conv_transpose_nd(
        x, w, y_sel, dy, need, stride, padding, out_pad, dilation, groups)
    np.testing.assert_allclose(y_ref, y.detach().numpy(), atol=1e-9)  # the loops are the op
    np.testing.assert_allclose(dx_ref, xt.grad.numpy(), atol=1e-9)
    spec = spec_of("conv_transpose", x.shape[1:], w.shape, y.shape[1:], stride, padding, dilation, groups)
    masks = {"x": x != 0, "w": w != 0, "dy": dy != 0, "y_sel": y_sel, "dw_needed": need}
    assert effectual(spec, "forward", masks) == (fwd, fwd_gemm)
    assert effectual(spec, "backward_data", masks) == (bd, bd)
    assert effectual(spec, "backward_weight", masks) == (bw, bw)
    m = masks
    assert accounting.forward_effectual(spec, m["x"], m["w"], y_sel) == fwd
    assert accounting.backward_data_effectual(spec, m["dy"], m["w"]) == (bd, bd)
    assert accounting.backward_weight_effectual(spec, m["x"], m["dy"], need) == bw
    # one product per input element and kernel tap: the inserted zeros are not multiplied
    macs = N * math.prod(size) * cin * (cout // groups) * math.prod(ks)
    assert {p: spec.gemm(p, N).macs for p in PASSES} == dict.fromkeys(PASSES, macs)
    assert fwd <= fwd_gemm <= macs < zero_inserted
    g = spec.gemm("forward", N)
    assert (g.m, g.k, g.n, g.groups) == (N * math.prod(size), cin // groups,
                                         cout // groups * math.prod(ks), groups)
    # the trace-side table counts the same
    counts = {c.pass_: c for c in pass_counts(spec, N, **masks)}
    assert (counts["forward"].effectual, counts["forward"].effectual_no_padding) == (
        fwd_gemm, None if fwd == fwd_gemm else fwd)
    assert counts["backward_weight"].effectual == bw


def test_bad_geometry_is_refused_naming_the_field():
    ok = spec_of("conv_transpose", (2, 4, 4), (2, 3, 3, 3), (3, 8, 8), (2, 2), (1, 1), (1, 1), 1)
    bad = LayerSpec(**{**vars(ok), "y_shape": (3, 10, 8)})
    assert bad.check()[0].startswith("y_shape: [3, 10, 8], but the geometry gives 7 + output_padding (0..1)")
    bad = LayerSpec(**{**vars(ok), "stride": (2, 2, 2)})
    assert bad.check()[0].startswith(
        "stride: a 2-D transposed conv needs one value per spatial dimension (2)")
    c3 = spec_of("conv3d", (2, 3, 4, 4), (4, 2, 1, 3, 3), (4, 3, 2, 2), (1, 1, 1), (0, 0, 0), (1, 1, 1), 1)
    assert LayerSpec(**{**vars(c3), "y_shape": (4, 3, 3, 2)}).check() == [
        "y_shape: (4, 3, 3, 2), but the geometry gives (4, 3, 2, 2)"]
    assert LayerSpec(**{**vars(c3), "groups": 3}).check()[0].startswith("groups: 3 does not divide C=2")


class VolumeNet(nn.Module):
    """A 3-D conv encoder and a transposed-conv decoder over random volumes."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv3d(1, 4, 3, stride=2, padding=1)
        self.enc2 = nn.Conv3d(4, 8, 3, padding=1, groups=2)
        self.dec1 = nn.ConvTranspose3d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.head = nn.Conv3d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.enc2(torch.relu(self.enc1(x))))
        return self.head(torch.relu(self.dec1(h)))


class Decoder(nn.Module):
    """A code vector decoded by 2-D and 1-D transposed convs (groups, dilation, output_padding)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4 * 3 * 3)
        self.up1 = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1, groups=2)
        self.up2 = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        self.up3 = nn.ConvTranspose1d(2, 1, 3, stride=2, padding=1, output_padding=1, dilation=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).view(-1, 4, 3, 3)
        h = torch.relu(self.up2(torch.relu(self.up1(h))))  # (N, 2, 12, 12)
        return self.up3(h.flatten(2))  # (N, 1, 290)


def train_and_record(model: nn.Module, path, make_input, target, steps: int = 3
                     ) -> tuple[list[float], traces.Trace]:
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    inputs = [make_input(g) for _ in range(2)]
    losses = []
    with traces.record(model, path, every=1, optimizer=opt) as rec:
        for step in range(steps):
            opt.zero_grad()
            x = inputs[step % 2]
            loss = F.mse_loss(model(x), target(x))
            loss.backward()
            opt.step()
            rec.step()
            losses.append(float(loss.detach()))
    tr = traces.load(path)
    validate(tr)
    return losses, tr


def volume_trace(path) -> tuple[list[float], traces.Trace]:
    torch.manual_seed(0)
    return train_and_record(VolumeNet(), path, lambda g: torch.relu(torch.randn(3, 1, 6, 8, 8, generator=g)),
                            lambda x: x, steps=4)


def decoder_trace(path) -> tuple[list[float], traces.Trace]:
    torch.manual_seed(0)
    return train_and_record(Decoder(), path, lambda g: torch.randn(3, 8, generator=g),
                            lambda z: torch.zeros(z.shape[0], 1, 290))


def test_a_3d_conv_net_trains_records_and_validates(tmp_path):
    losses, tr = volume_trace(tmp_path / "t")
    assert losses[-1] < losses[0]
    got = [(s.name, s.kind, s.x_shape, s.w_shape, s.y_shape, s.stride, s.padding, s.groups)
           for s in tr.layers]
    assert got == [
        ("enc1", "conv3d", (1, 6, 8, 8), (4, 1, 3, 3, 3), (4, 3, 4, 4), (2, 2, 2), (1, 1, 1), 1),
        ("enc2", "conv3d", (4, 3, 4, 4), (8, 2, 3, 3, 3), (8, 3, 4, 4), (1, 1, 1), (1, 1, 1), 2),
        ("dec1", "conv_transpose", (8, 3, 4, 4), (8, 4, 3, 3, 3), (4, 6, 8, 8), (2, 2, 2), (1, 1, 1), 1),
        ("head", "conv3d", (4, 6, 8, 8), (1, 4, 1, 1, 1), (1, 6, 8, 8), (1, 1, 1), (0, 0, 0), 1)]
    assert tr.manifest["format_version"] == 5
    g = torch.Generator().manual_seed(1)
    x0 = torch.relu(torch.randn(3, 1, 6, 8, 8, generator=g))
    with tr.iteration(0) as it:
        np.testing.assert_array_equal(it.mask(0, "x"), x0.numpy() != 0)  # the module's own tensor
        for li, s in enumerate(tr.layers):  # the table's counts are the kinds' exact counts
            masks = {t: it.mask(li, t) for t in ("x", "w", "y_sel", "dy", "dw_needed")}
            for c in pass_counts(s, it.mask_batch, **masks):
                gemm = effectual(s, c.pass_, masks)[1]
                assert (c.effectual, c.algorithmic) == (gemm, s.gemm(c.pass_, it.mask_batch).macs)


def test_a_transposed_conv_decoder_trains_records_and_validates(tmp_path):
    losses, tr = decoder_trace(tmp_path / "t")
    assert losses[-1] < losses[0]
    got = [(s.name, s.kind, s.x_shape, s.w_shape, s.y_shape, s.stride, s.padding, s.dilation, s.groups)
           for s in tr.layers]
    assert got == [
        ("fc", "linear", (8,), (36, 8), (36,), (1, 1), (0, 0), (1, 1), 1),
        ("up1", "conv_transpose", (4, 3, 3), (4, 2, 4, 4), (4, 6, 6), (2, 2), (1, 1), (1, 1), 2),
        ("up2", "conv_transpose", (4, 6, 6), (4, 2, 3, 3), (2, 12, 12), (2, 2), (1, 1), (1, 1), 1),
        ("up3", "conv_transpose", (2, 144), (2, 1, 3), (1, 290), (2,), (1,), (2,), 1)]
    # N:M groups run along the forward's reduction, C_in/g: up2's 4 inputs per (output, tap) column
    nm = nm_stats(tr, 2, 4).set_index(["iteration", "layer"])
    assert nm.loc[(0, "up2"), "groups"] == 2 * 3 * 3


def test_unsupported_conv_variants_are_refused_naming_module_and_field(tmp_path):
    model = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1, padding_mode="circular"))
    with pytest.raises(RecorderError, match=r"0: padding_mode='circular'; only zero padding"):
        traces.record(model, tmp_path / "a")
    model = nn.Sequential(nn.Conv3d(1, 2, (2, 3, 3), padding="same"))
    with pytest.raises(RecorderError, match=r"0: padding='same' with an even kernel pads asymmetrically"):
        traces.record(model, tmp_path / "b")
