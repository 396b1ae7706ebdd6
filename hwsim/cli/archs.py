"""`hwsim archs list|show|validate` (see hwsim/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import _print_frame


def add_archs(sub: Any) -> None:
    p = sub.add_parser("archs", help="list, show and validate architecture descriptions",
                       description="Architecture presets and YAML descriptions (see docs/architectures.md).")
    asub = p.add_subparsers(dest="archs_command", metavar="COMMAND", required=True)
    asub.add_parser("list", help="the presets").set_defaults(func=cmd_archs_list)
    show = asub.add_parser("show", help="components, peak figures and energy table")
    show.add_argument("arch", help="preset name, YAML file or SCALE-Sim .cfg")
    show.add_argument("--yaml", action="store_true", help="print the full description as YAML instead")
    show.set_defaults(func=cmd_archs_show)
    val = asub.add_parser("validate", help="check a YAML description (every problem, with its path)")
    val.add_argument("file", type=Path, help="YAML file or SCALE-Sim .cfg")
    val.set_defaults(func=cmd_archs_validate)


def cmd_archs_list(args: argparse.Namespace) -> int:
    import pandas as pd

    import archs

    rows = [{"name": n, "family": a.family, "peak TOPS": f"{archs.peak_ops_per_s(a) / 1e12:.4g}",
             "clock": _si(a.clock_hz, "Hz"), "description": a.description.split(":")[0].split(" (")[0]}
            for n, a in archs.PRESETS.items()]
    _print_frame(pd.DataFrame(rows).set_index("name"))
    return 0


def cmd_archs_show(args: argparse.Namespace) -> int:
    import archs
    from archs import derived

    a = archs.load(args.arch)
    if args.yaml:
        print(archs.dump(a), end="")
        return 0
    import pandas as pd

    print(f"{a.name}  ({a.family}, {_si(a.clock_hz, 'Hz')}, {a.tech_nm} nm)\n{a.description}\n")
    print("Components")
    _print_frame(pd.DataFrame(_component_rows(a)).set_index("component"))
    print("\nPeak figures (derived from the fields)")
    for key, value in derived.summary(a).items():
        print(f"  {key:34s} {value:.6g}")
    print("\nEnergy per action")
    table = pd.DataFrame([vars(e) for e in archs.energy_table(a)])
    _print_frame(table.rename(columns={"energy_pj": "pJ"}).set_index(["component", "action"]))
    feats = a.sparse
    print("\nSparse acceleration features")
    lines = [f"  format {f.format} for {f.operand} at {f.level} ({f.metadata_bits}-bit metadata)"
             for f in feats.formats]
    lines += [f"  {x.kind} of {x.target} at {x.level} on zero {'/'.join(x.condition_on)}"
              for x in feats.actions]
    if feats.structured:
        s = feats.structured
        lines.append(f"  {s.n}:{s.m} structured on {s.operand}: {s.math_speedup}x math, "
                     f"{s.metadata_bits_per_nonzero}-bit metadata per non-zero")
    skips = ("skip_zero_input_rows", "skip_zero_weight_columns", "skip_zero_crossbars")
    lines += [f"  skip all-zero {k.removeprefix('skip_zero_').replace('_', ' ')}"
              for k in skips if getattr(feats, k)]
    print("\n".join(lines) or "  none (a dense machine)")
    return 0


def _component_rows(a: Any) -> list[dict[str, str]]:
    rows = []
    if a.compute is not None:
        c = a.compute
        rows.append({"component": "compute", "what": f"{c.rows}×{c.cols} {c.microarchitecture}, "
                     f"{c.dataflow}, "
                     f"{c.macs_per_pe_per_cycle} MAC/PE/cycle, {c.precision.activation_bits}/"
                     f"{c.precision.weight_bits}-bit act/weight"})
    if a.gpu is not None:
        g = a.gpu
        rows.append({"component": "gpu", "what": f"{g.sms} SMs × {g.tensor_cores_per_sm} tensor cores × "
                     f"{g.tensor_core.fma_per_cycle} FMA/clock; thread block {g.threadblock_m}×"
                     f"{g.threadblock_n}×{g.threadblock_k}"})
        rows.append({"component": "gpu card",
                     "what": f"sustained clock {g.sustained_clock_fraction * a.clock_hz / 1e9:.3g} GHz "
                     f"({g.sustained_clock_fraction:.0%} of {a.clock_hz / 1e9:.3g}) with BF16 data, "
                     f"{g.fp16_clock_ratio:.0%} of that with FP16 (operands: {g.operand_dtype}); HBM "
                     f"reached {g.hbm_achievable_fraction:.0%} of the datasheet's"})
        if a.sparse.structured is not None:
            s = a.sparse.structured
            rows.append({"component": "gpu libraries",
                         "what": f"N:M via {s.library}; unstructured via {a.sparse.unstructured_library}"})
        rows.append({"component": "gpu timing",
                     "what": f"dense main loop at {g.tensor_core_efficiency:.0%} of peak; "
                     f"smem {g.smem_bytes_per_cycle_per_sm:g} B/clock/SM; "
                     f"L2 {g.l2_bytes_per_cycle:.4g} B/clock; "
                     f"latency {g.memory_latency_cycles} cycles × {g.pipeline_stages} stages; "
                     + (f"K ≤ {g.short_k_tile_k * (g.short_k_stages - 1)} runs its stores after its math "
                        f"(kernels of {g.short_k_tile_k}×{g.short_k_stages}); " if g.short_k_stages else "")
                     + f"launch {g.kernel_launch_ns:g} ns (docs/gpu.md)"})
    if a.reram is not None:
        r = a.reram
        rows.append({"component": "reram", "what": f"{r.tiles} tiles × {r.imas_per_tile} IMAs × "
                     f"{r.crossbars_per_ima} crossbars {r.crossbar.rows}×{r.crossbar.cols}, "
                     f"{r.crossbar.bits_per_cell} b/cell, {r.adcs_per_ima} {r.adc.bits}-bit ADCs per IMA"})
    v = a.vector_unit
    rows.append({"component": "vector_unit", "what": f"{v.lanes} lanes"})
    for m in a.memories:
        size = "unbounded" if m.capacity_bytes == 0 else _si(m.capacity_bytes, "B", 1024)
        bw = "unlimited" if m.bandwidth_bytes_per_s == 0 else _si(m.bandwidth_bytes_per_s, "B/s")
        rows.append({"component": m.name, "what": f"{m.kind} {size} × {m.instances}, {bw}, "
                     f"operands {','.join(m.operands)}{', double-buffered' if m.double_buffered else ''}"})
    for ln in a.links:
        bw = "unlimited" if ln.bandwidth_bytes_per_s == 0 else _si(ln.bandwidth_bytes_per_s, "B/s")
        rows.append({"component": ln.name, "what": f"link {ln.source} → {ln.destination}, {bw}"})
    return rows


def _si(value: float, unit: str, base: int = 1000) -> str:
    prefixes = ["", "K", "M", "G", "T", "P"] if base == 1000 else ["", "Ki", "Mi", "Gi", "Ti", "Pi"]
    i = 0
    while abs(value) >= base and i < len(prefixes) - 1:
        value /= base
        i += 1
    return f"{value:.4g} {prefixes[i]}{unit}"


def cmd_archs_validate(args: argparse.Namespace) -> int:
    import archs

    a = archs.load(args.file) if args.file.suffix == ".cfg" else archs.load_file(args.file)
    print(f"OK {args.file}: {a.name} ({a.family}), peak {archs.peak_ops_per_s(a) / 1e12:.4g} TOPS")
    return 0
