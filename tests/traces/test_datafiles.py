"""On-disk data set formats, read from small files the tests write in each publisher's layout."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from hwsim.cli import main
from traces.zoo import datafiles
from traces.zoo.datafiles import DataMissingError
from traces.zoo.datasets import load_dataset


def write_cifar10(root, n_per_batch: int = 4, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """CIFAR-10 python batches as torchvision documents them: ``cifar-10-batches-py/`` with
    data_batch_1..5, test_batch (pickled dicts: b"data" uint8 (N, 3072), rows = R, G, B planes of
    1024 row-major bytes each; b"labels" a list of N ints) and batches.meta."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    written = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        # str keys: what the Python 2 originals give under torchvision's pickle.load(encoding="latin1")
        batch = {"batch_label": name, "labels": labels, "data": data,
                 "filenames": [f"img{i}.png" for i in range(n_per_batch)]}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[name] = (data, labels)
    meta = {"num_cases_per_batch": n_per_batch, "label_names": [f"c{i}" for i in range(10)], "num_vis": 3072}
    (d / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def test_cifar10_python_batches_byte_for_byte(tmp_path):
    written = write_cifar10(tmp_path)
    xtr, ytr, xte, yte = datafiles.read_cifar(tmp_path, "cifar10")
    assert xtr.shape == (20, 3, 32, 32) and xte.shape == (4, 3, 32, 32) and xtr.dtype == np.uint8
    expected_labels = [v for i in range(1, 6) for v in written[f"data_batch_{i}"][1]]
    assert ytr.tolist() == expected_labels  # batch order 1..5, file order within each
    assert yte.tolist() == written["test_batch"][1]
    data = written["data_batch_2"][0]
    for sample, (row, col) in ((1, (0, 0)), (2, (5, 17)), (3, (31, 31))):
        i = 4 + sample  # batch 2 follows batch 1's four samples
        for ch in range(3):  # plane ch starts at byte 1024·ch; pixel (row, col) at 32·row + col
            assert xtr[i, ch, row, col] == data[sample, 1024 * ch + 32 * row + col]
    # the data set standardizes per channel with the training statistics
    ds = load_dataset("cifar10", image=True, data_dir=tmp_path)
    raw = xtr.astype(np.float64)
    mean, std = raw.mean(axis=(0, 2, 3)), raw.std(axis=(0, 2, 3))
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.n_classes == 10
    expected = (raw - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(ds.x_train, expected, rtol=1e-5, atol=1e-5)
    assert ds.y_train.tolist() == expected_labels


def test_cifar100_fine_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 6), ("test", 3)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"fine_labels": list(range(90, 90 + n)), b"coarse_labels": [0] * n}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
    (d / "meta").write_bytes(pickle.dumps({b"fine_label_names": []}, protocol=2))
    ds = load_dataset("cifar100", image=True, data_dir=tmp_path)
    assert ds.n_classes == 100 and ds.y_train.tolist() == list(range(90, 96))
    assert ds.y_test.tolist() == [90, 91, 92]


def test_a_batch_that_needs_code_is_refused(tmp_path):
    write_cifar10(tmp_path)
    evil = pickle.dumps({"data": np.zeros(3), "run": __import__("os").getcwd})  # a code reference
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(evil)
    with pytest.raises(DataMissingError, match="not allowed"):
        datafiles.read_cifar(tmp_path, "cifar10")


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    """The IDX format: magic 0x0000 08 <ndim>, big-endian uint32 sizes, then the bytes."""
    raw = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files(tmp_path, compress):
    rng = np.random.default_rng(2)
    xtr = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    xte = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    ytr, yte = np.array([3, 1, 4, 1, 5, 9, 2], np.uint8), np.array([6, 5, 3], np.uint8)
    sfx = ".gz" if compress else ""
    for name, arr in (("train-images-idx3-ubyte", xtr), ("train-labels-idx1-ubyte", ytr),
                      ("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)):
        write_idx(tmp_path / f"{name}{sfx}", arr, compress)
    a, b, c, d = datafiles.read_idx_set(tmp_path, "fashion-mnist")
    assert np.array_equal(a[:, 0], xtr) and np.array_equal(c[:, 0], xte)
    assert b.tolist() == ytr.tolist() and d.tolist() == yte.tolist()
    ds = load_dataset("fashion-mnist", image=False, data_dir=tmp_path)
    assert ds.x_train.shape == (7, 784) and ds.input_shape == (784,)


def test_idx_size_mismatch_is_one_clear_error(tmp_path):
    write_idx(tmp_path / "x", np.zeros((2, 3), np.uint8), False)
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-1])
    with pytest.raises(DataMissingError, match=r"header says \(2, 3\) \(6 bytes\), found 5"):
        datafiles.read_idx(tmp_path / "x")


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    pixels = {}
    for split, n in (("train", 2), ("test", 1)):
        for cls in ("cat", "ant"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
                Image.fromarray(arr).save(tmp_path / split / cls / f"{i}.png")
                pixels[(split, cls, i)] = arr
    xtr, ytr, _, yte, classes = datafiles.read_image_folder(tmp_path)
    assert classes == ["ant", "cat"] and ytr.tolist() == [0, 0, 1, 1] and yte.tolist() == [0, 1]
    assert xtr.shape == (4, 3, 6, 5)
    assert np.array_equal(xtr[2].transpose(1, 2, 0), pixels[("train", "cat", 0)])


def test_missing_data_dir_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    for dataset in ("cifar10", "fashion-mnist", "image-folder"):
        assert main(["train", "--dataset", dataset, "--model", "vgg8", "--data-dir", str(missing),
                     "--out", str(tmp_path / "t")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(missing) in err
        assert "put " in err and "nothing is downloaded" in err
    assert main(["train", "--dataset", "cifar10", "--model", "vgg8", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "t")]) == 2  # exists, but holds no batches
    err = capsys.readouterr().err
    assert "data_batch_1 not found" in err and err.count("\n") == 1


def test_packaged_mnist_is_the_real_set():
    xtr, ytr, xte, yte = datafiles.read_packaged_mnist()
    assert xtr.shape == (60000, 1, 28, 28) and xte.shape == (10000, 1, 28, 28) and xtr.dtype == np.uint8
    # MNIST's first labels, as published (train-labels-idx1-ubyte, t10k-labels-idx1-ubyte)
    assert ytr[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yte[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(ytr).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
