"""Transformer kernels on the GPU model against published measurements: ``tests/data/gpu_transformer_
published.csv`` (fused attention and LayerNorm on A100 cards), and the per-op table of a GPT-3-sized
layer. ``python -m tests.hwsim.gpu.transformer_published`` prints both.

Every point keeps its source; ``split`` says whether a fitted constant of ``archs/gpu_presets.py``
(``AMPERE_FLASH_FORWARD_EFFICIENCY``, ``REDUCTION_BANDWIDTH_FRACTION``) was fitted on it (``fit``)
or not (``holdout``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import archs
from hwsim.gpu.attention import AttentionShape, attention_cost
from hwsim.gpu.batched import batched_gemm_cost
from hwsim.gpu.gemm import Operands
from hwsim.gpu.memory_bound import memory_bound_cost

CSV = Path(__file__).resolve().parents[2] / "data" / "gpu_transformer_published.csv"


@dataclass(frozen=True)
class Point:
    id: str
    preset: str
    kind: str  # flash_forward | forward | forward_backward
    split: str
    measured_ms: float
    model_ms: float

    @property
    def error(self) -> float:
        """Signed relative error of the model against the measurement."""
        return (self.model_ms - self.measured_ms) / self.measured_ms


def _ms(arch: archs.Architecture, cycles: int) -> float:
    return cycles / arch.clock_hz * 1e3


def model_ms(row: dict[str, str]) -> float:
    """The model's time for one published row, ms."""
    arch = archs.PRESETS[row["preset"]]
    if row["op"] == "attention":
        shape = AttentionShape(int(row["problems"]), int(row["seq_q"]), int(row["seq_k"]),
                               int(row["head_dim"]), row["causal"] == "1", key_offset=int(row["key_offset"]))
        return _ms(arch, attention_cost(arch, shape, "forward", fused=True).cycles)
    rows, width, eb = int(row["rows"]), int(row["width"]), float(row["element_bytes"])
    if row["op"] == "glu_mlp":
        return glu_mlp_ms(arch, rows, width, int(row["inner"]), row["activation"], row["kind"])
    passes = ["forward"] + (["backward_data"] if row["kind"] == "forward_backward" else [])
    return sum(_ms(arch, memory_bound_cost(arch, row["op"], p, rows * width, row=width,
                                           element_bytes=eb).cycles) for p in passes)


def glu_mlp_ms(arch: archs.Architecture, tokens: int, hidden: int, inner: int, act: str,
               pass_: str) -> float:
    """A gated MLP ``down(act(gate(x)) ∘ up(x))`` as PyTorch runs it unfused: forward three GEMMs, the
    activation and the product; backward each linear's two GEMMs (input and weight gradients), the
    product's and the activation's backward, and the sum of x's two gradients."""
    eb = arch.gpu.element_bits / 8
    ops = Operands(eb, eb, eb)
    m, h, i = tokens, hidden, inner

    def gemm(mm: int, k: int, n: int) -> float:
        return _ms(arch, batched_gemm_cost(arch, 1, mm, k, n, ops).cycles)

    def vec(kind: str, p: str, elements: int) -> float:
        return _ms(arch, memory_bound_cost(arch, kind, p, elements).cycles)

    if pass_ == "forward":
        return 2 * gemm(m, h, i) + gemm(m, i, h) + vec(act, "forward", m * i) + vec("mul", "forward", m * i)
    return (gemm(m, h, i) + gemm(i, m, h) + 2 * (gemm(m, i, h) + gemm(h, m, i))
            + vec("mul", "backward_data", m * i) + vec(act, "backward_data", m * i)
            + vec("add", "forward", m * h))


def load() -> list[Point]:
    """Every published row with the model's time beside it."""
    with CSV.open() as f:
        rows = list(csv.DictReader(f))
    return [Point(r["id"], r["preset"], f"{r['op']} {r['kind']}", r["split"], float(r["measured_ms"]),
                  model_ms(r)) for r in rows]


# -- a GPT-3-sized layer (Brown et al. 2020, Table 2.1: 175B, d_model 12288, 96 heads of 128, context 2048)
GPT3 = {"d_model": 12288, "heads": 96, "seq": 2048, "d_ff": 4 * 12288}


def gpt3_layer_ops(arch: archs.Architecture, batch: int = 1, fused: bool = True) -> dict[str, float]:
    """Forward time per op of one GPT-3 175B layer on ``arch`` for ``batch`` sequences, ms."""
    d, h, s, f = GPT3["d_model"], GPT3["heads"], GPT3["seq"], GPT3["d_ff"]
    tokens = batch * s
    eb = arch.gpu.element_bits / 8
    ops = Operands(eb, eb, eb)
    out: dict[str, float] = {}
    for name, (k, n) in {"qkv": (d, 3 * d), "proj": (d, d), "mlp_up": (d, f), "mlp_down": (f, d)}.items():
        out[name] = _ms(arch, batched_gemm_cost(arch, 1, tokens, k, n, ops).cycles)
    shape = AttentionShape(batch * h, s, s, d // h, causal=True)
    att = attention_cost(arch, shape, "forward", fused=fused)
    if fused:
        out["attention (fused)"] = _ms(arch, att.cycles)
    else:
        for name, cyc in att.kernels.items():
            out[name] = _ms(arch, cyc)
    ln = memory_bound_cost(arch, "layer_norm", "forward", tokens * d, row=d)
    out["layer_norm x2"] = 2 * _ms(arch, ln.cycles)
    out["gelu"] = _ms(arch, memory_bound_cost(arch, "gelu", "forward", tokens * f).cycles)
    out["residual add x2"] = 2 * _ms(arch, memory_bound_cost(arch, "add", "forward", tokens * d).cycles)
    return out


def main() -> None:
    pts = load()
    print(f"{'id':40s} {'preset':15s} {'kind':28s} {'split':8s} {'measured':>9s} {'model':>9s} {'error':>7s}")
    for p in pts:
        print(f"{p.id:40s} {p.preset:15s} {p.kind:28s} {p.split:8s} {p.measured_ms:9.4f} {p.model_ms:9.4f} "
              f"{p.error:+7.1%}")
    for fused in (True, False):
        a100 = archs.PRESETS["gpu-a100"]
        ops = gpt3_layer_ops(a100, fused=fused)
        path = "fused" if fused else "unfused"
        print(f"\nGPT-3 175B layer forward, batch 1 x 2048 tokens, gpu-a100, attention {path}:")
        for name, ms in ops.items():
            print(f"  {name:28s} {ms:8.3f} ms")
        print(f"  {'total':28s} {sum(ops.values()):8.3f} ms")


if __name__ == "__main__":
    main()
