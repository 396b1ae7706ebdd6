"""Built-in datasets, shipped or generated: nothing is downloaded. numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A train/test split of float32 inputs and int64 labels."""

    name: str
    x_train: np.ndarray  # (n_train, *input_shape) float32
    y_train: np.ndarray  # (n_train,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def describe(self) -> dict[str, object]:
        """Provenance for a trace manifest."""
        return {"name": self.name, "n_train": len(self.x_train), "n_test": len(self.x_test),
                "input_shape": list(self.input_shape), "n_classes": self.n_classes}


def digits(image: bool = False, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8×8 handwritten digits (1,797 real samples, 10 classes), scaled to [0, 1].

    Args:
        image: shape inputs ``(1, 8, 8)`` for conv models instead of flat ``(64,)``.
        test_fraction: share held out for testing (a seeded, stratification-free shuffle).
        seed: shuffle seed.
    """
    from sklearn.datasets import load_digits  # the data ships inside the wheel

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test], 10)


DATASETS = {"digits": digits}


def load_dataset(name: str, *, image: bool = False, seed: int = 0) -> Dataset:
    """A built-in dataset by name."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name](image=image, seed=seed)
