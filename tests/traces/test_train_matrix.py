"""`hwsim train` works for every method × model pair (a tiny budget each), and on both datasets."""

from __future__ import annotations

import pytest

import traces
from hwsim.cli import main
from traces.format.validate import validate

METHODS = ["dense", "dsg", "dst", "mlevel", "nm"]
MODELS = ["mlp", "lenet5", "vgg8", "resnet"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_train_every_method_and_model(tmp_path, capsys, method, model):
    out = tmp_path / "t"
    assert main(["train", "--method", method, "--model", model, "--dataset", "digits", "--epochs", "1",
                 "--batch-size", "128", "--every", "4", "--out", str(out)]) == 0
    assert "trace written to" in capsys.readouterr().out
    tr = traces.load(out)
    assert tr.manifest["method"]["name"] == method and tr.manifest["model"]["name"] == model
    assert validate(tr).iterations == len(tr) > 0  # format and the method's invariants


def test_synthetic_cifar_conv_model(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["train", "--method", "dst", "--model", "resnet", "--dataset", "synthetic-cifar",
                 "--epochs", "1", "--batch-size", "128", "--every", "8", "--mask-samples", "4",
                 "--out", str(out)]) == 0
    tr = traces.load(out)
    assert tr.layers[0].x_shape == (3, 32, 32)
    assert validate(tr).mask_iterations >= 1
