"""Built-in models (imports torch). Every model is made of nn.Conv2d / nn.Linear modules."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    """Fully connected ReLU network: ``in → hidden… → classes`` (layers ``fc1, fc2, …, out``)."""

    def __init__(self, in_features: int, n_classes: int, hidden: Sequence[int] = (128, 64)) -> None:
        layers: dict[str, nn.Module] = {"flatten": nn.Flatten()}
        width = in_features
        for i, h in enumerate(hidden, start=1):
            layers[f"fc{i}"] = nn.Linear(width, h)
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
            width = h
        layers["out"] = nn.Linear(width, n_classes)
        super().__init__(OrderedDict(layers))


# name -> (constructor(input_shape, n_classes), wants image-shaped input)
MODELS = {
    "mlp": (lambda shape, n: MLP(int(__import__("math").prod(shape)), n), False),
}


def build_model(name: str, input_shape: Sequence[int], n_classes: int) -> nn.Module:
    """A built-in model by name, sized for the dataset."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name][0](tuple(input_shape), n_classes)


def wants_image(name: str) -> bool:
    """Whether the model takes image-shaped (C, H, W) input."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name][1]
