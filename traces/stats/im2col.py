"""Convolution geometry on numpy masks: padded sliding windows and im2col, no Python loops.

Linear layers are handled as 1×1 convolutions over ``rows × features`` (see :func:`as_conv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..format.layer import LayerSpec


@dataclass(frozen=True)
class ConvGeometry:
    """Conv parameters of a layer in 2-D form (a linear layer is a 1×1 conv)."""

    channels: int  # C
    out_channels: int  # Kout
    kernel: tuple[int, int]  # (R, S)
    out_hw: tuple[int, int]  # (P, Q)
    in_hw: tuple[int, int]  # (H, W)
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @property
    def cg(self) -> int:
        """Input channels per group."""
        return self.channels // self.groups

    @property
    def kg(self) -> int:
        """Output channels per group."""
        return self.out_channels // self.groups


def geometry(spec: LayerSpec) -> ConvGeometry:
    """The 2-D conv view of a layer (a ``conv3d`` or ``conv_transpose`` layer has none: its
    geometry is :func:`traces.stats.convnd.geometry_nd`)."""
    if spec.kind in ("conv3d", "conv_transpose"):
        raise KeyError(f"{spec.name}: a {spec.kind} layer has no 2-D conv view (traces.stats.convnd)")
    if spec.kind == "linear":
        out, f = spec.w_shape
        return ConvGeometry(f, out, (1, 1), (1, 1), (1, 1), (1, 1), (0, 0), (1, 1), 1)
    c, h, w = spec.x_shape
    return ConvGeometry(c, spec.w_shape[0], spec.w_shape[2:], spec.y_shape[1:], (h, w),
                        spec.stride, spec.padding, spec.dilation, spec.groups)


def as_conv(spec: LayerSpec, tensor: str, arr: np.ndarray) -> np.ndarray:
    """Reshape a recorded mask into conv layout: activations ``(n, C, H, W)``, weights 4-D.

    Linear activations ``(n, ..., F)`` become ``(n·…, F, 1, 1)``.
    """
    if spec.kind == "conv2d":
        return arr
    if tensor in ("w", "dw", "dw_needed"):
        return arr[:, :, None, None]
    return arr.reshape(-1, arr.shape[-1])[:, :, None, None]


def windows(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Sliding windows of the zero-padded input: ``(..., C, P, Q, R, S)`` view of ``x (..., C, H, W)``.

    ``windows(x)[..., c, p, q, r, s]`` is the input element that tap ``(r, s)`` of output
    ``(p, q)`` reads (0 where it falls on padding).
    """
    (ph, pw), (sh, sw), (dh, dw) = g.padding, g.stride, g.dilation
    r, s = g.kernel
    pad = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    xp = np.pad(x, pad) if (ph or pw) else x
    win = sliding_window_view(xp, (dh * (r - 1) + 1, dw * (s - 1) + 1), axis=(-2, -1))
    p, q = g.out_hw
    return win[..., : (p - 1) * sh + 1 : sh, : (q - 1) * sw + 1 : sw, ::dh, ::dw]


def taps(x: np.ndarray, g: ConvGeometry) -> list[tuple[int, int, np.ndarray]]:
    """Each kernel tap's view of the zero-padded input: ``(r, s, view)`` with ``view (..., P, Q)``
    the input elements tap ``(r, s)`` reads for every output (a strided slice; the same elements
    as ``windows(x)[..., r, s]``, but summing over outputs reads them with long inner loops)."""
    (ph, pw), (sh, sw), (dh, dw) = g.padding, g.stride, g.dilation
    (r, s), (p, q) = g.kernel, g.out_hw
    pad = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    xp = np.pad(x, pad) if (ph or pw) else x
    return [(i, j, xp[..., i * dh : i * dh + sh * (p - 1) + 1 : sh, j * dw : j * dw + sw * (q - 1) + 1 : sw])
            for i in range(r) for j in range(s)]


def tap_valid(g: ConvGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Which taps land inside the input: ``(R, P)`` and ``(S, Q)`` bool tables."""
    (ph, pw), (sh, sw), (dh, dw) = g.padding, g.stride, g.dilation
    (r, s), (p, q), (h, w) = g.kernel, g.out_hw, g.in_hw
    rows = np.arange(p)[None, :] * sh + np.arange(r)[:, None] * dh - ph
    cols = np.arange(q)[None, :] * sw + np.arange(s)[:, None] * dw - pw
    return (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)


def im2col(x: np.ndarray, g: ConvGeometry, group: int, dtype: type = np.float32,
           order: str = "C") -> np.ndarray:
    """``(n·P·Q, C/g·R·S)`` im2col of one group of ``x (n, C, H, W)``, as ``dtype``.

    Column order ``(c, r, s)`` matches a weight reshaped to ``(Kout, C/g·R·S)``. The gathering
    copy runs in the narrower of ``x``'s dtype and ``dtype`` (a bool gather and then a contiguous
    cast is up to 25 % faster than a float32 gather). ``order="F"``: the same matrix, column-major
    (the transpose of a C-contiguous ``(C/g·R·S, n·P·Q)`` array): its gathering copy reads and
    writes runs of ``Q`` along the input's rows instead of the kernel's ``S`` taps, 2-3× faster
    for 3×3 kernels; BLAS reads it in place.
    """
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', got {order!r}")
    xs = x[:, group * g.cg : (group + 1) * g.cg]
    if xs.dtype.itemsize > np.dtype(dtype).itemsize:
        xs = xs.astype(dtype)
    win = windows(xs, g)  # (n, Cg, P, Q, R, S)
    n = x.shape[0]
    p, q = g.out_hw
    if order == "F":
        cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(-1, n * p * q)
        return cols.astype(dtype, copy=False).T
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * p * q, -1).astype(dtype, copy=False)


def rows_of(t: np.ndarray, g: ConvGeometry, group: int, dtype: type = np.float32) -> np.ndarray:
    """``(n·P·Q, Kout/g)`` GEMM view of one group of an output-shaped ``t (n, K, P, Q)``, as
    ``dtype``: a transposing copy in ``t``'s own dtype, then a contiguous cast (casting inside the
    transposing copy is ~7× slower)."""
    ts = np.ascontiguousarray(t[:, group * g.kg : (group + 1) * g.kg].transpose(0, 2, 3, 1))
    return ts.astype(dtype, copy=False).reshape(-1, g.kg)
