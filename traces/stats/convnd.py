"""N-D convolution geometry on numpy masks, for ``conv3d`` and ``conv_transpose`` layers.

Both kinds are described by one *direct* conv (:class:`ConvNd`): a ``conv3d`` layer is its own; a
``conv_transpose`` layer is the adjoint of the direct conv from its output's shape to its input's,
with the same weight ``(Cin, Cout/g, *k)`` (that conv's ``(Kout, C/g, *k)``), stride, padding and
dilation. In that conv's terms the transposed layer's ``dy`` plays the input and its ``x`` the
output gradient. Tap order is C order over the kernel's dimensions, channel
slowest, as a weight reshaped to ``(Kout, C/g·prod(k))``. No per-element Python loop: one strided
slice per kernel tap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..format.layer import LayerSpec


@dataclass(frozen=True)
class ConvNd:
    """A direct conv over ``nd`` spatial dimensions: input ``(n, C, *in_size)``, weight
    ``(Kout, C/g, *kernel)``, output ``(n, Kout, *out_size)``."""

    channels: int
    out_channels: int
    kernel: tuple[int, ...]
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    @property
    def cg(self) -> int:
        """Input channels per group."""
        return self.channels // self.groups

    @property
    def kg(self) -> int:
        """Output channels per group."""
        return self.out_channels // self.groups

    @property
    def positions(self) -> int:
        """Output positions per sample: ``prod(out_size)``."""
        return math.prod(self.out_size)


def geometry_nd(spec: LayerSpec) -> ConvNd:
    """The direct conv of a ``conv3d`` or ``conv_transpose`` layer."""
    k = tuple(spec.w_shape[2:])
    if spec.kind == "conv3d":
        return ConvNd(spec.x_shape[0], spec.w_shape[0], k, tuple(spec.x_shape[1:]), tuple(spec.y_shape[1:]),
                      spec.stride, spec.padding, spec.dilation, spec.groups)
    if spec.kind == "conv_transpose":
        return ConvNd(spec.y_shape[0], spec.w_shape[0], k, tuple(spec.y_shape[1:]), tuple(spec.x_shape[1:]),
                      spec.stride, spec.padding, spec.dilation, spec.groups)
    raise KeyError(f"{spec.name}: no N-D conv geometry for kind {spec.kind!r}")


def tap_views(t: np.ndarray, g: ConvNd, pad_value: bool | int = 0) -> list[np.ndarray]:
    """Each kernel tap's view of ``t (..., *in_size)`` padded with ``pad_value``: views
    ``(..., *out_size)``, the elements that tap reads for every output position."""
    nd = len(g.kernel)
    if any(g.padding):
        t = np.pad(t, [(0, 0)] * (t.ndim - nd) + [(p, p) for p in g.padding], constant_values=pad_value)
    views = []
    for tap in np.ndindex(*g.kernel):
        idx = tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                    for i, d, s, o in zip(tap, g.dilation, g.stride, g.out_size, strict=True))
        views.append(t[(Ellipsis, *idx)])
    return views


def im2col_nd(t: np.ndarray, g: ConvNd, group: int, pad_value: bool = False) -> np.ndarray:
    """``(n·prod(out), C/g·prod(k))`` bool im2col of one group of ``t (n, C, *in_size)``."""
    ts = t[:, group * g.cg:(group + 1) * g.cg].astype(bool, copy=False)
    cols = np.stack(tap_views(ts, g, pad_value), axis=2)  # (n, Cg, taps, *out)
    cols = np.moveaxis(cols, (1, 2), (-2, -1))  # (n, *out, Cg, taps)
    return cols.reshape(t.shape[0] * g.positions, -1)


def rows_nd(t: np.ndarray, g: ConvNd, group: int) -> np.ndarray:
    """``(n·prod(out), Kout/g)`` bool GEMM rows of one group of an output-shaped ``t``."""
    ts = t[:, group * g.kg:(group + 1) * g.kg].astype(bool, copy=False)
    return np.ascontiguousarray(np.moveaxis(ts, 1, -1)).reshape(-1, g.kg)


def group_weight(w: np.ndarray, g: ConvNd, group: int) -> np.ndarray:
    """``(Kout/g, C/g·prod(k))`` bool weight of one group."""
    return w[group * g.kg:(group + 1) * g.kg].reshape(g.kg, -1).astype(bool, copy=False)


def valid_1d(g: ConvNd, dim: int) -> np.ndarray:
    """``(k, out)`` bool: whether tap ``i`` of output position ``o`` lands inside the input along
    spatial dimension ``dim``."""
    pos = (np.arange(g.out_size[dim])[None, :] * g.stride[dim]
           + np.arange(g.kernel[dim])[:, None] * g.dilation[dim] - g.padding[dim])
    return (pos >= 0) & (pos < g.in_size[dim])


def valid_taps_nd(g: ConvNd, n: int) -> np.ndarray | None:
    """``(n·prod(out), C/g·prod(k))``: which products of an im2col land inside the input (None:
    all do, no padding)."""
    if not any(g.padding):
        return None
    one = im2col_nd(np.ones((1, g.cg, *g.in_size), bool), g, 0)
    return np.tile(one, (n, 1))


def im2col_count(t: np.ndarray, g: ConvNd, group: int) -> int:
    """Non-zeros of :func:`im2col_nd` of ``t``'s group, without building it: each tap's window
    over the per-position counts."""
    per_pos = t[:, group * g.cg:(group + 1) * g.cg].sum(axis=(0, 1), dtype=np.int64)  # (*in)
    return int(sum(v.sum() for v in tap_views(per_pos, g)))
