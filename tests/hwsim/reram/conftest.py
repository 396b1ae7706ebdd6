"""Tiny real traces (MLP on digits, one epoch, masks and weights every 5 steps) of every method."""

from __future__ import annotations

import pytest

METHODS = ("dense", "dst", "dsg", "mlevel")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    from traces.training import train

    root = tmp_path_factory.mktemp("reram_traces")
    out = {}
    for method in METHODS:
        out[method] = root / method
        train(model="mlp", dataset="digits", method=method, epochs=1, every=5, out=out[method])
    return out
