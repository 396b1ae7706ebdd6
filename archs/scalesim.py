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

``[sparsity] SparsitySupport: true`` (v3) becomes N:M compression of the filter (operand ``b``)
along K: ``sparse.structured`` with the layer's ``n:m`` and the ws input re-reads SCALE-Sim counts,
plus the representation format at the filter SRAM (``SparseRep``; blocked ELLPACK carries
``ceil(log2 m)`` metadata bits per kept value). SCALE-Sim reads N:M per layer from the topology's
``Sparsity`` column (``1:1`` when absent), not from the config: pass ``nm`` (``"2:4"``), e.g. from
:func:`topology_nm`. Only ``OptimizedMapping: false`` (layer-wise N:M, the pattern "the first n of
every m", no randomness) is imported; the row-wise random mode is refused.
"""

from __future__ import annotations

import configparser
import csv
import math
from dataclasses import replace
from pathlib import Path

from .architecture import Architecture
from .components import (
    ComputeArray,
    Link,
    Memory,
    Precision,
    RepresentationFormat,
    SparseFeatures,
    StructuredSparsity,
    VectorUnit,
)
from .errors import ConfigError
from .loader import read_config

CLOCK_HZ = 1e9
WORD_BYTES = 1
_SPARSE_REP = {"csr": "csr", "csc": "csc", "ellpack_block": "ellpack_block"}


def parse_nm(text: str) -> tuple[int, int]:
    """``"n:m"`` as ``(n, m)``; raises ValueError unless ``0 < n <= m``."""
    try:
        n, m = (int(v) for v in str(text).strip().split(":"))
    except ValueError:
        raise ValueError(f"N:M must look like '2:4', got {text!r}") from None
    if not 0 < n <= m:
        raise ValueError(f"N:M needs 0 < n <= m, got {text!r}")
    return n, m


def topology_nm(path: str | Path) -> dict[str, tuple[int, int]]:
    """Each layer's N:M from a SCALE-Sim topology CSV's ``Sparsity`` column (``(1, 1)`` without one).

    Conv rows have 8 columns before it, GEMM rows (``name, M, N, K``) 3 after the name.
    """
    text = read_config(path, "a SCALE-Sim topology CSV")
    rows = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
    out = {}
    for row in rows[1:]:
        cells = [c.strip() for c in row if c.strip()]
        out[cells[0]] = next((parse_nm(c) for c in cells[1:] if ":" in c), (1, 1))
    return out


def bandwidth_mode(path: str | Path) -> str | None:
    """A SCALE-Sim config's ``[run_presets] InterfaceBandwidth`` (``CALC``/``USER``), None if unreadable."""
    cp = configparser.ConfigParser()
    if not Path(path).is_file():  # a FIFO would wait forever
        return None
    try:
        with open(path) as f:
            cp.read_file(f)
        return cp.get("run_presets", "InterfaceBandwidth").strip()
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None


def from_scalesim_cfg(path: str | Path, nm: str | tuple[int, int] | None = None) -> Architecture:
    """An edge-NPU architecture equivalent to a SCALE-Sim config file.

    Args:
        nm: with ``[sparsity] SparsitySupport: true``, the layers' N:M (``"2:4"`` or ``(2, 4)``),
            which SCALE-Sim takes from the topology; default ``1:1`` as SCALE-Sim's without one.
    """
    from .presets import edge_npu

    p = Path(path)
    cp = configparser.ConfigParser()
    try:
        cp.read_string(read_config(p, "a SCALE-Sim .cfg file"), str(p))
    except configparser.Error as exc:
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
    structured: StructuredSparsity | None = None
    support = get("sparsity", "SparsitySupport", required=False) if cp.has_section("sparsity") else None
    if str(support).lower() == "true":
        rep = str(get("sparsity", "SparseRep", required=False) or "").lower()
        if rep not in _SPARSE_REP:
            problems.append(f"[sparsity] SparseRep: must be one of {sorted(_SPARSE_REP)}, got {rep!r}")
        if str(get("sparsity", "OptimizedMapping", required=False) or "false").lower() == "true":
            problems.append("[sparsity] OptimizedMapping: true (row-wise N:M with a random N per filter "
                            "column) is not imported; use false (layer-wise N:M from the topology)")
        try:
            n, m = parse_nm(nm if isinstance(nm, str) else ":".join(map(str, nm))) if nm else (1, 1)
        except ValueError as exc:
            problems.append(f"nm: {exc}")
            n, m = 1, 1
        if m % n:
            problems.append(f"nm: {n}:{m}: n must divide m (SCALE-Sim's ws input reads m/n per compressed "
                            "row would not be whole)")
        bits = math.ceil(math.log2(m)) if m > 1 else 0
        structured = StructuredSparsity(n=n, m=m, operand="b", math_speedup=1.0,
                                        metadata_bits_per_nonzero=bits, ws_input_rereads=True)
        if rep in _SPARSE_REP:
            formats = (RepresentationFormat(level="filter_sram", operand="b", format=_SPARSE_REP[rep],
                                            metadata_bits=bits if rep == "ellpack_block" else 1),)
    elif nm is not None:
        problems.append("nm: given, but the config has no [sparsity] SparsitySupport: true")
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
        description=(f"imported from {p.name} (SCALE-Sim {'v3' if v3 else 'v2'} layout, {mode} bandwidth"
                     f"{f', {structured.n}:{structured.m} filter sparsity' if structured else ''}); "
                     "1 byte per word, 1 GHz so words/cycle = GB/s; energies from the edge-npu preset "
                     "because SCALE-Sim configs carry none; no vector unit (SCALE-Sim models none)"),
        compute=ComputeArray(rows=rows, cols=cols, dataflow=dataflow, microarchitecture="systolic",
                             mac_energy_pj=base.compute.mac_energy_pj,
                             gated_mac_energy_pj=base.compute.gated_mac_energy_pj,
                             precision=Precision(8, 8, 8, 8)),
        # SCALE-Sim times the GEMM alone: no vector unit, so `cycles` is its Total Cycles
        vector_unit=VectorUnit(lanes=0, op_energy_pj=0.0), memories=(*srams, dram), links=links,
        sparse=SparseFeatures(formats=formats, structured=structured),
    )
