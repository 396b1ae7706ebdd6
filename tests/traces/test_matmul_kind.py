"""Format 4's ``matmul`` layer kind: geometry from closed forms, checks, round trip, old versions."""

from __future__ import annotations

import json

import numpy as np
import pytest

import traces
from traces.format.digest import seal
from traces.format.layer import LayerSpec, update_owners
from traces.format.validate import validate

from .helpers import attention_layers, write_attention_trace


def test_gemm_dims_of_each_pass_are_the_closed_forms():
    """Q·Kᵀ with 2 heads, L = 6, d = 4 at batch 3: 3·2 = 6 GEMMs per pass; forward L×d×L,
    backward-data (dQ = dS·K) L×L×d, backward-weight (dKᵀ = Qᵀ·dS) d×L×L."""
    scores, context = attention_layers(seq=6, dim=4, heads=2)
    assert scores.check() == [] and context.check() == []
    passes = ("forward", "backward_data", "backward_weight")
    dims = [tuple(vars(scores.gemm(p, 3)).values()) for p in passes]
    assert dims == [(6, 4, 6, 6), (6, 6, 4, 6), (4, 6, 6, 6)]
    assert scores.gemm("forward", 3).macs == 3 * 2 * 6 * 4 * 6
    # P·V: P (2, 6, 6), V (2, 6, 4) -> (2, 6, 4)
    assert tuple(vars(context.gemm("forward", 1)).values()) == (6, 6, 4, 2)
    assert scores.macs_per_sample == 2 * 6 * 4 * 6
    # every tensor has a batch dimension, B included
    assert scores.tensor_shape("w", 3) == (3, 2, 4, 6) and scores.tensor_shape("dw_needed", 3) == (3, 2, 4, 6)
    assert scores.tensor_shape("x", 3) == (3, 2, 6, 4) and scores.tensor_shape("y_sel", 3) == (3, 2, 6, 6)
    assert scores.numel("w", 3) == 3 * 2 * 4 * 6 and all(scores.batched(t) for t in traces.TENSORS)
    assert not scores.has_weight


def test_a_matmul_without_batch_dims_and_a_broadcast_free_einsum():
    """Per sample (M, K)·(K, N): one group per sample."""
    spec = LayerSpec("mm", "matmul", "m", 0, "matmul", (5, 3), (3, 7), (5, 7))
    assert spec.check() == []
    assert tuple(vars(spec.gemm("backward_weight", 4)).values()) == (3, 5, 7, 4)


@pytest.mark.parametrize("change, message", [
    ({"groups": 3}, "groups: a matmul has one GEMM per batch-dimension index, 2"),
    ({"w_shape": (2, 5, 6)}, "w_shape: (2, 5, 6) does not fit A"),
    ({"w_shape": (3, 4, 6)}, "w_shape: (3, 4, 6) does not fit A"),
    ({"y_shape": (2, 6, 5)}, "y_shape: (2, 6, 5) != (2, 6, 6)"),
    ({"w_shape": (4, 6)}, "shapes: matmul needs A (*batch, M, K)"),
    ({"parameter": "fc.weight"}, "parameter: a matmul multiplies two activations"),
    ({"attention": {"call": "a", "role": "keys", "causal": True, "backend": "math"}}, "attention.role"),
    ({"attention": {"call": "a", "role": "scores", "causal": 1, "backend": "math"}}, "attention.causal"),
    ({"attention": {"call": "a", "role": "scores", "causal": True, "backend": "fast"}}, "attention.backend"),
    ({"attention": {"call": "a", "role": "scores"}}, "attention: expected null or an object with"),
])
def test_inconsistent_matmul_geometry_is_named(change, message):
    from dataclasses import replace

    scores = attention_layers(seq=6, dim=4, heads=2)[0]
    problems = replace(scores, **change).check()
    assert problems and problems[0].startswith(message), problems


def test_attention_belongs_to_matmul_layers_only():
    fc = LayerSpec("fc", "linear", "fc", 0, "Linear", (4,), (3, 4), (3,),
                   attention={"call": "a", "role": "scores", "causal": True, "backend": "math"})
    assert fc.check()[0].startswith("attention: only matmul layers")


def test_matmul_layers_own_no_update_and_share_no_weight():
    layers = [*attention_layers(6, 4, 2), LayerSpec("fc", "linear", "fc", 0, "Linear", (4,), (3, 4), (3,))]
    assert update_owners(layers) == [False, False, True]


def test_a_matmul_trace_round_trips_and_validates(tmp_path):
    written = write_attention_trace(tmp_path / "t", seq=6, dim=4, heads=2, batch=3)
    tr = traces.load(tmp_path / "t")
    assert tr.manifest["format_version"] == 5
    assert [s.kind for s in tr.layers] == ["matmul", "matmul"]
    assert tr.layers[0].attention == {"call": "attn", "role": "scores", "causal": True, "backend": "explicit"}
    assert tr.manifest["layers"][0]["gemm"]["forward"] == [6, 4, 6, 6]
    summary = validate(tr)
    assert (summary.layers, summary.iterations, summary.mask_iterations) == (2, 2, 2)
    with tr.iteration(1) as it:
        for li in (0, 1):
            for t in ("x", "w", "y_sel", "dy", "dx"):
                if t in written[1][li]:
                    assert np.array_equal(it.mask(li, t), written[1][li][t]), (li, t)
        assert it.mask(0, "w").shape == (3, 2, 4, 6)  # B has the batch dimension
        # the causal structure: L(L+1)/2 scores per head and sample
        assert it.count(0, "y_sel") == 3 * 2 * 6 * 7 // 2


def test_a_count_beyond_a_batched_operand_is_refused(tmp_path):
    """B's count is checked against its size for the whole batch (3·2·4·6 = 144), not per sample."""
    write_attention_trace(tmp_path / "t", seq=6, dim=4, heads=2, batch=3, n_iter=1)
    f = tmp_path / "t" / "iter-00000000.masks.npz"
    with np.load(f) as z:
        arrays = dict(z)
    arrays["counts"][0, traces.TENSORS.index("w")] = 145
    np.savez(f, **arrays)
    seal(tmp_path / "t")  # resealed: the check under test, not the file's digest, refuses it
    with pytest.raises(traces.TraceFormatError, match=r"counts\[attn.scores, w\]: found 145; expected -1 "
                                                      r"\(absent\) or 0..144"):
        traces.load(tmp_path / "t").iteration(0)


def test_older_format_versions_refuse_matmul_layers(tmp_path):
    write_attention_trace(tmp_path / "t", n_iter=1)
    manifest = tmp_path / "t" / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["format_version"] = 3
    del doc["layout"]["matmul_operands"], doc["files"]
    manifest.write_text(json.dumps(doc))
    with pytest.raises(traces.TraceFormatError, match=r"layers\[0\].kind: found 'matmul'; expected conv2d or "
                                                      r"linear layers without attention in a trace of "
                                                      r"format_version 3"):
        traces.load(tmp_path / "t")
    doc["format_version"] = 4
    manifest.write_text(json.dumps(doc))
    with pytest.raises(traces.TraceFormatError, match=r"layout\.matmul_operands: found None"):
        traces.load(tmp_path / "t")
