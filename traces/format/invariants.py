"""What each training method guarantees about its trace, checked as iterations are read (numpy only).

- dsg: every selected layer keeps exactly ``ceil((1 − γ)·n)`` outputs per row (without threshold
  sharing); the block output (BN output after the second mask) is non-zero only where selected —
  it equals the selection except where BN's output is exactly 0 (a channel whose batch values are
  all 0 has zero mean and variance); dY at the GEMM output lies within the selection mask.
- dst: the weight mask equals ``|W| > t`` (up to the float16 rounding of the stored weights);
  with the collapse rule on, no layer keeps 1 % or less; every threshold is finite (the logged
  minimum and maximum, and the stored threshold vector).
- mlevel: level masks are nested; the frozen core (its weights, the layer's bias and its BN's
  affine parameters) does not change while a denser level grows.
- nm: every pruned layer's weight mask is N:M along ``Kr`` (``traces.format.structured``'s convention)
  and, with ``transposable``, along each group's output channels too; its non-zero count never
  exceeds ``n`` per group. Synthetic traces made with ``structured`` N:M masks are held to the same.
- set, rigl, topkast: every masked layer keeps exactly its allocated count (``params.kept``) in
  every iteration; snfs: the masked layers together keep the allocated total (it moves weights
  between layers); gmp: never fewer than the final count; topkast: the forward set lies inside
  the set that takes gradients (``w ⊆ dw_needed``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import bits, structured
from .layer import LayerSpec

CONV_KINDS = ("conv2d", "conv3d", "conv_transpose")  # channels first: (K, *spatial) outputs

Problems = list[str]


class Checker:
    """Base: no invariants (dense)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def __call__(self, trace: Any, it: Any) -> Problems:
        return []


class DSGChecker(Checker):
    def __call__(self, trace: Any, it: Any) -> Problems:
        problems: Problems = []
        gamma, shared = float(self.params["gamma"]), bool(self.params.get("share_threshold"))
        double = self.params.get("masks", "double") == "double"  # single mask: BN output not re-masked
        for name in self.params.get("layers", {}):
            li = trace.layer_index(name)
            spec: LayerSpec = trace.layers[li]
            n_out = spec.y_shape[0] if spec.kind in CONV_KINDS else spec.y_shape[-1]
            kept = math.ceil((1 - gamma) * n_out - 1e-9)
            rows = it.batch * spec.rows_per_sample
            sel, out, dy = it.count(li, "y_sel"), it.count(li, "y_out"), it.count(li, "dy")
            if sel is None:
                problems.append(f"counts[{name}, y_sel]: missing for a DSG layer")
                continue
            if not shared and sel != rows * kept:
                problems.append(f"counts[{name}, y_sel]: {sel} selected, expected {rows} rows × {kept} kept")
            if double and out is not None and out > sel:
                problems.append(f"counts[{name}, y_out]: block output has {out} non-zeros, more than "
                                f"the {sel} selected")
            if dy is not None and dy > sel:
                problems.append(f"counts[{name}, dy]: {dy} non-zeros exceed the {sel} selected outputs")
            if it.has_masks:
                problems += self._masks(it, li, spec, kept, shared, double)
        return problems

    @staticmethod
    def _masks(it: Any, li: int, spec: LayerSpec, kept: int, shared: bool, double: bool = True) -> Problems:
        sel = it.mask(li, "y_sel")
        rows = np.moveaxis(sel, 1, -1).reshape(-1, sel.shape[1]) if spec.kind in CONV_KINDS \
            else sel.reshape(-1, sel.shape[-1])
        out: Problems = []
        per_row = rows.sum(axis=1)
        if not shared and not (per_row == kept).all():
            out.append(f"L{li}.y_sel: rows keep {per_row.min()}..{per_row.max()} outputs, expected {kept}")
        y_out, dy = it.mask(li, "y_out"), it.mask(li, "dy")
        if double and y_out is not None and (y_out & ~sel).any():
            out.append(f"L{li}.y_out: {int((y_out & ~sel).sum())} block-output non-zeros outside the "
                       "selection (the second mask of double-mask selection is missing)")
        if dy is not None and (dy & ~sel).any():
            out.append(f"L{li}.dy: {int((dy & ~sel).sum())} gradient non-zeros outside the selection")
        return out


class DSTChecker(Checker):
    def __call__(self, trace: Any, it: Any) -> Problems:
        problems: Problems = []
        ratio = float(self.params.get("collapse_ratio", 0.01))
        for name in self.params.get("layers", []):
            li = trace.layer_index(name)
            spec = trace.layers[li]
            kept = it.count(li, "w")
            stats = it.layer_stats(li)
            for key in ("threshold_min", "threshold_max", "threshold_mean"):
                if key in stats and not math.isfinite(float(stats[key])):
                    problems.append(f"meta.layer_stats.{name}.{key}: {stats[key]} is not finite; "
                                    "thresholds must stay finite (lower alpha or the learning rate)")
            if self.params.get("collapse_reset") and kept is not None and kept <= ratio * spec.numel("w", 1):
                problems.append(f"counts[{name}, w]: {kept} kept weights, at or below the collapse "
                                f"ratio {ratio} that resets thresholds")
            if not it.has_masks:
                continue
            t, stored, mask = it.array(li, "threshold"), it.weights(li), it.mask(li, "w")
            if t is not None and not np.isfinite(t).all():
                problems.append(f"L{li}.threshold: {int((~np.isfinite(t)).sum())} non-finite threshold(s) "
                                f"(first {t[~np.isfinite(t)].flat[0]}); thresholds must stay finite")
                continue
            if t is None or stored is None or mask is None:
                continue
            w = np.abs(stored[0].astype(np.float32))
            thr = t.astype(np.float32).reshape(-1, *([1] * (w.ndim - 1)))
            expected = w > thr
            # float16 storage moves |W| by at most 2**-11 relative (+ subnormal spacing)
            near = np.abs(w - thr) <= np.maximum(np.abs(thr), w) * 2.0**-10 + 2.0**-24
            bad = (mask != expected) & ~near
            if bad.any():
                problems.append(f"L{li}.w: weight mask differs from |W| > t at {int(bad.sum())} positions")
        return problems


class MultiLevelChecker(Checker):
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.core_hash: dict[tuple[str, int], str] = {}
        self.core_values: dict[tuple[str, int], np.ndarray] = {}

    def __call__(self, trace: Any, it: Any) -> Problems:
        problems: Problems = []
        for name in self.params.get("layers", []):
            li = trace.layer_index(name)
            spec = trace.layers[li]
            stats = it.layer_stats(li)
            stage = int(stats.get("stage", 0))
            if stage > 0 and "core_hash" in stats:
                seen = self.core_hash.setdefault((name, stage), stats["core_hash"])
                if seen != stats["core_hash"]:
                    problems.append(f"meta.layer_stats.{name}.core_hash: the frozen core (weights, bias, "
                                    f"BN affine) changed during growth of level {stage}")
            if not it.has_masks:
                continue
            levels = []
            while (packed := it.array(li, f"level{len(levels)}")) is not None:
                levels.append(bits.unpack(packed, spec.w_shape))
            for i in range(len(levels) - 1):
                if (levels[i] & ~levels[i + 1]).any():
                    problems.append(f"L{li}.m_level{i}: not a subset of level {i + 1}")
            stored = it.weights(li)
            if stage > 0 and len(levels) >= stage and stored is not None:
                core = levels[stage - 1]
                values = stored[0][core]
                first = self.core_values.setdefault((name, stage), values)
                if not np.array_equal(first, values):
                    problems.append(f"L{li}.weight: core weights of level {stage - 1} changed while "
                                    f"level {stage} grew")
        return problems


class NMChecker(Checker):
    """N:M weight masks (method nm; synthetic traces with ``structured`` params)."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        nm = params.get("structured", params)  # synthetic traces keep N:M under "structured"
        self.active = "n" in nm and "m" in nm
        self.n, self.m = int(nm.get("n", 2)), int(nm.get("m", 4))
        self.transposable = bool(nm.get("transposable", False))
        self.grouping = str(nm.get("grouping", "kr"))

    def __call__(self, trace: Any, it: Any) -> Problems:
        if not self.active:
            return []
        problems: Problems = []
        n, m = self.n, self.m
        names = self.params.get("layers", [s.name for s in trace.layers if s.has_weight])
        for name in names:
            li = trace.layer_index(name)
            spec: LayerSpec = trace.layers[li]
            k_out, kr = spec.w_shape[0], spec.numel("w", 1) // spec.w_shape[0]
            limit = k_out * math.ceil(kr / m) * n
            kept = it.count(li, "w")
            if kept is not None and kept > limit:
                problems.append(f"counts[{name}, w]: {kept} kept weights, more than {n} in each of the "
                                f"{k_out}×{math.ceil(kr / m)} groups of {m} allows ({limit})")
            if not it.has_masks or (w := it.mask(li, "w")) is None:
                continue
            counts = structured.group_counts(structured.grouped_matrix(w, self.grouping), m)
            if (counts > n).any():
                r, g = np.argwhere(counts > n)[0]
                problems.append(f"L{li}.w: layer {name}: {int((counts > n).sum())} of {counts.size} groups "
                                f"of {m} along Kr have more than {n} non-zeros (first: output {r}, "
                                f"Kr {g * m}..{g * m + m - 1} keeps {counts[r, g]}); not {n}:{m}")
            if self.transposable and not structured.backward_data_nm(w, n, m, spec.groups):
                problems.append(f"L{li}.w: layer {name}: not {n}:{m} along the output channels "
                                "(transposable masks are N:M in both directions)")
        return problems


class BaselineChecker(Checker):
    """Weight-mask baselines: allocated weight counts, and Top-KAST's A ⊆ B."""

    def __init__(self, params: dict[str, Any], method: str) -> None:
        super().__init__(params)
        self.method = method
        self.kept: dict[str, int] = {k: int(v) for k, v in (params.get("kept") or {}).items()}

    def __call__(self, trace: Any, it: Any) -> Problems:
        problems: Problems = []
        counts = {name: it.count(trace.layer_index(name), "w") for name in self.kept}
        if any(c is None for c in counts.values()):
            return [f"counts[w]: missing for a {self.method} layer"]
        if self.method == "snfs":
            total, want = sum(counts.values()), sum(self.kept.values())
            if total != want:
                problems.append(f"counts[w]: the masked layers keep {total} weights in total, "
                                f"expected the allocated {want} (snfs moves weights, never adds)")
        for name, want in self.kept.items():
            got = counts[name]
            if self.method in ("set", "rigl", "topkast") and got != want:
                problems.append(f"counts[{name}, w]: {got} kept weights, expected the allocated {want}")
            if self.method == "gmp" and got < want:
                problems.append(f"counts[{name}, w]: {got} kept weights, below the final {want}")
            if self.method == "topkast" and it.has_masks:
                li = trace.layer_index(name)
                w, need = it.mask(li, "w"), it.mask(li, "dw_needed")
                if w is not None and need is not None and (w & ~need).any():
                    problems.append(f"L{li}.w: layer {name}: {int((w & ~need).sum())} forward weights "
                                    "outside the backward set (dw_needed)")
        return problems


CHECKERS = {"dsg": DSGChecker, "dst": DSTChecker, "mlevel": MultiLevelChecker, "nm": NMChecker,
            "synthetic": NMChecker}


def checker_for(manifest: dict[str, Any]) -> Checker:
    """The invariant checker of a trace's method (a no-op for dense or unknown methods)."""
    method = manifest.get("method", {})
    name = method.get("name")
    if name in ("set", "rigl", "snfs", "gmp", "topkast"):
        return BaselineChecker(method.get("params", {}) or {}, name)
    return CHECKERS.get(name, Checker)(method.get("params", {}) or {})
