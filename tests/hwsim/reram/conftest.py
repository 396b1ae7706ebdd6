"""Tiny real traces (MLP on digits, one epoch, masks and weights every 5 steps) of every method."""

from __future__ import annotations

import pytest

from traces.methods import METHODS as _BUILT_IN

# every built-in method that applies to an MLP (dense, dsg, dst, mlevel, nm, ...); attn-topk sparsifies
# attention scores, which an MLP does not have (it refuses one)
METHODS = tuple(sorted(m for m in _BUILT_IN if m != "attn-topk"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    from traces.training import train

    root = tmp_path_factory.mktemp("reram_traces")
    out = {}
    for method in METHODS:
        out[method] = root / method
        # DST at α = 5e-3 (10× the paper's MNIST default): one epoch prunes enough to show in the writes
        params = {"alpha": 5e-3} if method == "dst" else None
        train(model="mlp", dataset="digits", method=method, epochs=1, every=5, out=out[method],
              method_params=params)
    return out


@pytest.fixture(scope="session")
def trained_lenet(tmp_path_factory):
    """A LeNet-5 DST trace: conv weights (Kout, C, R, S) on the crossbars."""
    from traces.training import train

    path = tmp_path_factory.mktemp("reram_lenet") / "dst"
    train(model="lenet5", dataset="digits", method="dst", epochs=1, every=11, out=path)
    return path
