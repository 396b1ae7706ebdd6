"""Slow scalar reference for effectual MACs: nested Python loops straight from the definitions.

Independent of traces.stats.accounting: no im2col, no factoring, just every (output, tap) pair.
"""

from __future__ import annotations

import itertools

import numpy as np


def conv_effectual(x, w, stride, padding, dilation, groups, y_sel=None, dy=None, dw_needed=None):
    """Return (forward, backward_data_gemm, backward_data_no_padding, backward_weight)."""
    n, _, h, wd = x.shape
    k, cg, r, s = w.shape
    kg = k // groups
    p = (h + 2 * padding[0] - dilation[0] * (r - 1) - 1) // stride[0] + 1
    q = (wd + 2 * padding[1] - dilation[1] * (s - 1) - 1) // stride[1] + 1
    fwd = bwd_data = bwd_data_valid = bwd_weight = 0
    for b, ko, pi, qi in itertools.product(range(n), range(k), range(p), range(q)):
        grp = ko // kg
        for ci, ri, si in itertools.product(range(cg), range(r), range(s)):
            hi = pi * stride[0] + ri * dilation[0] - padding[0]
            wi = qi * stride[1] + si * dilation[1] - padding[1]
            inside = 0 <= hi < h and 0 <= wi < wd
            xv = bool(x[b, grp * cg + ci, hi, wi]) if inside else False
            wv = bool(w[ko, ci, ri, si])
            sel = True if y_sel is None else bool(y_sel[b, ko, pi, qi])
            need = True if dw_needed is None else bool(dw_needed[ko, ci, ri, si])
            fwd += xv and wv and sel
            if dy is not None:
                dv = bool(dy[b, ko, pi, qi])
                bwd_data += dv and wv
                bwd_data_valid += dv and wv and inside
                bwd_weight += xv and dv and need
    return fwd, bwd_data, bwd_data_valid, bwd_weight


def linear_effectual(x, w, y_sel=None, dy=None, dw_needed=None):
    """Same for a linear layer on x (M, F), w (out, F)."""
    m, f = x.shape
    out = w.shape[0]
    fwd = bwd_data = bwd_weight = 0
    for i, o, j in itertools.product(range(m), range(out), range(f)):
        xv, wv = bool(x[i, j]), bool(w[o, j])
        fwd += xv and wv and (y_sel is None or bool(y_sel[i, o]))
        if dy is not None:
            dv = bool(dy[i, o])
            bwd_data += dv and wv
            bwd_weight += xv and dv and (dw_needed is None or bool(dw_needed[o, j]))
    return fwd, bwd_data, bwd_weight


def random_mask(rng: np.random.Generator, shape, density=None) -> np.ndarray:
    d = rng.uniform(0.1, 0.9) if density is None else density
    return rng.random(shape) < d
