"""N:M group checks on hand-made masks."""

from __future__ import annotations

import numpy as np

from traces.format.structured import backward_data_nm, forward_nm, group_counts, nm_fraction, satisfies_nm


def test_group_counts_pad_the_short_last_group():
    mat = np.array([[1, 1, 0, 0, 1, 1], [1, 1, 1, 0, 0, 0]], bool)
    assert group_counts(mat, 4).tolist() == [[2, 2], [3, 0]]
    assert nm_fraction(mat, 2, 4) == 0.75
    assert not satisfies_nm(mat, 2, 4) and satisfies_nm(mat, 3, 4)


def test_one_broken_group_breaks_the_mask():
    w = np.tile(np.array([1, 0, 1, 0], bool), (8, 4))  # (8, 16): every group 2 of 4
    assert forward_nm(w, 2, 4)
    w[3, 5] = True
    assert not forward_nm(w, 2, 4)
    assert nm_fraction(w, 2, 4) == 1 - 1 / 32


def test_an_ordinary_2_4_mask_is_not_transposable_but_a_diagonal_one_is():
    rows = np.array([[1, 1, 0, 0]] * 4, bool)  # 2:4 along K, but columns 0 and 1 are all ones
    assert forward_nm(rows, 2, 4) and not backward_data_nm(rows, 2, 4)
    diag = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]], bool)
    assert forward_nm(diag, 2, 4) and backward_data_nm(diag, 2, 4)
    conv = np.zeros((8, 2, 2, 2), bool)  # 2 groups of 4 output channels, Kr = 8
    conv[:, 0, 0, :] = True  # each row 2 of 8 ... but each column within a group: 4 of 4
    assert forward_nm(conv, 2, 4) and not backward_data_nm(conv, 2, 4, groups=2)
