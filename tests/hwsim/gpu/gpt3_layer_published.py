"""A GPT-3 175B layer's kernels on the GPU model against published A100 timings:
``tests/data/gpu_gpt3_layer_published.csv``.

The measurements are LLMCompass's real-hardware validation data (Zhang et al., ISCA 2024; repository
PrincetonUniversity/LLMCompass, ``ae/figure5``): one GPT-3 175B layer (d_model 12288, 96 heads of
128, d_ff 49152) sliced four ways by tensor parallelism, as one A100 of the four runs it, op by op
(PyTorch eager GEMMs, softmax and torch.compile'd LayerNorm and GELU); in the prefill (batch 8 × 2048
tokens, Fig. 5(i)) and in the decode of one token (Fig. 5(k)); and its GEMM sweep ``M × 12288 ×
12288`` (Fig. 5(a)). Each row keeps its figure, file and how it was timed, and ``dtype``, the data
type it was timed with (LLMCompass's ``Matmul.run_on_gpu``: BF16; ``BatchedMatmul``, softmax,
LayerNorm, GELU: FP16; the all-reduces: the layer's FP16): a GEMM runs on the card at that type's
sustained clock (``gpu.operand_dtype``, as ``tests/hwsim/gpu/published.py`` does).

``split``: ``check``, the prefill's ops, on which the acceptance bounds are asserted (each within
20 %, the layer's sum within 10 %); ``holdout``, rows looked at only after the model was settled
(none of the model's constants was fitted on any row here); ``not_modelled``, the all-reduces
between the four GPUs (hwsim has no interconnect model): kept so the published layer adds up.

``python -m tests.hwsim.gpu.gpt3_layer_published`` prints the table of docs/gpu.md.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import archs
from hwsim.gpu.batched import batched_gemm_cost
from hwsim.gpu.gemm import Operands
from hwsim.gpu.memory_bound import memory_bound_cost

CSV = Path(__file__).resolve().parents[2] / "data" / "gpu_gpt3_layer_published.csv"
OP_BOUND = 0.20  # each op of the layer, relative error
LAYER_BOUND = 0.10  # the layer's modelled ops together
LAYERS = ("llmc_prefill", "llmc_decode")  # id prefixes of the rows of one layer


@dataclass(frozen=True)
class Point:
    id: str
    op: str
    kind: str
    split: str
    measured_ms: float
    model_ms: float  # nan for a row the model does not cover (split not_modelled)

    @property
    def error(self) -> float:
        """Signed relative error of the model against the measurement."""
        return (self.model_ms - self.measured_ms) / self.measured_ms

    @property
    def layer(self) -> str:
        """The layer the row belongs to (``llmc_prefill``, ``llmc_decode``), or '' for a sweep row."""
        return next((layer for layer in LAYERS if self.id.startswith(layer + "_")), "")


def model_ms(row: dict[str, str]) -> float:
    """The model's time for one published row, ms (all of its ``calls``)."""
    arch = archs.PRESETS[row["preset"]]
    eb = float(row["element_bytes"])
    kind = row["kind"]
    if kind == "gemm":
        arch = archs.replace(arch, {"gpu.operand_dtype": row["dtype"]})
        cost = batched_gemm_cost(arch, int(row["groups"]), int(row["m"]), int(row["k"]), int(row["n"]),
                                 Operands(eb, eb, eb))
        cycles = int(row["calls"]) * cost.cycles
    elif kind in ("softmax", "layer_norm", "gelu"):
        rows, width = int(row["rows"]), int(row["width"])
        cycles = memory_bound_cost(arch, kind, "forward", rows * width, row=width, element_bytes=eb).cycles
    else:
        return float("nan")
    return cycles / arch.clock_hz * 1e3


def load(path: Path = CSV) -> list[Point]:
    """Every published row with the model's time beside it."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return [Point(r["id"], r["op"], r["kind"], r["split"], float(r["measured_ms"]),
                  model_ms(r) if r["split"] != "not_modelled" else float("nan")) for r in rows]


def layer_totals(points: list[Point], layer: str) -> tuple[float, float]:
    """(published, model) ms of a layer's modelled ops (the all-reduces left out)."""
    ops = [p for p in points if p.layer == layer and p.split != "not_modelled"]
    return sum(p.measured_ms for p in ops), sum(p.model_ms for p in ops)


def markdown_table(points: list[Point]) -> str:
    """The comparison as the markdown table of docs/gpu.md."""
    lines = ["| row | split | published ms | model ms | error |", "|---|---|---:|---:|---:|"]
    for p in points:
        model = "—" if p.split == "not_modelled" else f"{p.model_ms:.4g}"
        err = "not modelled" if p.split == "not_modelled" else f"{p.error:+.1%}"
        lines.append(f"| `{p.id}` | {p.split} | {p.measured_ms:.4g} | {model} | {err} |")
    for layer in LAYERS:
        pub, mod = layer_totals(points, layer)
        lines.append(f"| **{layer}, modelled ops** | | {pub:.4g} | {mod:.4g} | {(mod - pub) / pub:+.1%} |")
    return "\n".join(lines)


def main() -> None:
    print(markdown_table(load()))


if __name__ == "__main__":
    main()
