"""Slow scalar references for 3-D and transposed convolutions: Python loops over every (sample,
channel, channel, position, kernel tap), straight from the definitions. Each also computes the
values, which the tests compare with PyTorch's own ops, so the loops are known to be the ops.

Independent of traces.stats.convnd: no im2col, no direct-conv adjoint, no factoring.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _positions(shape):
    return itertools.product(*(range(v) for v in shape))


def conv_nd(x, w, y_sel, dy, dw_needed, stride, padding, dilation, groups):
    """A direct N-D conv. Returns (y values, counts): counts are (forward ``x∧w∧y_sel``,
    backward-data ``dy∧w`` all, backward-data landing inside x, backward-weight ``x∧dy∧dw_needed``)."""
    n = x.shape[0]
    k, cg = w.shape[:2]
    kg, nd = k // groups, x.ndim - 2
    ks, size = w.shape[2:], x.shape[2:]
    out = tuple((size[i] + 2 * padding[i] - dilation[i] * (ks[i] - 1) - 1) // stride[i] + 1
                for i in range(nd))
    y = np.zeros((n, k, *out))
    fwd = bd = bd_in = bw = 0
    for b, ko in itertools.product(range(n), range(k)):
        grp = ko // kg
        for o in _positions(out):
            for ci in range(cg):
                for t in _positions(ks):
                    i = tuple(o[d] * stride[d] + t[d] * dilation[d] - padding[d] for d in range(nd))
                    inside = all(0 <= i[d] < size[d] for d in range(nd))
                    xv = x[(b, grp * cg + ci, *i)] if inside else 0.0
                    wv = w[(ko, ci, *t)]
                    y[(b, ko, *o)] += xv * wv
                    sel = y_sel is None or y_sel[(b, ko, *o)]
                    need = dw_needed is None or dw_needed[(ko, ci, *t)]
                    dv = dy[(b, ko, *o)] != 0
                    fwd += bool(xv != 0 and wv != 0 and sel)
                    bd += bool(dv and wv != 0)
                    bd_in += bool(dv and wv != 0 and inside)
                    bw += bool(xv != 0 and dv and need)
    return y, (fwd, bd, bd_in, bw)


def conv_transpose_nd(x, w, y_sel, dy, dw_needed, stride, padding, output_padding, dilation, groups):
    """A transposed N-D conv, ``x (n, Cin, *in)``, ``w (Cin, Cout/g, *k)``.

    The forward gathers: for every output position and tap, the input element it reads is at
    ``(o + p - t·d) / s`` when that is a whole number inside the input (else the tap meets an
    inserted zero or the border: no product). The backward passes scatter over input positions.
    Returns (y values, dx values, counts): counts are (forward ``x∧w∧y_sel`` landing inside y,
    forward products landing outside y or on y_sel, backward-data ``dy∧w``, backward-weight
    ``x∧dy∧dw_needed``), and the algorithmic MACs of a direct conv over the zero-inserted input.
    """
    n, cin = x.shape[:2]
    coutg = w.shape[1]
    cing, nd = cin // groups, x.ndim - 2
    ks, size = w.shape[2:], x.shape[2:]
    out = tuple((size[d] - 1) * stride[d] - 2 * padding[d] + dilation[d] * (ks[d] - 1) + output_padding[d] + 1
                for d in range(nd))
    cout = coutg * groups
    y = np.zeros((n, cout, *out))
    dx = np.zeros(x.shape)
    fwd = fwd_gemm = bd = bw = 0
    for b, co in itertools.product(range(n), range(cout)):  # forward: gather per output position
        grp = co // coutg
        for o in _positions(out):
            for ci in range(grp * cing, (grp + 1) * cing):
                for t in _positions(ks):
                    num = [o[d] + padding[d] - t[d] * dilation[d] for d in range(nd)]
                    if any(v % stride[d] or not 0 <= v // stride[d] < size[d] for d, v in enumerate(num)):
                        continue
                    i = tuple(v // stride[d] for d, v in enumerate(num))
                    xv, wv = x[(b, ci, *i)], w[(ci, co % coutg, *t)]
                    y[(b, co, *o)] += xv * wv
                    fwd += bool(xv != 0 and wv != 0 and (y_sel is None or y_sel[(b, co, *o)]))
    for b, ci in itertools.product(range(n), range(cin)):  # backward: scatter per input position
        grp = ci // cing
        for i in _positions(size):
            for co in range(grp * coutg, (grp + 1) * coutg):
                for t in _positions(ks):
                    o = tuple(i[d] * stride[d] + t[d] * dilation[d] - padding[d] for d in range(nd))
                    inside = all(0 <= o[d] < out[d] for d in range(nd))
                    xv, wv = x[(b, ci, *i)], w[(ci, co % coutg, *t)]
                    on_sel = not inside or y_sel is None or y_sel[(b, co, *o)]
                    fwd_gemm += bool(xv != 0 and wv != 0 and on_sel)
                    if not inside:
                        continue
                    dv = dy[(b, co, *o)]
                    dx[(b, ci, *i)] += dv * wv
                    bd += bool(dv != 0 and wv != 0)
                    need = dw_needed is None or dw_needed[(ci, co % coutg, *t)]
                    bw += bool(xv != 0 and dv != 0 and need)
    zero_inserted = n * cout * math.prod(out) * cing * math.prod(ks)
    return y, dx, (fwd, fwd_gemm, bd, bw), zero_inserted
