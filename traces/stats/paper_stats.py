"""Each paper's own accounting, recomputed from a trace (numpy + pandas).

- DSG (arXiv 1810.00859): MACs only. Forward of a selected layer ``nnz(y_sel)·Kr`` plus the DRS
  overhead ``rows·K·k``; backward-data ``nnz(dY)·Kr``; backward-weight counted **dense**, as the
  paper does, with the sparse alternative (effectual ``x ∧ dY``, exact on mask iterations)
  beside it. Training reduction = 3 × dense / (fwd + bwd-data + bwd-weight); inference =
  dense forward / DSG forward. That is the **paper's convention**, which calls the projection
  additions negligible; beside it, ``*_with_overheads`` columns count every operation DRS adds
  as one op each, next to the MACs: the projection additions ``(rows + K)·d·k`` and the
  selection compares (see traces/methods/dsg.py). Oracle and random selection log no DRS cost.
  Training memory = weights + every layer's stashed input activations, dense against
  zero-value compressed (non-zeros + a 1-bit mask) plus the selection masks; inference
  memory = weights + the largest layer's activations.
- DST (arXiv 2005.06870): the remaining-weight ratio ``nnz(M)/numel(M)`` per layer and for the
  model, every iteration.
- Multi-level (arXiv 2112.10930): weights and FLOPs (2 per weight-MAC) per sample for every
  level and every reroute point (the first r layers at the densest level, the rest sparsest).
- The weight-mask baselines (SET, RigL, SNFS, GMP, Top-KAST): weight density, the fraction of
  the weight gradient each needs, and mask flips, per mask iteration and layer.
- N:M (SR-STE, arXiv 2102.04010), and for every trace: the fraction of weight groups that satisfy
  N:M per layer, along ``Kr`` (forward) and along output channels (backward-data), on every mask
  iteration; N:M from the method's parameters (nm, or a structured synthetic trace), else 2:4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..format import bits, structured
from ..format.manifest import TENSOR_INDEX
from ..format.reader import Trace
from .accounting import backward_weight_effectual

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}


def _bytes(trace: Trace, kind: str) -> int:
    return DTYPE_BYTES.get(trace.manifest["dtypes"].get(kind, "float32"), 4)


def dsg_stats(trace: Trace) -> pd.DataFrame:
    """Per iteration: DSG's training/inference MACs and memory against dense, the paper's way."""
    act_b, w_b = _bytes(trace, "activation"), _bytes(trace, "weight")
    weights_bytes = sum(s.numel("w", 1) for s in trace.layers) * w_b
    rows = []
    for it in trace:
        dense = {"fwd": 0, "bwd_data": 0, "bwd_weight": 0}
        dsg = {"fwd": 0, "bwd_data": 0, "bwd_weight": 0, "drs": 0, "proj_adds": 0, "select": 0}
        mem_dense = mem_dsg = 0
        act_dense, act_dsg = [], []
        sparse_wgrad: int | None = 0 if it.has_masks and it.mask_batch == it.batch else None
        for li, s in enumerate(trace.layers):
            algo = s.gemm("forward", it.batch).macs
            kr = s.reduction
            for k in dense:
                dense[k] += algo
            sel = it.count(li, "y_sel")
            stats = it.layer_stats(li)
            if sel is not None:
                dsg["fwd"] += sel * kr
                dsg["drs"] += int(stats.get("drs_macs", 0))
                dsg["proj_adds"] += int(stats.get("drs_proj_adds", 0))
                dsg["select"] += int(stats.get("selection_compares", 0))
            else:
                dsg["fwd"] += algo
            dy = it.count(li, "dy")
            dsg["bwd_data"] += dy * kr if (dy is not None and sel is not None) else algo
            dsg["bwd_weight"] += algo  # the paper counts the weight gradient dense
            if sparse_wgrad is not None:
                x, d = it.mask(li, "x"), it.mask(li, "dy")
                sparse_wgrad = None if x is None or d is None else \
                    sparse_wgrad + backward_weight_effectual(s, x, d, it.mask(li, "dw_needed"))
            x_numel, x_nnz = s.numel("x", it.batch), it.counts[li, TENSOR_INDEX["x"]]
            act_dense.append(x_numel * act_b)
            act_dsg.append(x_nnz * act_b + bits.packed_nbytes(x_numel))  # ZVC: values + 1-bit mask
            mem_dense += x_numel * act_b
            sel_mask_bytes = bits.packed_nbytes(s.numel("y_sel", it.batch)) if sel is not None else 0
            mem_dsg += act_dsg[-1] + sel_mask_bytes
        dense_train = sum(dense.values())
        dsg_fwd = dsg["fwd"] + dsg["drs"]
        dsg_train = dsg_fwd + dsg["bwd_data"] + dsg["bwd_weight"]
        overheads = dsg["proj_adds"] + dsg["select"]
        row = {"iteration": it.index, "batch": it.batch,
               "dense_training_macs": dense_train, "dsg_forward_macs": dsg["fwd"],
               "drs_overhead_macs": dsg["drs"],
               "dsg_backward_data_macs": dsg["bwd_data"], "dsg_backward_weight_macs_dense": dsg["bwd_weight"],
               "dsg_training_macs": dsg_train, "training_mac_reduction": dense_train / dsg_train,
               "inference_mac_reduction": dense["fwd"] / dsg_fwd,
               "drs_projection_additions": dsg["proj_adds"], "selection_compares": dsg["select"],
               "training_reduction_with_overheads": dense_train / (dsg_train + overheads),
               "inference_reduction_with_overheads": dense["fwd"] / (dsg_fwd + overheads),
               "training_memory_dense_bytes": weights_bytes + mem_dense,
               "training_memory_dsg_bytes": weights_bytes + mem_dsg,
               "training_memory_reduction": (weights_bytes + mem_dense) / (weights_bytes + mem_dsg),
               "activation_memory_reduction": mem_dense / mem_dsg,
               "inference_memory_reduction":
                   (weights_bytes + max(act_dense)) / (weights_bytes + max(act_dsg))}
        if sparse_wgrad is not None:
            sparse_train = dsg_fwd + dsg["bwd_data"] + sparse_wgrad
            row |= {"dsg_backward_weight_macs_sparse": sparse_wgrad,
                    "training_mac_reduction_sparse_wgrad": dense_train / sparse_train}
        rows.append(row)
    return pd.DataFrame(rows)


def dst_stats(trace: Trace) -> pd.DataFrame:
    """Remaining-weight ratio per iteration, per layer and for the model (wide: one column each)."""
    counts, _ = trace.counts()
    w = counts[:, :, TENSOR_INDEX["w"]].astype(np.float64)  # (I, L)
    numel = np.array([s.numel("w", 1) for s in trace.layers], dtype=np.float64)
    df = pd.DataFrame(w / numel, columns=[s.name for s in trace.layers])
    df.insert(0, "iteration", trace.iterations)
    df["model"] = w.sum(axis=1) / numel.sum()
    return df


def mlevel_stats(trace: Trace) -> dict[str, pd.DataFrame]:
    """Weights and FLOPs per sample for every level and reroute point, with accuracies if recorded."""
    levels: list[list[np.ndarray]] = []
    with trace.iteration(trace.mask_iterations[-1]) as it:
        for li, s in enumerate(trace.layers):
            masks, i = [], 0
            while (packed := it.array(li, f"level{i}")) is not None:
                masks.append(bits.unpack(packed, s.w_shape))
                i += 1
            levels.append(masks)
    n_levels = min(len(m) for m in levels)
    if n_levels == 0:
        return {}
    per_sample = np.array([s.rows_per_sample for s in trace.layers])
    nnz = np.array([[int(levels[li][lv].sum()) for lv in range(n_levels)] for li in range(len(levels))])
    total_w = sum(s.numel("w", 1) for s in trace.layers)
    dense_flops = 2 * sum(s.numel("w", 1) * s.rows_per_sample for s in trace.layers)
    results = trace.manifest["method"].get("results", {})
    acc_level = {r["level"]: r["accuracy"] for r in results.get("levels", [])}
    acc_route = {r["reroute_after"]: r["accuracy"] for r in results.get("reroute", [])}
    lv_rows = [{"level": lv, "weights": int(nnz[:, lv].sum()),
                "weight_fraction": nnz[:, lv].sum() / total_w,
                "flops_per_sample": int(2 * (nnz[:, lv] * per_sample).sum()),
                "flop_fraction": 2 * (nnz[:, lv] * per_sample).sum() / dense_flops,
                "accuracy": acc_level.get(lv)} for lv in range(n_levels)]
    top, n_layers = n_levels - 1, len(levels)
    rr_rows = []
    for r in range(n_layers + 1):
        choice = np.array([top] * r + [0] * (n_layers - r))
        flops = int(2 * (nnz[np.arange(n_layers), choice] * per_sample).sum())
        rr_rows.append({"reroute_after": r, "flops_per_sample": flops, "flop_fraction": flops / dense_flops,
                        "accuracy": acc_route.get(r)})
    return {"levels": pd.DataFrame(lv_rows), "reroute": pd.DataFrame(rr_rows)}


def trace_nm(trace: Trace) -> tuple[int, int]:
    """The N:M ratio a trace was made with (method nm or a structured synthetic trace), else 2:4."""
    params = trace.manifest["method"].get("params") or {}
    nm = params.get("structured", params)
    return (int(nm["n"]), int(nm["m"])) if "n" in nm and "m" in nm else (2, 4)


def nm_stats(trace: Trace, n: int | None = None, m: int | None = None) -> pd.DataFrame:
    """Per mask iteration and layer: fractions of weight groups with at most ``n`` of ``m`` non-zeros.

    Columns: ``iteration, layer, n, m, groups`` (along Kr), ``forward_nm_fraction``,
    ``backward_data_nm_fraction`` (groups of ``m`` output channels, per conv group), ``density``.
    ``n, m`` default to :func:`trace_nm`.
    """
    dn, dm = trace_nm(trace)
    grouping = (trace.manifest["method"].get("params") or {}).get("grouping", "kr")
    n, m = dn if n is None else n, dm if m is None else m
    structured.check_nm(n, m)
    rows = []
    for it in trace.masks():
        for li, s in enumerate(trace.layers):
            w = it.mask(li, "w") if s.has_weight else None  # a matmul's B is no weight
            if w is None:
                continue
            if s.kind == "conv_transpose":  # W (Cin, Cout/g, *k): the forward reduces over Cin/g
                w = s.geometry.gemm_weight(s, w)
            mat = structured.weight_matrix(w)  # (Kout, Kr)
            fwd_mat = structured.grouped_matrix(w, grouping)  # the groups the method formed
            per = mat.shape[0] // s.groups
            back = np.concatenate([structured.group_counts(mat[g * per:(g + 1) * per].T, m).ravel()
                                   for g in range(s.groups)])
            fwd = structured.group_counts(fwd_mat, m)
            rows.append({"iteration": it.index, "layer": s.name, "n": n, "m": m, "groups": fwd.size,
                         "forward_nm_fraction": float((fwd <= n).mean()),
                         "backward_data_nm_fraction": float((back <= n).mean()),
                         "density": float(mat.mean())})
    return pd.DataFrame(rows)


BASELINES = ("set", "rigl", "snfs", "gmp", "topkast")


def baseline_stats(trace: Trace) -> pd.DataFrame:
    """Weight-mask baselines (SET, RigL, SNFS, GMP, Top-KAST), per mask iteration and layer: the
    weight density the GEMMs used, the fraction of weight-gradient entries the method needs
    (``dw_needed``; 1.0 where it reads a dense gradient), and the mask flips logged for that step.
    """
    rows = []
    for it in trace.masks():
        for li, s in enumerate(trace.layers):
            w = it.mask(li, "w") if s.has_weight else None  # a matmul's B is no weight
            if w is None:
                continue
            need = it.mask(li, "dw_needed")
            st = it.layer_stats(s.name)
            rows.append({"iteration": it.index, "layer": s.name, "weight_density": float(w.mean()),
                         "dw_needed_fraction": 1.0 if need is None else float(need.mean()),
                         "flips_on": st.get("flips_on"), "flips_off": st.get("flips_off"),
                         "mask_update": st.get("mask_update"), "dense_grad": st.get("dense_grad")})
    return pd.DataFrame(rows)


def paper_stats(trace: Trace) -> dict[str, pd.DataFrame]:
    """The accounting of the paper behind the trace's method (empty for dense)."""
    method = trace.manifest["method"]["name"]
    if method == "dsg":
        return {"dsg": dsg_stats(trace)}
    if method == "dst":
        return {"dst": dst_stats(trace)}
    if method == "mlevel":
        return mlevel_stats(trace)
    if method == "nm":
        return {"nm": nm_stats(trace)}
    if method in BASELINES:
        return {"baseline": baseline_stats(trace)}
    return {}
