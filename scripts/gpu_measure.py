"""Measure dense, 2:4 (CUTLASS and cuSPARSELt) and unstructured (cuSPARSE CSR) GEMMs on this machine's
GPU and write them as rows of ``tests/data/gpu_published.csv`` (issue 24, point 5).

NOT YET RUN: no GPU was available when this script was written; its rows are not in the validation
set. On a machine with an A100 or H100 and a CUDA build of PyTorch (2.3 or newer, with cuSPARSELt for
the cuSPARSELt rows):

    python scripts/gpu_measure.py --out gpu_measured.csv          # ~2 minutes
    tail -n +2 gpu_measured.csv >> tests/data/gpu_published.csv   # then review and commit

Every row is one timing with CUDA events: ``--iters`` back-to-back launches of the same kernel after
``--warmup`` launches, the mean per launch, the median of ``--repeats`` such runs. Shapes are
``m × k × n`` as in the CSV: an ``nn.Linear(k, n)`` (weight ``n × k``) applied to ``m`` rows, FP16 (the
dense rows also in BF16: the card's FP16/BF16 clock ratio), no bias. 2:4 rows prune the weight to a
2:4 mask along ``k`` and compress it with
``to_sparse_semi_structured`` (``SparseSemiStructuredTensor._FORCE_CUTLASS`` selects the library) and
give the speedup over the dense linear timed in the same run. Unstructured rows store the weight as
CSR at each density and time ``torch.sparse.mm(W_csr, xᵀ)`` (cuSPARSE); the CSR weight is the sparse
operand ``a`` (``m`` = out features) in the CSV's convention (kind ``spmm_a``).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

# m (rows), k (in features), n (out features): square GEMMs, transformer projections and MLPs
SHAPES = [(m, k, n) for m in (2048, 8192) for k, n in ((4096, 4096), (4096, 11008), (11008, 4096))] + [
    (4096, 4096, 4096), (8192, 8192, 8192), (16384, 8192, 8192), (1024, 1024, 1024), (2048, 2048, 2048),
    (3072, 10240, 3072), (13008, 1024, 4096), (13008, 4096, 1024), (49152, 3072, 768), (49152, 768, 3072),
    (32768, 12288, 12288), (1, 4096, 4096), (8, 4096, 4096), (128, 4096, 4096), (512, 4096, 4096),
    (4096, 2048, 8192), (4096, 8192, 2048), (2048, 5120, 15360)]
DENSITIES = (0.5, 0.25, 0.125, 0.05)  # unstructured: fraction of the weight kept
CSR_SHAPES = [(4096, 4096, 4096), (8192, 8192, 8192), (2048, 4096, 11008), (2048, 11008, 4096)]
PRESETS = (("A100-SXM4-40GB", "gpu-a100"), ("A100-SXM4-80GB", "gpu-a100-80gb"),
           ("A100 80GB PCIe", "gpu-a100-80gb-pcie"), ("H100 80GB HBM3", "gpu-h100"),
           ("H100 PCIe", "gpu-h100-pcie"), ("H200", "gpu-h200"))
COLUMNS = ("id", "preset", "card_as_published", "group", "library", "dtype", "kind", "m", "k", "n", "density",
           "measured", "unit", "split", "convention", "source")


def preset_of(device_name: str) -> str:
    """The hwsim preset of a CUDA device name, or exit naming the card."""
    for key, preset in PRESETS:
        if key in device_name:
            return preset
    sys.exit(f"gpu_measure: no hwsim preset for {device_name!r}; add it to PRESETS with its card")


def time_ms(fn, warmup: int, iters: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean time per call of ``iters`` back-to-back calls, ms."""
    import torch

    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        stop.record()
        torch.cuda.synchronize()
        runs.append(start.elapsed_time(stop) / iters)
    return statistics.median(runs)


def mask_24(n: int, k: int):
    """A 2:4 mask along ``k`` of an ``n × k`` weight: two of every four kept, at random positions."""
    import torch

    scores = torch.rand(n, k // 4, 4, device="cuda")
    keep = scores.topk(2, dim=-1).indices
    mask = torch.zeros(n, k // 4, 4, dtype=torch.bool, device="cuda").scatter_(-1, keep, True)
    return mask.reshape(n, k)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    if not torch.cuda.is_available():
        sys.exit("gpu_measure: no CUDA device")
    name = torch.cuda.get_device_name()
    preset = preset_of(name)
    source = f"scripts/gpu_measure.py on {name}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    timing = (f"CUDA events, mean of {args.iters} back-to-back calls after {args.warmup} warm-up, median of "
              f"{args.repeats} runs")
    cusparselt = torch.backends.cusparselt.is_available()
    rows = []

    def row(id_: str, group: str, library: str, kind: str, m: int, k: int, n: int, density: float,
            measured: float, unit: str, convention: str, dtype: str = "fp16") -> None:
        rows.append(dict(zip(COLUMNS, (id_, preset, name, group, library, dtype, kind, m, k, n, density,
                                       f"{measured:.6g}", unit, "holdout", convention, source), strict=True)))

    torch.manual_seed(0)
    with torch.inference_mode():
        for m, k, n in SHAPES:
            x = torch.randn(m, k, dtype=torch.float16, device="cuda")
            w = torch.randn(n, k, dtype=torch.float16, device="cuda")
            dense = time_ms(lambda x=x, w=w: F.linear(x, w), args.warmup, args.iters, args.repeats)
            row(f"measured_dense_{m}x{k}x{n}", "dense", "cublas", "gemm", m, k, n, 1, dense, "ms",
                f"F.linear, no bias; {timing}")
            # the same GEMM on BF16 data: the card's FP16/BF16 clock ratio (gpu.fp16_clock_ratio)
            xb, wb = x.to(torch.bfloat16), w.to(torch.bfloat16)
            dense_bf16 = time_ms(lambda xb=xb, wb=wb: F.linear(xb, wb), args.warmup, args.iters, args.repeats)
            row(f"measured_dense_bf16_{m}x{k}x{n}", "dense", "cublas", "gemm", m, k, n, 1, dense_bf16, "ms",
                f"F.linear, no bias, BF16 copies of the FP16 operands; {timing}", dtype="bf16")
            if k % 64 or n % 32:  # the FP16 weight shapes semi-structured takes (torch pads the rows of x)
                continue
            w24 = w * mask_24(n, k)
            for library in ("cutlass", "cusparselt"):
                if library == "cusparselt" and not cusparselt:
                    continue
                SparseSemiStructuredTensor._FORCE_CUTLASS = library == "cutlass"
                ws = to_sparse_semi_structured(w24)
                sparse = time_ms(lambda x=x, ws=ws: F.linear(x, ws), args.warmup, args.iters, args.repeats)
                row(f"measured_{library}_{m}x{k}x{n}", "2:4", library, "speedup_24", m, k, n, 1,
                    dense / sparse, "x", f"F.linear dense over 2:4 (to_sparse_semi_structured), no bias, "
                    f"dense {dense:.4f} ms, 2:4 {sparse:.4f} ms; {timing}")
        for m, k, n in CSR_SHAPES:  # W (n × k) CSR times xᵀ (k × m): the CSV's spmm_a with rows n
            x = torch.randn(m, k, dtype=torch.float16, device="cuda")
            for density in DENSITIES:
                w = torch.randn(n, k, dtype=torch.float16, device="cuda")
                w = w * (torch.rand(n, k, device="cuda") < density)
                w_csr = w.to_sparse_csr()
                xt = x.t().contiguous()
                spmm = time_ms(lambda w_csr=w_csr, xt=xt: torch.sparse.mm(w_csr, xt), args.warmup,
                               args.iters, args.repeats)
                row(f"measured_cusparse_{density:g}_{n}x{k}x{m}", "unstructured", "cusparse", "spmm_a",
                    n, k, m, density, spmm, "ms",
                    f"torch.sparse.mm(W_csr, x.T) (cuSPARSE), CSR built before; {timing}")

    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
