"""Layer kinds: one module per kind holds its geometry (tensor shapes, per-pass GEMMs, checks).

A new kind is a new module here plus its entry in ``KINDS``; ``LayerSpec`` delegates to it.
"""

from __future__ import annotations

from .base import GemmDims, Kind
from .conv2d import Conv2d
from .conv3d import Conv3d
from .conv_transpose import ConvTranspose
from .embedding import Embedding
from .linear import Linear
from .matmul import Matmul

KINDS: dict[str, Kind] = {k.name: k for k in (Conv2d(), Linear(), Matmul(), Embedding(), Conv3d(),
                                              ConvTranspose())}
# the kinds each trace format version may hold (format 4 added matmul and embedding, then, additively,
# conv3d and conv_transpose)
KINDS_BEFORE_V4 = ("conv2d", "linear")

__all__ = ["KINDS", "KINDS_BEFORE_V4", "GemmDims", "Kind", "kind_of"]


def kind_of(name: str) -> Kind:
    """The kind object of a layer kind's name (KeyError naming the known kinds)."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown layer kind {name!r}; kinds are {tuple(KINDS)}") from None
