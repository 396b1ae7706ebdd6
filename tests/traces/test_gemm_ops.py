"""The recorder's GEMM watch knows every product kernel of the installed PyTorch.

A GEMM the watch does not know runs unrecorded and unrefused: Mixtral's experts in
``transformers`` 5 run ``aten._grouped_mm``, which was not listed, so an MoE model's expert MLPs
(most of its work) vanished from the trace without a word.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import traces
from traces.format.errors import RecorderError
from traces.recording.capture import GEMM_OP_NAMES, NOT_GEMM_OP_NAMES, gemm_like_name


def aten_operator_names() -> set[str]:
    return {n.split("::", 1)[1].split(".", 1)[0] for n in torch._C._dispatch_get_all_op_names()
            if n.startswith("aten::")}


def test_every_gemm_like_aten_operator_is_watched():
    names = aten_operator_names()
    assert {"mm", "_grouped_mm", "convolution", "_scaled_dot_product_flash_attention_for_cpu"} <= names
    unknown = sorted(n for n in names if gemm_like_name(n) and n not in GEMM_OP_NAMES
                     and n not in NOT_GEMM_OP_NAMES)
    assert unknown == []


def test_the_name_rule_reads_products_not_lookalikes():
    assert all(gemm_like_name(n) for n in ("_grouped_mm", "addmm_", "conv_transpose2d",
                                             "_cudnn_attention_forward", "linalg_multi_dot"))
    assert not any(gemm_like_name(n) for n in ("cummax", "cumsum", "embedding", "softmax", "layer_norm"))


class GroupedExperts(nn.Module):
    """Two experts' weights in one 3-D parameter, run as one grouped GEMM over the tokens sorted
    by expert (the layout of ``transformers``' ``grouped_mm`` experts)."""

    def __init__(self) -> None:
        super().__init__()
        self.router = nn.Linear(8, 2)
        self.experts = nn.Parameter(torch.randn(2, 8, 8) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.router(x)
        order = h.argmax(-1).argsort()
        offsets = torch.tensor([x.shape[0] // 2, x.shape[0]], dtype=torch.int32)
        return torch._grouped_mm(x[order], self.experts, offs=offsets).sum()


def test_grouped_gemm_experts_are_refused_naming_the_operator_and_line(tmp_path):
    model = GroupedExperts()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RecorderError, match=r"aten\._grouped_mm.*test_gemm_ops\.py:\d+"):
        with traces.record(model, tmp_path / "t", every=1, optimizer=opt) as rec:
            opt.zero_grad()
            model(torch.randn(4, 8)).backward()
            opt.step()
            rec.step()
