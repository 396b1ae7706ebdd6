"""Import SCALE-Sim ``.cfg`` files (v2 layout, and v3's with ``[layout]`` and ``[sparsity]``).

Semantics kept from SCALE-Sim (``../shared/reference/peer_simulators.md``, appendix):

- one word is one byte; the three SRAMs are ``kB × 1024`` bytes each and double-buffered;
- ``InterfaceBandwidth: CALC`` is stall-free (DRAM links of unlimited bandwidth);
  ``USER`` gives words per cycle. v3 takes the ifmap and filter DRAM bandwidths from
  ``[layout] IfmapSRAMBankBandwidth`` / ``FilterSRAMBankBandwidth`` and the ofmap's from
  ``Bandwidth``; the v2 layout uses ``Bandwidth`` for all three;
- SCALE-Sim counts cycles, not seconds: the import uses a 1 GHz clock, so words per cycle equal GB/s.

SCALE-Sim configs carry no energies; the imported machine takes the ``edge-npu`` preset's
(cited) energy table and says so in its description.
"""

from __future__ import annotations

import configparser
from dataclasses import replace
from pathlib import Path

from .architecture import Architecture
from .components import ComputeArray, Link, Memory, Precision, RepresentationFormat, SparseFeatures
from .errors import ConfigError

CLOCK_HZ = 1e9
WORD_BYTES = 1
_SPARSE_REP = {"csr": "csr", "csc": "csc", "ellpack_block": "ellpack_block"}


def from_scalesim_cfg(path: str | Path) -> Architecture:
    """An edge-NPU architecture equivalent to a SCALE-Sim config file."""
    from .presets import edge_npu

    p = Path(path)
    cp = configparser.ConfigParser()
    try:
        with open(p) as f:
            cp.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigError([f"cannot read as a SCALE-Sim config: {exc}"], str(p)) from None
    problems: list[str] = []

    def get(section: str, key: str, kind: type = str, required: bool = True) -> object:
        if not cp.has_option(section, key):
            if required:
                problems.append(f"[{section}] {key}: missing")
            return None
        raw = cp.get(section, key).strip()
        if kind is int:
            try:
                return int(raw)
            except ValueError:
                problems.append(f"[{section}] {key}: expected an integer, got {raw!r}")
                return None
        return raw

    arch = "architecture_presets"
    v3 = cp.has_section("layout")
    run_name = get("general", "run_name", required=False) or p.stem
    rows, cols = get(arch, "ArrayHeight", int), get(arch, "ArrayWidth", int)
    sizes = {op: get(arch, f"{name}SramSzkB", int)
             for op, name in (("a", "Ifmap"), ("b", "Filter"), ("c", "Ofmap"))}
    dataflow = get(arch, "Dataflow")
    if dataflow is not None and dataflow not in ("ws", "os", "is"):
        problems.append(f"[{arch}] Dataflow: must be ws, os or is, got {dataflow!r}")
    mode = get("run_presets", "InterfaceBandwidth")
    if mode is not None and mode not in ("CALC", "USER"):
        problems.append(f"[run_presets] InterfaceBandwidth: must be CALC or USER, got {mode!r}")
    words_per_cycle = {"a": 0, "b": 0, "c": 0}
    if mode == "USER":
        raw = get(arch, "Bandwidth")
        try:
            first = int(str(raw).split(",")[0]) if raw is not None else None
        except ValueError:
            problems.append(f"[{arch}] Bandwidth: expected words per cycle, got {raw!r}")
            first = None
        words_per_cycle = {"a": first, "b": first, "c": first}
        if v3:
            words_per_cycle["a"] = get("layout", "IfmapSRAMBankBandwidth", int)
            words_per_cycle["b"] = get("layout", "FilterSRAMBankBandwidth", int)
    for key, value in (("ArrayHeight", rows), ("ArrayWidth", cols), *(
            (f"{n}SramSzkB", sizes[o]) for o, n in (("a", "Ifmap"), ("b", "Filter"), ("c", "Ofmap")))):
        if isinstance(value, int) and value <= 0:
            problems.append(f"[{arch}] {key}: must be > 0, got {value}")
    formats: tuple[RepresentationFormat, ...] = ()
    support = get("sparsity", "SparsitySupport", required=False) if cp.has_section("sparsity") else None
    if str(support).lower() == "true":
        rep = str(get("sparsity", "SparseRep", required=False) or "").lower()
        if rep not in _SPARSE_REP:
            problems.append(f"[sparsity] SparseRep: must be one of {sorted(_SPARSE_REP)}, got {rep!r}")
        else:
            formats = (RepresentationFormat(level="filter_sram", operand="b", format=_SPARSE_REP[rep]),)
    if problems:
        raise ConfigError(problems, str(p))

    base = edge_npu()
    glb = base.memory("glb")
    srams = tuple(
        Memory(name=f"{label}_sram", kind="sram", capacity_bytes=sizes[op] * 1024, operands=(op,),
               read_energy_pj_per_byte=glb.read_energy_pj_per_byte,
               write_energy_pj_per_byte=glb.write_energy_pj_per_byte, double_buffered=True)
        for op, label in (("a", "ifmap"), ("b", "filter"), ("c", "ofmap")))
    dram = replace(base.memory("dram"), bandwidth_bytes_per_s=0.0, latency_cycles=0)
    links = tuple(
        Link(name=f"dram_{label}", source="dram" if op != "c" else f"{label}_sram",
             destination=f"{label}_sram" if op != "c" else "dram", operands=(op,),
             bandwidth_bytes_per_s=float(words_per_cycle[op] * WORD_BYTES * CLOCK_HZ))
        for op, label in (("a", "ifmap"), ("b", "filter"), ("c", "ofmap")))
    return Architecture(
        name=str(run_name), family="edge_npu", clock_hz=CLOCK_HZ, tech_nm=base.tech_nm,
        description=(f"imported from {p.name} (SCALE-Sim {'v3' if v3 else 'v2'} layout, {mode} bandwidth); "
                     "1 byte per word, 1 GHz so words/cycle = GB/s; energies from the edge-npu preset "
                     "because SCALE-Sim configs carry none"),
        compute=ComputeArray(rows=rows, cols=cols, dataflow=dataflow, microarchitecture="systolic",
                             mac_energy_pj=base.compute.mac_energy_pj,
                             gated_mac_energy_pj=base.compute.gated_mac_energy_pj,
                             precision=Precision(8, 8, 8, 8)),
        vector_unit=base.vector_unit, memories=(*srams, dram), links=links,
        sparse=SparseFeatures(formats=formats),
    )
