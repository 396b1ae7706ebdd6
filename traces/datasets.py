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


def synthetic_cifar(image: bool = True, n_train: int = 2048, n_test: int = 512, n_classes: int = 10,
                    seed: int = 0) -> Dataset:
    """A deterministic CIFAR-shaped set (3×32×32, 10 classes), generated, never downloaded.

    Each class has a smooth random prototype image (low-frequency colour patterns); a sample is
    its class prototype, randomly shifted by up to 4 pixels, scaled in contrast, plus pixel noise.
    Hard enough that models need their conv layers, small enough to train on 2 CPU cores.
    """
    rng = np.random.default_rng(seed)
    freq = rng.normal(size=(n_classes, 3, 4, 4))
    yy, xx = np.meshgrid(np.linspace(0, np.pi, 32), np.linspace(0, np.pi, 32), indexing="ij")
    basis = np.stack([np.cos(i * yy) * np.cos(j * xx) for i in range(4) for j in range(4)])  # (16, 32, 32)
    protos = np.einsum("kcf,fhw->kchw", freq.reshape(n_classes, 3, 16), basis)
    protos /= protos.std(axis=(1, 2, 3), keepdims=True)
    n = n_train + n_test
    y = rng.integers(0, n_classes, n)
    shifts = rng.integers(-4, 5, size=(n, 2))
    contrast = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1))
    x = np.empty((n, 3, 32, 32), dtype=np.float32)
    for dy in range(-4, 5):  # vectorized per shift value: at most 81 groups
        for dx in range(-4, 5):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            x[sel] = np.roll(protos[y[sel]], (dy, dx), axis=(2, 3))
    x = (x * contrast + rng.normal(scale=1.0, size=x.shape)).astype(np.float32)
    if not image:
        x = x.reshape(n, -1)
    return Dataset("synthetic-cifar", x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes)


DATASETS = {"digits": digits, "synthetic-cifar": synthetic_cifar}


def load_dataset(name: str, *, image: bool = False, seed: int = 0) -> Dataset:
    """A built-in dataset by name."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name](image=image, seed=seed)
