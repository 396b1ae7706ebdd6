"""DSG's op counts from shapes (traces/stats/dsg_ops.py): closed forms by hand, published model sizes,
and the CIFAR shape tables against the torch models."""

from __future__ import annotations

import math

import pytest

from traces.stats.dsg_ops import GemmShape, paper_models, projection_dim, reductions


def test_k_rules_by_hand():
    assert projection_dim(100, 0.5) == 18  # floor(ln 101 / 0.25) = floor(18.46)
    assert projection_dim(1000, 0.5, "achlioptas") == 332  # ceil(4 ln 1001 / (1/8 − 1/24)) = ceil(331.6)
    assert projection_dim(100, 0.5, "achlioptas") == 100  # 222 capped at d
    with pytest.raises(ValueError, match="k rule"):
        projection_dim(10, 0.5, "nope")


def test_reductions_by_hand():
    layers = [GemmShape("a", 4, 100, 10), GemmShape("out", 1, 40, 10, classifier=True)]
    r = reductions(layers, 0.5, 0.5)
    dense = 4 * 100 * 10 + 400
    fwd = 4 * (5 * 100 + 10 * 18) + 400  # kept 5 of 10, k = 18; the classifier dense
    bwd = 4 * 5 * 100 + 400
    assert r["inference"] == dense / fwd
    assert r["training"] == 3 * dense / (fwd + bwd + dense)
    extra = (4 + 10) * 100 * 18 + 4 * 10 + 4 * 10 * math.ceil(math.log2(6))
    assert r["training_with_overheads"] == 3 * dense / (fwd + bwd + dense + extra)
    assert r["drs_overhead"] == 4 * 10 * 18 / dense


def test_imagenet_tables_have_the_published_sizes():
    models = paper_models()
    gmacs = {n: sum(s.macs for s in layers) / 1e9 for n, layers in models.items()}
    # torchvision's published GFLOPS (multiply-accumulates): ResNet-18 1.81, VGG-16 15.47
    assert gmacs["resnet18 (imagenet)"] == pytest.approx(1.81, abs=0.01)
    assert gmacs["vgg16 (imagenet)"] == pytest.approx(15.47, abs=0.01)
    # published parameter counts less what the tables leave out: ResNet-18 11,689,512 minus its BN
    # affine pairs (2 × 4,800 channels) and the FC bias (1,000); VGG-16 138,357,544 minus its conv
    # biases (4,224) and FC biases (9,192)
    weights = {n: sum(s.kr * s.k_out for s in layers) for n, layers in models.items()}
    assert weights["resnet18 (imagenet)"] == 11_689_512 - 2 * 4_800 - 1_000
    assert weights["vgg16 (imagenet)"] == 138_357_544 - 4_224 - 9_192


@pytest.mark.parametrize("table, model, classes", [("vgg8 (cifar10)", "vgg8-paper", 10),
                                                   ("resnet8 (cifar10)", "resnet8", 10),
                                                   ("resnet20 (cifar10)", "resnet20", 10),
                                                   ("wrn-8-2 (cifar100)", "wrn-8-2", 100)])
def test_cifar_tables_are_the_torch_models(table, model, classes):
    import torch

    from traces.zoo.models import build_model

    net = build_model(model, (3, 32, 32), classes)
    seen = []

    def hook(mod, inp, out):
        seen.append((out[0].numel() // out.shape[1], mod.weight[0].numel(), out.shape[1]))

    hooks = [b.gemm.register_forward_hook(hook) for b in net.blocks()]
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert seen == [(s.rows, s.kr, s.k_out) for s in paper_models()[table]]
