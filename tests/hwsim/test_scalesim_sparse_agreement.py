"""N:M weight sparsity: agreement with SCALE-Sim v3 (``[sparsity]``, layer-wise N:M, CALC mode).

The reference numbers come from scalesim 3.0.0 itself (``make scalesim-sparse``,
scripts/scalesim_reference.py) on tests/data/scalesim/sparse/: two arrays, ws/os/is, conv and GEMM
layers whose K is or is not a multiple of M and of the array rows, N:M 1:2, 1:3, 1:4, 2:4, 1:8,
2:8, 4:8. Here the same topologies become synthetic traces whose weight masks are random N:M masks
(exactly ``min(n, group length)`` kept per group along Kr; SCALE-Sim keeps the first n of every m:
its counts do not depend on where the kept values sit), the cfg is imported with the layer's N:M,
and every layer's Total Cycles, SRAM reads and filter metadata must match exactly.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

import archs
import traces
from archs.scalesim import topology_nm
from hwsim.npu.structured import compressed_k, is_nm, nm_compress
from hwsim.npu.tiles import Features
from hwsim.simulate import simulate
from traces.format import bits
from traces.format.manifest import TENSOR_INDEX, TENSORS, new_manifest
from traces.format.structured import forward_nm
from traces.format.writer import TraceWriter
from traces.synth import read_scalesim_topology

DATA = Path(__file__).resolve().parents[1] / "data" / "scalesim"
SPARSE = DATA / "sparse"
TOPOLOGIES = ("conv_layers_nm", "gemm_layers_nm")


def reference() -> list[dict[str, str]]:
    lines = [ln for ln in (DATA / "sparse_reference.csv").read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def nm_mask(rng: np.random.Generator, shape: tuple[int, ...], n: int, m: int) -> np.ndarray:
    """A random weight mask with exactly ``min(n, group length)`` non-zeros in every group of ``m``
    consecutive elements along Kr (the flattening after the output channel)."""
    rows, kr = shape[0], int(np.prod(shape[1:]))
    groups = -(-kr // m)
    keys = rng.random((rows, groups, m))
    pos = np.arange(groups * m).reshape(groups, m)
    keys = np.where(pos[None] < kr, keys, np.inf)  # padding of a short last group ranks last
    rank = np.argsort(np.argsort(keys, axis=2), axis=2)
    keep = (rank < n) & (pos[None] < kr)
    return keep.reshape(rows, -1)[:, :kr].reshape(shape)


def write_nm_trace(topology: Path, path: Path, seed: int = 0) -> Path:
    """A one-iteration trace of a SCALE-Sim topology with dense activations and N:M weights."""
    nm = topology_nm(topology)
    stripped = path.parent / f"{topology.stem}_dense.csv"  # read_scalesim_topology: no Sparsity column
    stripped.write_text("".join(",".join(c for c in line.split(",") if ":" not in c) + "\n"
                                for line in topology.read_text().splitlines()))
    layers = read_scalesim_topology(stripped)
    rng = np.random.default_rng(seed)
    writer = TraceWriter(path)
    params = {"nm": {k: list(v) for k, v in nm.items()}}
    manifest = new_manifest(layers, model={"name": topology.stem, "class": "synthetic"},
                            method={"name": "synthetic", "params": params},
                            dataset={"name": "synthetic"}, seed=seed, batch_size=1,
                            schedule={"every": 1, "mask_samples": None, "weights": False})
    writer.write_manifest(manifest)
    counts = np.full((len(layers), len(TENSORS)), -1, dtype=np.int64)
    masks = {}
    for li, spec in enumerate(layers):
        n, m = nm[spec.name]
        for t in ("x", "w", "dy"):
            shape = spec.tensor_shape(t, 1)
            mk = nm_mask(rng, shape, n, m) if t == "w" else np.ones(shape, bool)
            masks[(li, t)] = bits.pack(mk)
            counts[li, TENSOR_INDEX[t]] = int(mk.sum())
        counts[li, TENSOR_INDEX["y"]] = spec.numel("y", 1)
    writer.write_iteration(0, {"batch": 1, "reasons": ["synthetic"]}, counts, masks)
    manifest["complete"], manifest["iterations"] = True, 1
    writer.write_manifest(manifest)
    return path


@pytest.fixture(scope="module")
def traces_by_topology(tmp_path_factory):
    return {t: write_nm_trace(SPARSE / f"{t}.csv", tmp_path_factory.mktemp(t) / "t") for t in TOPOLOGIES}


def test_reference_covers_the_required_cases():
    rows = reference()
    assert {r["dataflow"] for r in rows} == {"ws", "os", "is"}
    assert len({(r["rows"], r["cols"]) for r in rows}) == 2
    assert {r["kind"] for r in rows} == {"conv", "gemm"}
    assert {"1:4", "2:4"} <= {r["nm"] for r in rows} and len({r["nm"] for r in rows}) >= 5
    assert all(r["bandwidth_mode"] == "CALC" and r["sparse_rep"] == "ellpack_block" for r in rows)
    assert len(rows) == 2 * 3 * 13


def test_the_synthetic_masks_are_nm(traces_by_topology):
    for topo, path in traces_by_topology.items():
        trace = traces.load(path)
        nm = topology_nm(SPARSE / f"{topo}.csv")
        for it in trace:
            for li, spec in enumerate(trace.layers):
                n, m = nm[spec.name]
                w = it.mask(li, "w")
                assert forward_nm(w, n, m), spec.name
                kr = w[0].size  # exactly min(n, group length) kept per group
                assert w.sum() == w.shape[0] * ((kr // m) * n + min(n, kr % m)), spec.name


@pytest.mark.parametrize("config", sorted(p.stem for p in SPARSE.glob("*.cfg")))
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_nm_cycles_reads_and_metadata_match_scalesim(traces_by_topology, config, dataflow):
    expected = {r["layer"]: r for r in reference() if r["config"] == config and r["dataflow"] == dataflow}
    got = {}
    for topo, path in traces_by_topology.items():
        nm_by_layer = topology_nm(SPARSE / f"{topo}.csv")
        for nm in sorted(set(nm_by_layer.values())):
            arch = archs.from_scalesim_cfg(SPARSE / f"{config}.cfg", nm=nm)
            df = simulate(path, arch, dataflow=dataflow, passes=["forward"]).to_frame()
            got.update({row.layer: row for row in df.itertuples() if nm_by_layer[row.layer] == nm})
    assert set(got) == set(expected)
    for layer, ref in expected.items():
        row = got[layer]
        assert row.gemm_cycles == int(ref["total_cycles"]), layer
        assert row.ifmap_sram_a_read_bytes == float(ref["sram_ifmap_reads_raw"]), layer
        assert row.filter_sram_b_read_bytes == int(ref["sram_filter_reads"]), layer
        assert row.stall_cycles == 0 == int(ref["stall_cycles"])
        # SCALE-Sim's metadata: storage in 32-bit words (compute/compression.py); hwsim: bytes
        # written into the filter SRAM (once: the compressed filter stays resident)
        assert row.filter_sram_b_metadata_write_bytes == 4 * float(ref["filter_metadata_storage"]), layer
        if dataflow == "ws":  # ws reads the stationary filter once: reads = storage
            assert row.filter_sram_b_metadata_read_bytes == 4 * float(ref["filter_metadata_storage"]), layer


def test_sparsity_section_imports_the_structured_feature():
    a = archs.from_scalesim_cfg(SPARSE / "array_16x16_nm.cfg", nm="2:8")
    s = a.sparse.structured
    assert (s.n, s.m, s.operand, s.metadata_bits_per_nonzero, s.ws_input_rereads) == (2, 8, "b", 3, True)
    (fmt,) = a.sparse.formats
    assert (fmt.level, fmt.operand, fmt.format, fmt.metadata_bits) == ("filter_sram", "b", "ellpack_block", 3)
    assert "2:8 filter sparsity" in a.description
    one = archs.load(SPARSE / "array_16x16_nm.cfg")  # SCALE-Sim's default without a Sparsity column
    assert (one.sparse.structured.n, one.sparse.structured.m) == (1, 1)
    dense = archs.from_scalesim_cfg(DATA / "array_16x16_calc.cfg")
    assert dense.sparse.structured is None and dense.sparse.formats == ()


def test_bad_nm_is_a_config_error():
    with pytest.raises(archs.ConfigError) as e:
        archs.from_scalesim_cfg(SPARSE / "array_16x16_nm.cfg", nm="3:8")
    assert any("n must divide m" in p for p in e.value.problems)
    with pytest.raises(archs.ConfigError):
        archs.from_scalesim_cfg(DATA / "array_16x16_calc.cfg", nm="2:4")  # no [sparsity] support


def test_topology_nm_reads_the_sparsity_column():
    assert topology_nm(SPARSE / "gemm_layers_nm.csv")["gemm_33x17x65_1of4"] == (1, 4)
    assert set(topology_nm(DATA / "gemm_layers.csv").values()) == {(1, 1)}


def test_compression_counts():
    b = np.zeros((10, 3), bool)  # K = 10, 2:4: groups [0..3], [4..7], [8, 9]
    b[[0, 2, 5, 6, 9], 0] = True
    b[[1, 4], 1] = True  # column 1 ends early
    b[[0, 1, 4, 7, 8], 2] = True
    assert is_nm(b, 2, 4) and not is_nm(b, 1, 4)
    assert compressed_k(b, 2, 4) == 5  # column 0: 2 + 2 + 1 slots; trailing empty slots dropped
    a = np.eye(4, 10, dtype=bool)
    a_c, b_c = nm_compress(a, b, 2, 4)
    assert b_c.shape == (5, 3) and b_c.sum() == b.sum()
    assert b_c[:, 1].tolist() == [True, False, True, False, False]
    assert a_c.shape == (4, 5) and a_c[0, 0] and a_c[2, 1]  # slot 1 of column 0 is row 2


def test_hand_case_2of4_filter_on_a_4x4_array(tmp_path):
    """A 2:4 GEMM, M = 6, K = 16, N = 4, on a 4×4 ws array: K' = 8, so 2 row folds of
    2·4 + 4 + 6 − 2 = 16 cycles, Total Cycles 2·16 − 1 = 31 (dense: 4 folds, 63); filter reads
    K'·N = 32; ifmap reads M·K'·ceil(N/cols)·m/n = 6·8·1·2 = 96; metadata 32 slots × 2 bits = 8 B.
    (scalesim 3.0.0 on this cfg and layer: 31 cycles, 96 and 32 reads, 2 metadata words of 4 B.)"""
    cfg = (SPARSE / "array_16x16_nm.cfg").read_text().replace("ArrayHeight : 16", "ArrayHeight : 4")
    (tmp_path / "a.cfg").write_text(cfg.replace("ArrayWidth : 16", "ArrayWidth : 4"))
    (tmp_path / "g.csv").write_text("Layer name, M, N, K, Sparsity,\ng, 6, 4, 16, 2:4,\n")
    trace = write_nm_trace(tmp_path / "g.csv", tmp_path / "t")
    row = simulate(trace, archs.from_scalesim_cfg(tmp_path / "a.cfg", nm="2:4"), dataflow="ws",
                   passes=["forward"]).to_frame().iloc[0]
    assert row.gemm_cycles == 2 * (2 * 4 + 4 + 6 - 2) - 1 == 31
    assert row.dense_gemm_cycles == 4 * 16 - 1
    assert row.filter_sram_b_read_bytes == 32 and row.ifmap_sram_a_read_bytes == 96
    assert row.filter_sram_b_metadata_read_bytes == 32 * math.ceil(math.log2(4)) / 8


def test_features_of_a_sparsity_import_read_the_masks():
    """The known issue: a [sparsity] import declared a format and no action, so Features.of saw a
    dense machine and the tiles never read the masks (2× SCALE-Sim's filter reads at 2:4)."""
    f = Features.of(archs.from_scalesim_cfg(SPARSE / "array_8x32_nm.cfg", nm="1:4"))
    assert not f.dense and f.nm == (1, 4) and f.input_rereads == 4
    assert Features.of(archs.from_scalesim_cfg(DATA / "array_8x32_calc.cfg")).dense


def test_a_mask_that_is_not_nm_runs_uncompressed(tmp_path):
    """The machine compresses only what is N:M: a dense weight on a 2:4 machine costs dense cycles."""
    (tmp_path / "g.csv").write_text("Layer name, M, N, K,\ng, 6, 4, 16,\n")  # 1:1 weights: dense
    trace = write_nm_trace(tmp_path / "g.csv", tmp_path / "t")
    cfg = (SPARSE / "array_16x16_nm.cfg").read_text().replace("ArrayHeight : 16", "ArrayHeight : 4")
    (tmp_path / "a.cfg").write_text(cfg.replace("ArrayWidth : 16", "ArrayWidth : 4"))
    row = simulate(trace, archs.from_scalesim_cfg(tmp_path / "a.cfg", nm="2:4"), dataflow="ws",
                   passes=["forward"]).to_frame().iloc[0]
    assert row.gemm_cycles == row.dense_gemm_cycles == 4 * 16 - 1
