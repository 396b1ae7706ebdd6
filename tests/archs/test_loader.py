"""The strict loader: round trips, one test per error class, and never any other exception."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archs
from archs import ConfigError

EDGE = archs.dump(archs.PRESETS["edge-npu"])


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        archs.loads(text, "t.yaml")
    assert str(e.value).startswith("t.yaml: ")
    return e.value.problems


@pytest.mark.parametrize("name", sorted(archs.PRESETS))
def test_round_trip(name):
    preset = archs.PRESETS[name]
    again = archs.loads(archs.dump(preset))
    assert again == preset and hash(again) == hash(preset)
    assert archs.from_dict(archs.to_dict(preset)) == preset
    assert archs.loads(archs.dump(preset, comments=False)) == preset


def test_duplicate_key():
    text = EDGE.replace("tech_nm: 45", "tech_nm: 45\ntech_nm: 28", 1)
    (p,) = problems_of(text)
    assert "duplicate key 'tech_nm'" in p and "first at line" in p


def test_unknown_key_suggests_the_nearest():
    text = EDGE.replace("    capacity_bytes: 131072", "    capacty_bytes: 131072", 1)
    ps = problems_of(text)
    assert "memories.glb.capacty_bytes: unknown key; did you mean 'capacity_bytes'?" in ps
    assert "memories.glb.capacity_bytes: missing; capacity of one instance, bytes (0 = unbounded)" in ps


def test_wrong_type():
    text = EDGE.replace("  rows: 16", "  rows: sixteen", 1)
    text = text.replace("double_buffered: true", "double_buffered: 1", 1)
    ps = problems_of(text)
    assert "compute.rows: expected a number, got 'sixteen'" in ps
    assert "memories.glb.double_buffered: expected true or false, got 1" in ps


def test_out_of_range_with_the_path_in_the_issue():
    text = EDGE.replace("    capacity_bytes: 131072", "    capacity_bytes: -1", 1)
    assert problems_of(text) == ["memories.glb.capacity_bytes: must be >= 0, got -1"]
    text = EDGE.replace("clock_hz: 500000000.0", "clock_hz: 0", 1)
    assert problems_of(text) == ["clock_hz: must be >= 1000, got 0"]


def test_missing_field_and_version():
    text = EDGE.replace("version: 1\n", "", 1).replace("  lanes: 16", "", 1)
    ps = problems_of(text)
    assert "version: missing; put 'version: 1' at the top of the file" in ps
    assert ("vector_unit.lanes: missing; elements processed per cycle "
            "(0 = not modelled: counted, takes no time)") in ps
    assert problems_of(EDGE.replace("version: 1", "version: 2", 1)) == ["version: must be 1, got 2"]


def test_literal_choices_and_units():
    text = EDGE.replace('microarchitecture: "systolic"', 'microarchitecture: "systolc"', 1)
    text = text.replace("bandwidth_bytes_per_s: 8000000000.0", "bandwidth_bytes_per_s: 8 Gb/z", 1)
    ps = problems_of(text)
    assert ("compute.microarchitecture: must be one of 'systolic', 'pe_skipping', got 'systolc' "
            "(did you mean 'systolic'?)") in ps
    assert any(p.startswith("memories.glb.bandwidth_bytes_per_s: unknown unit 'Gb/z' for a bandwidth")
               for p in ps)


def test_unit_strings_are_converted():
    text = (EDGE.replace("    capacity_bytes: 131072", "    capacity_bytes: 128 KiB", 1)
            .replace("clock_hz: 500000000.0", "clock_hz: 500 MHz", 1)
            .replace("read_energy_pj_per_byte: 64.0", "read_energy_pj_per_byte: 8 pJ/bit", 1))
    assert archs.loads(text) == archs.PRESETS["edge-npu"]


def test_cross_field_problems_are_collected_together():
    text = EDGE.replace('  - name: "glb"', '  - name: "rf"', 1)
    ps = problems_of(text)
    assert "memories[1].name: 'rf' is used twice; names must be unique" in ps
    assert any(p.startswith("links.noc.source: no memory named 'glb'") for p in ps)
    assert any(p.startswith("sparse.formats[1].level: no memory named 'glb'") for p in ps)


def test_an_ima_narrower_than_one_weight_is_refused():
    """ISAAC's 16-bit weights over 2-bit cells (offset encoding) take 8 cells of a row; one crossbar
    of 3 columns per IMA holds none, and replay divided by its zero peak MACs per second."""
    a = archs.PRESETS["reram-isaac"]
    with pytest.raises(ConfigError, match=r"reram: an IMA's crossbar rows hold crossbars_per_ima × "
                                          r"crossbar\.cols = 3 cells, fewer than the 8 cells of one weight"):
        archs.replace(a, {"reram.crossbars_per_ima": 1, "reram.crossbar.cols": 3})
    assert archs.replace(a, {"reram.crossbars_per_ima": 1, "reram.crossbar.cols": 8}).reram.crossbar.cols == 8


@pytest.mark.parametrize(("preset", "field", "zero"), [
    ("reram-neurosim", "reram.interconnect_bandwidth_bytes_per_s", "unlimited, no time"),
    ("gpu-a100", "sparse.structured.cutlass_efficiency", "gpu.tensor_core_efficiency"),
    ("gpu-h100", "sparse.structured.cusparselt_efficiency", "gpu.tensor_core_efficiency"),
    # G_on below G_off: the conductance of a full cell cancelled to 0 and the write energy divided by it
    ("reram-neurosim", "reram.write.on_off_ratio", "every pulse costs pulse_energy_pj")])
def test_rates_whose_zero_means_a_default_take_zero_or_a_least_value(preset, field, zero):
    """A global bus of 1e-30 bytes/s was accepted and replayed to 4.5e42 cycles per layer (a Python
    int that no report column holds: `hwsim replay --out x.parquet` died in pyarrow)."""
    a = archs.PRESETS[preset]
    with pytest.raises(ConfigError, match=rf"{re.escape(field)}: must be 0 \({re.escape(zero)}\) or >= "):
        archs.replace(a, {field: 1e-30})
    assert archs.replace(a, {field: 0}) is not None


def test_yaml_syntax_error_names_the_line():
    (p,) = problems_of("version: 1\nname: [unclosed\n")
    assert p.startswith("line 3: YAML syntax error") or p.startswith("line 2: YAML syntax error")


def test_replace_by_dotted_path_is_validated():
    a = archs.PRESETS["edge-npu"]
    b = archs.replace(a, {"compute.rows": 32, "memories.glb.capacity_bytes": "256 KiB"})
    assert b.compute.rows == 32 and b.memory("glb").capacity_bytes == 256 * 1024
    assert a.compute.rows == 16  # frozen: the original is untouched
    assert archs.replace(a, compute__cols=8).compute.cols == 8
    with pytest.raises(ConfigError, match=r"compute\.rows: must be > 0, got 0"):
        archs.replace(a, {"compute.rows": 0})
    with pytest.raises(ConfigError, match=r"compute\.rowz: no such field; did you mean 'rows'\?"):
        archs.replace(a, {"compute.rowz": 4})
    with pytest.raises(ConfigError, match=r"memories\.sram: no element named 'sram'"):
        archs.replace(a, {"memories.sram.capacity_bytes": 4})
    a100 = archs.PRESETS["gpu-a100"]  # its dense kernels are multistage: a short-K step of 0 divided by 0
    with pytest.raises(ConfigError, match=r"gpu: short_k_stages=3 needs short_k_tile_k, .* \(got 0\)"):
        archs.replace(a100, {"gpu.short_k_tile_k": 0})
    assert archs.replace(a100, {"gpu.short_k_tile_k": 0, "gpu.short_k_stages": 0}).gpu.short_k_stages == 0
    assert archs.replace(a100, {"gpu.short_k_stages": 0}).gpu.short_k_tile_k == 64  # the regime off
    with pytest.raises(ConfigError, match=r"gpu: short_k_stages=3 needs short_k_tile_k"):
        archs.replace(archs.PRESETS["gpu-h100-pcie"], {"gpu.short_k_stages": 3})
    g = archs.PRESETS["gpu-h100"]  # no fixed 2:4 kernel: half a tile is refused with the fix
    with pytest.raises(ConfigError, match=r"structured: kernel_tile_m=128 and kernel_tile_n=0: give both"):
        archs.replace(g, {"sparse.structured.kernel_tile_m": 128})


def test_load_by_name_file_or_error(tmp_path):
    assert archs.load("gpu-a100") is archs.PRESETS["gpu-a100"]
    f = tmp_path / "mine.yaml"
    f.write_text(archs.dump(archs.PRESETS["reram-isaac"]))
    assert archs.load(f) == archs.PRESETS["reram-isaac"]
    with pytest.raises(ConfigError, match="did you mean 'gpu-a100'"):
        archs.load("gpu-a10")


# -- property: random mutations of valid YAML load or raise ConfigError, nothing else ------------

def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**12), st.floats(allow_nan=True),
                   st.text(max_size=12), st.sampled_from(["128 KiB", "1 GHz", "-3 pJ", "0", "ws", "nan",
                                                          "1e400", "systolic", "a", "1e-05"]),
                   st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(),
                                                                        max_size=2))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(preset=st.sampled_from(sorted(archs.PRESETS)), data=st.data())
def test_mutations_load_or_raise_config_error(preset, data):
    doc = archs.to_dict(archs.PRESETS[preset])
    paths = list(_paths(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = data.draw(st.sampled_from(["set", "delete", "rename"]))
            if action == "set":
                parent[path[-1]] = data.draw(VALUES)
            elif action == "delete" and isinstance(parent, dict):
                del parent[path[-1]]
            elif action == "rename" and isinstance(parent, dict):
                parent[data.draw(st.text(max_size=8))] = parent.pop(path[-1])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    text = yaml.safe_dump(doc, allow_unicode=True)
    if data.draw(st.booleans()):  # also mutate the text itself
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.sampled_from(["", ":", "\n  - ", "{", "\t", "&a *a", "!!python/x"]))
    try:
        arch = archs.loads(text, "m.yaml")
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert isinstance(arch, archs.Architecture)
        archs.energy_table(arch)


def test_unrolled_dimensions_are_checked():
    a = archs.PRESETS["edge-npu"]
    with pytest.raises(ConfigError, match=r"compute\.unroll_rows: unrolling is chosen by the register-file"):
        archs.replace(a, {"compute.unroll_rows": ["OX"]})
    tiled = archs.replace(a, {"compute.register_file_tiling": True})
    with pytest.raises(ConfigError, match=r"compute\.unroll_rows\[0\]: must be one of 'B', 'K', 'C'"):
        archs.replace(tiled, {"compute.unroll_rows": ["Q"]})
    with pytest.raises(ConfigError, match=r"compute\.unroll_cols: 'K' listed twice"):
        archs.replace(tiled, {"compute.unroll_cols": ["K", "K"]})
    with pytest.raises(ConfigError, match=r"compute\.unroll_cols: K is also the only row dimension"):
        archs.replace(tiled, {"compute.unroll_rows": ["K"], "compute.unroll_cols": ["K"]})
    both = archs.replace(tiled, {"compute.unroll_rows": ["OX", "C"], "compute.unroll_cols": ["K", "C"]})
    assert both.compute.unroll_rows == ("OX", "C")
