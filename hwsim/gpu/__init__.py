"""GPU-like machines: thread-block tiles in waves over SMs, tensor cores, 2:4 structured sparsity,
unstructured sparse kernels and DSG's gathered GEMMs; non-GEMM work as memory-bound kernels.
See docs/gpu.md."""

from __future__ import annotations

from .replay import context, embedding_rows, layer_rows, vector_op_rows

__all__ = ["context", "embedding_rows", "layer_rows", "vector_op_rows"]
