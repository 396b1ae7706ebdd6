"""Recurrent layers as their gate GEMMs (imports torch).

PyTorch runs ``nn.LSTM``/``nn.GRU``/``nn.RNN`` as one fused operator (``aten.lstm``), whose gate
GEMMs no hook can see. While a recorder is open, such a module's ``forward`` is this module's
:func:`forward` instead: the same mathematics step by step (PyTorch's gate order and equations,
``torch.nn.LSTM`` docs), with every GEMM an ``F.linear`` on the module's own parameters, which
the recorder's functional capture records as a ``linear`` call naming its parameter
(:mod:`traces.recording.functional`):

- the input projection of the whole sequence, one call per layer and direction: input
  ``(N, T, I)``, weight ``weight_ih_l{k}`` ``(G·H, I)`` (G = 4 LSTM, 3 GRU, 1 RNN);
- the recurrent GEMM, one call per time step: input ``h_{t-1}`` ``(N, R)``, weight
  ``weight_hh_l{k}`` ``(G·H, R)``, named ``<module>.weight_hh_l{k}``, ``#1``, ``#2``, … (``R = H``,
  or ``R = P`` for an LSTM with ``proj_size = P > 0``);
- an LSTM with ``proj_size = P > 0``: its projection, one call per time step: input
  ``o ⊙ tanh(c_t)`` ``(N, H)``, weight ``weight_hr_l{k}`` ``(P, H)`` (no bias), giving ``h_t``
  ``(N, P)``; the next layer's input is then ``P`` (or ``2·P``) wide.

The gate non-linearities and the cell update are element-wise (vector work). Results equal the
fused kernel's to float rounding (tests/traces/test_recurrent.py). Outside a recorded training
step (evaluation, ``no_grad``) the module's own fused forward runs. Packed sequences are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..format.errors import RecorderError

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}  # gate blocks of weight_ih / weight_hh


def recurrent_problem(module: nn.RNNBase) -> str | None:
    """Why ``module`` cannot be recorded as its gate GEMMs (None: it can)."""
    if module.mode not in GATES:
        return f"recurrent mode {module.mode!r} is not one hwsim decomposes (LSTM, GRU, RNN)"
    return None


def _cell(mode: str) -> Callable[..., tuple[torch.Tensor, torch.Tensor | None]]:
    """One time step's element-wise work, from the gate pre-activations ``gi`` (input part) and
    ``gh`` (recurrent part, bias included), the previous state ``h`` and cell ``c``."""
    def lstm(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple:
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def gru(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor, c: None) -> tuple:
        ir, iz, in_ = gi.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return (1 - z) * n + z * h, None

    def rnn(act: Callable) -> Callable:
        return lambda gi, gh, h, c: (act(gi + gh), None)

    return {"LSTM": lstm, "GRU": gru, "RNN_TANH": rnn(torch.tanh), "RNN_RELU": rnn(torch.relu)}[mode]


def forward(module: nn.RNNBase, fused: Callable, recording: Callable[[], bool], input: Any,
            hx: Any = None) -> tuple:
    """``module(input, hx)`` as its gate GEMMs while ``recording()`` holds, else ``fused(input, hx)``."""
    if not recording():
        return fused(input, hx)
    if isinstance(input, nn.utils.rnn.PackedSequence):
        raise RecorderError(f"{type(module).__name__}: a PackedSequence input is not decomposed into "
                            "gate GEMMs yet; record with padded sequences")
    lstm = module.mode == "LSTM"
    unbatched = input.dim() == 2
    x = input.unsqueeze(1 if not module.batch_first else 0) if unbatched else input
    x = x if module.batch_first else x.transpose(0, 1)  # (N, T, I)
    n, t = x.shape[0], x.shape[1]
    dirs = 2 if module.bidirectional else 1
    h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
    if h0 is not None and unbatched:
        h0, c0 = h0.unsqueeze(1), (c0.unsqueeze(1) if c0 is not None else None)
    proj = getattr(module, "proj_size", 0)  # an LSTM's h is P = proj_size wide (0: no projection)
    h0 = x.new_zeros(module.num_layers * dirs, n, proj or module.hidden_size) if h0 is None else h0
    if lstm and c0 is None:
        c0 = x.new_zeros(module.num_layers * dirs, n, module.hidden_size)
    cell = _cell(module.mode)
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(module, "weight_ih" + sfx), getattr(module, "weight_hh" + sfx)
            b_ih = getattr(module, "bias_ih" + sfx) if module.bias else None
            b_hh = getattr(module, "bias_hh" + sfx) if module.bias else None
            w_hr = getattr(module, "weight_hr" + sfx) if proj else None
            gi = F.linear(x, w_ih, b_ih)  # (N, T, G·H): the input projection of the whole sequence
            k = layer * dirs + d
            h, c = h0[k], (c0[k] if lstm else None)
            steps = [None] * t
            for s in (range(t - 1, -1, -1) if d else range(t)):
                h, c = cell(gi[:, s], F.linear(h, w_hh, b_hh), h, c)  # the recurrent GEMM of step s
                if w_hr is not None:
                    h = F.linear(h, w_hr)  # the projection of step s: (N, H) -> (N, P)
                steps[s] = h
            outs.append(torch.stack(steps, dim=1))  # (N, T, H)
            h_n.append(h)
            c_n.append(c)
        x = torch.cat(outs, dim=-1) if dirs == 2 else outs[0]
        if module.dropout and module.training and layer < module.num_layers - 1:
            x = F.dropout(x, module.dropout, training=True)
    out = x if module.batch_first else x.transpose(0, 1)
    hn = torch.stack(h_n)
    cn = torch.stack(c_n) if lstm else None
    if unbatched:
        out = out.squeeze(0 if module.batch_first else 1)
        hn, cn = hn.squeeze(1), (cn.squeeze(1) if cn is not None else None)
    return out, ((hn, cn) if lstm else hn)
