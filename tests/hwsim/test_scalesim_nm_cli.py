"""SCALE-Sim 3.0.0 N:M as users feed it: its own topology (with the ``Sparsity`` column) through
``hwsim trace synth --scalesim-topology``, its ``[sparsity]`` cfg on the command line, and
``--mapping scalesim``: Total Cycles, SRAM reads and DRAM reads and writes per operand exactly as
SCALE-Sim counts them (``make scalesim-sparse``: tests/data/scalesim/sparse_reference.csv with
64 KiB SRAMs, tests/data/scalesim/sparse/dram/reference.csv with 1 KiB SRAMs, where its read
windows roll over and its ofmap buffer drains many times). A USER-mode cfg is refused in one line.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import archs
import traces
from hwsim.simulate import simulate
from traces.synth import read_scalesim_sparsity, read_scalesim_topology

DATA = Path(__file__).resolve().parents[1] / "data" / "scalesim"
SPARSE = DATA / "sparse"
TOPOLOGIES = {"conv": SPARSE / "conv_layers_nm.csv", "gemm": SPARSE / "gemm_layers_nm.csv"}
CONFIGS = [SPARSE / "array_16x16_nm.cfg", SPARSE / "array_8x32_nm.cfg",
           SPARSE / "dram" / "array_8x8_small_nm.cfg"]
HWSIM = [sys.executable, "-m", "hwsim.cli"]


def reference(cfg: Path) -> dict[tuple[str, str], dict[str, str]]:
    path = DATA / "sparse_reference.csv" if cfg.parent == SPARSE else cfg.parent / "reference.csv"
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    return {(r["dataflow"], r["layer"]): r for r in csv.DictReader(lines) if r["config"] == cfg.stem}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict[str, Path]:
    """The topologies as users turn them into traces: the CLI, nothing else."""
    out = {}
    for kind, topo in TOPOLOGIES.items():
        path = tmp_path_factory.mktemp(kind) / "t"
        done = subprocess.run([*HWSIM, "trace", "synth", "--scalesim-topology", str(topo),
                               "--out", str(path)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        out[kind] = path
    return out


def test_topology_with_sparsity_column_is_read():
    layers = read_scalesim_topology(TOPOLOGIES["gemm"])
    assert [s.name for s in layers][:2] == ["gemm_64x40x100_2of4", "gemm_33x17x65_1of4"]
    nm = read_scalesim_sparsity(TOPOLOGIES["conv"])
    assert nm["conv3x3_k180_2of4"] == (2, 4) and nm["conv3x3_k54_1of3"] == (1, 3)


def test_synth_records_each_layers_nm_and_draws_nm_weights(synth):
    tr = traces.load(synth["conv"])
    nm = read_scalesim_sparsity(TOPOLOGIES["conv"])
    assert {k: tuple(v) for k, v in tr.manifest["method"]["params"]["nm"].items()} == nm
    for it in tr:
        for li, spec in enumerate(tr.layers):
            n, m = nm[spec.name]
            w = it.mask(li, "w")
            kr = w[0].size  # exactly min(n, group length) kept per group of m along Kr
            assert w.sum() == w.shape[0] * ((kr // m) * n + min(n, kr % m)), spec.name


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_cycles_sram_and_dram_counts_match_scalesim(synth, cfg, dataflow):
    """What ``hwsim replay TRACE --arch CFG --dataflow DF --passes fwd --mapping scalesim`` computes
    (archs.load of the cfg: SCALE-Sim's 1:1 default, each layer compressed at its traced N:M)."""
    ref = reference(cfg)
    arch = archs.load(cfg)
    seen = 0
    for path in synth.values():
        df = simulate(path, arch, dataflow=dataflow, passes=["forward"], mapping="scalesim").to_frame()
        for row in df.to_dict("records"):
            r = ref[(dataflow, row["layer"])]
            assert row["structured_nm"] == r["nm"], row["layer"]
            got = (row["gemm_cycles"], row["ifmap_sram_a_read_bytes"], row["filter_sram_b_read_bytes"],
                   row["dram_a_read_bytes"], row["dram_b_read_bytes"], row["dram_c_write_bytes"])
            want = (int(r["total_cycles"]), float(r["sram_ifmap_reads_raw"]), int(r["sram_filter_reads"]),
                    int(r["dram_ifmap_reads"]), int(r["dram_filter_reads"]), int(r["dram_ofmap_writes"]))
            assert got == want, row["layer"]
            assert row["stall_cycles"] == 0
            if dataflow != "os":  # os: SCALE-Sim over-counts its ofmap SRAM writes (peer_simulators.md)
                assert row["ofmap_sram_c_write_bytes"] == int(r["sram_ofmap_writes"]), row["layer"]
            seen += 1
    assert seen == len(ref) // 3 == 13


def test_cli_replay_with_the_sparsity_cfg(synth, tmp_path):
    out = tmp_path / "r.csv"
    cfg = CONFIGS[2]
    done = subprocess.run([*HWSIM, "replay", str(synth["conv"]), "--arch", str(cfg), "--dataflow", "os",
                           "--passes", "fwd", "--mapping", "scalesim", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ref = reference(cfg)
    for row in csv.DictReader(out.open()):
        r = ref[("os", row["layer"])]
        assert float(row["dram_a_read_bytes"]) == int(r["dram_ifmap_reads"]), row["layer"]
        assert float(row["dram_c_write_bytes"]) == int(r["dram_ofmap_writes"]), row["layer"]
        assert int(row["gemm_cycles"]) == int(r["total_cycles"]), row["layer"]


def test_user_bandwidth_cfg_is_refused_in_one_line(synth):
    cfg = Path(__file__).resolve().parents[2] / "bench" / "array_32x32_user.cfg"
    done = subprocess.run([*HWSIM, "replay", str(synth["conv"]), "--arch", str(cfg), "--passes", "fwd"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "InterfaceBandwidth: USER" in done.stderr


RESNET = DATA / "resnet18"


@pytest.fixture(scope="module")
def resnet_nm_trace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("r18nm") / "t"
    topology = RESNET / "conv_layers_2of4.csv"
    cmd = [*HWSIM, "trace", "synth", "--scalesim-topology", str(topology), "--out", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return path


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_resnet18_2of4_layers_match_scalesim(resnet_nm_trace, dataflow):
    """Four ResNet-18 layers with 2:4 filters on a 32×32 array with 64 KiB SRAMs
    (`make scalesim-resnet18-nm`, SCALE-Sim took minutes per dataflow): exact, but for the ifmap
    DRAM reads of `layer2_down`, whose input the synthetic import widens by a row and a column
    (SCALE-Sim's ceil output size; it never fetches them, hwsim does: docs/validation.md §1a)."""
    lines = [ln for ln in (RESNET / "nm_reference.csv").read_text().splitlines() if not ln.startswith("#")]
    ref = {r["layer"]: r for r in csv.DictReader(lines) if r["dataflow"] == dataflow}
    df = simulate(resnet_nm_trace, archs.load(RESNET / "array_32x32_nm.cfg"), dataflow=dataflow,
                  passes=["forward"], mapping="scalesim").to_frame()
    assert set(df["layer"]) == set(ref)
    for row in df.to_dict("records"):
        r = ref[row["layer"]]
        got = (row["gemm_cycles"], row["ifmap_sram_a_read_bytes"], row["filter_sram_b_read_bytes"],
               row["dram_b_read_bytes"], row["dram_c_write_bytes"])
        want = (int(r["total_cycles"]), float(r["sram_ifmap_reads_raw"]), int(r["sram_filter_reads"]),
                int(r["dram_filter_reads"]), int(r["dram_ofmap_writes"]))
        assert got == want, row["layer"]
        if row["layer"] == "layer2_down":
            assert row["dram_a_read_bytes"] > int(r["dram_ifmap_reads"])  # the widened row and column
        else:
            assert row["dram_a_read_bytes"] == int(r["dram_ifmap_reads"]), row["layer"]
