"""An LSTM classifier built from ``nn.Linear`` gate layers (imports torch): DST's MNIST LSTMs.

DST (arXiv 2005.06870, Table 1) trains two-layer LSTMs on MNIST read row by row (28 steps of 28
pixels), hidden 128 (LSTM-a) or 256 (LSTM-b), with a trainable threshold per hidden unit for each
of the 8 gate matrices (input→hidden and hidden→hidden for the i, f, g, o gates). So that every
method (DST's thresholds included) sees the gate weights as ordinary linear layers, each
:class:`LSTMLayer` holds its gates as two ``nn.Linear`` modules, as the official DST code builds
its LSTM from its own masked linear layers:

- ``ih``: ``I → 4H`` (with the bias), applied to the whole sequence in one call (``x_shape (T, I)``);
- ``hh``: ``H → 4H`` (no bias: ``nn.LSTM``'s second bias is redundant), applied once per time step
  (calls ``hh``, ``hh#1``, …, the recurrent GEMM of each step, one parameter updated once).

Rows ``[0:H)``, ``[H:2H)``, ``[2H:3H)``, ``[3H:4H)`` are the i, f, g, o gates, as in ``nn.LSTM``;
DST's per-output threshold of a ``4H``-row weight is therefore one threshold per gate and hidden
unit, the paper's rule. The cell is ``nn.LSTM``'s: ``c' = σ(f)·c + σ(i)·tanh(g)``,
``h' = σ(o)·tanh(c')``, states starting at 0; weights and biases start uniform in ``±1/√H``
(``nn.LSTM``'s initialization). The classifier reads the last layer's final hidden state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from .models import Model


class LSTMLayer(nn.Module):
    """One LSTM layer: ``(B, T, I) → (B, T, H)``."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.ih = nn.Linear(in_features, 4 * hidden)
        self.hh = nn.Linear(hidden, 4 * hidden, bias=False)
        bound = 1 / math.sqrt(hidden)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates_x = self.ih(x)  # every step's input projection in one GEMM
        h = x.new_zeros(len(x), self.hidden)
        c = x.new_zeros(len(x), self.hidden)
        out = []
        for t in range(x.shape[1]):
            i, f, g, o = (gates_x[:, t] + self.hh(h)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)


class LSTMClassifier(Model):
    """Stacked :class:`LSTMLayer` over the rows of an image, then a linear classifier."""

    def __init__(self, in_shape: Sequence[int], n_classes: int, hidden: int, layers: int = 2) -> None:
        super().__init__()
        if len(in_shape) != 3 or in_shape[0] != 1:
            raise ValueError(f"lstm: takes one-channel images (1, H, W) read row by row, "
                             f"got {tuple(in_shape)}")
        widths = [in_shape[2], *([hidden] * layers)]
        self.rnn = nn.ModuleList(LSTMLayer(a, b) for a, b in itertools.pairwise(widths))
        self.out = nn.Linear(hidden, n_classes)

    def _pairs(self):
        return [*((m, None) for layer in self.rnn for m in (layer.ih, layer.hh)), (self.out, None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1, 2)  # (B, 1, H, W) → (B, H, W): H steps of W inputs
        for layer in self.rnn:
            x = layer(x)
        return self.out(x[:, -1])


LSTM_PRESETS = {"lstm-tiny": {"hidden": 16, "layers": 2}, "dst-lstm-a": {"hidden": 128, "layers": 2},
                "dst-lstm-b": {"hidden": 256, "layers": 2}}


def build_lstm(name: str, input_shape: Sequence[int], n_classes: int) -> LSTMClassifier:
    """An LSTM preset (:data:`LSTM_PRESETS`)."""
    return LSTMClassifier(input_shape, n_classes, **LSTM_PRESETS[name])
