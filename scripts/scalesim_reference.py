"""Run the real SCALE-Sim v3 (scalesim 3.0.0) and commit what it says.

- ``calc`` (default): tests/data/scalesim/reference.csv — for every config in tests/data/scalesim/*.cfg
  (stall-free CALC bandwidth), every dataflow and both topologies: Total Cycles, stall cycles,
  SRAM access counts and (last three columns) DRAM reads of ifmap and filter and DRAM writes of
  ofmap, in words (DETAILED_ACCESS_REPORT.csv; word = 1 byte). tests/hwsim/test_scalesim_agreement.py
  and tests/hwsim/test_scalesim_dram.py compare against it. The same for the configs in
  tests/data/scalesim/dram/ (SRAMs of 1-2 KiB, so that SCALE-Sim's read windows roll over and its
  ofmap buffer drains many times within a layer): tests/data/scalesim/dram/reference.csv.
- ``resnet18``: tests/data/scalesim/resnet18/reference.csv — the same columns for four ResNet-18 conv
  layers on a 32×32 array with 64 KiB SRAMs (minutes); tests/hwsim/test_scalesim_dram.py.
- ``sparse``: tests/data/scalesim/sparse_reference.csv (and sparse/dram/reference.csv: 1 KiB
  SRAMs) — N:M weight sparsity (``[sparsity] SparsitySupport: true``, layer-wise N:M from the
  topologies' Sparsity column) for every config in tests/data/scalesim/sparse/*.cfg (and
  sparse/dram/*.cfg), dataflows ws, os and is: the same columns plus SCALE-Sim's SPARSE_REPORT.csv
  (original and compressed filter storage, filter metadata storage, in its words), DRAM counts
  last. tests/hwsim/test_scalesim_sparse_agreement.py and test_scalesim_nm_cli.py compare against it.
- ``resnet18-nm``: tests/data/scalesim/resnet18/nm_reference.csv — those four layers with 2:4
  filters (``[sparsity]`` on), the same columns plus the sparse ones; test_scalesim_nm_cli.py.
- ``user``: bench/scalesim_user_mode.csv — ResNet-18 conv layers (bench/resnet18_scalesim.csv) on
  bench/array_32x32_user.cfg (limited DRAM bandwidth), one layer per run, with the wall time of
  each: the SCALE-Sim side of `make bench` and of docs/validation.md. It takes minutes.

Run with `make scalesim-reference` / `make scalesim-user` (they make .venv-scalesim: scalesim
3.0.0 fails on NumPy 2.4, so that venv pins numpy<2.4). Nothing here is imported by hwsim.
"""

from __future__ import annotations

import configparser
import csv
import io
import os
import platform
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from scalesim.scale_sim import scalesim

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "scalesim"


def layout_file(topology: Path, folder: Path) -> Path:
    """SCALE-Sim v3 wants a layout file even with custom layouts off: one row of 1s per layer."""
    names = [line.split(",")[0].strip() for line in topology.read_text().splitlines()[1:] if line.strip()]
    out = folder / f"{topology.stem}_layout.csv"
    out.write_text("Layer name," + ",".join(f" f{i}" for i in range(20)) + ",\n"
                   + "".join(f"{n}," + ",".join([" 1"] * 20) + ",\n" for n in names))
    return out


def read_report(path: Path) -> list[dict[str, str]]:
    rows = list(csv.reader(path.read_text().splitlines()))
    head = [h.strip() for h in rows[0]]
    return [{h: v.strip() for h, v in zip(head, r, strict=False) if h} for r in rows[1:] if r]


def run(cfg: Path, topology: Path, dataflow: str, gemm: bool, folder: Path,
        dram: bool = False) -> list[dict[str, object]]:
    cp = configparser.ConfigParser()
    cp.read(cfg)
    cp.set("architecture_presets", "Dataflow", dataflow)
    cp.set("general", "run_name", f"{cfg.stem}_{dataflow}_{topology.stem}")
    cfg_run = folder / f"{cfg.stem}_{dataflow}.cfg"
    with open(cfg_run, "w") as f:
        cp.write(f)
    out = folder / "out"
    start = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=str(cfg_run), topology=str(topology),
                       layout=str(layout_file(topology, folder)), input_type_gemm=gemm)
        sim.run_scale(top_path=str(out))
    wall = time.perf_counter() - start
    run_dir = out / cp.get("general", "run_name")
    compute = read_report(run_dir / "COMPUTE_REPORT.csv")
    access = read_report(run_dir / "DETAILED_ACCESS_REPORT.csv")
    names = [line.split(",")[0].strip() for line in topology.read_text().splitlines()[1:] if line.strip()]
    sparse = read_report(run_dir / "SPARSE_REPORT.csv") if (run_dir / "SPARSE_REPORT.csv").exists() else None
    rows = []
    for i, (name, c, a) in enumerate(zip(names, compute, access, strict=True)):
        rows.append({"config": cfg.stem, "rows": cp.getint("architecture_presets", "ArrayHeight"),
                     "cols": cp.getint("architecture_presets", "ArrayWidth"), "dataflow": dataflow,
                     "bandwidth_mode": cp.get("run_presets", "InterfaceBandwidth"), "layer": name,
                     "kind": "gemm" if gemm else "conv", "total_cycles": int(float(c["Total Cycles"])),
                     "stall_cycles": int(float(c["Stall Cycles"])),
                     "sram_ifmap_reads": int(float(a["SRAM IFMAP Reads"])),
                     "sram_filter_reads": int(float(a["SRAM Filter Reads"])),
                     "sram_ofmap_writes": int(float(a["SRAM OFMAP Writes"])),
                     "topology_wall_s": round(wall, 3)})
        if dram:  # appended after the original columns, which stay as they were
            rows[-1].update({"dram_ifmap_reads": int(float(a["DRAM IFMAP Reads"])),
                             "dram_filter_reads": int(float(a["DRAM Filter Reads"])),
                             "dram_ofmap_writes": int(float(a["DRAM OFMAP Writes"]))})
        if sparse is not None:  # keep SCALE-Sim's own (possibly fractional) numbers as it prints them
            s = sparse[i]
            dram_cols = ("dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes")
            kept = {k: v for k, v in rows[-1].items() if k != "topology_wall_s" and k not in dram_cols}
            rows[-1] = {**kept,
                        "nm": nm_of(topology)[name], "sparse_rep": s["Sparsity Representation"],
                        "sram_ifmap_reads_raw": a["SRAM IFMAP Reads"],
                        "original_filter_storage": s["Original Filter Storage"],
                        "new_filter_storage": s["New Storage (Filter+Metadata)"],
                        "filter_metadata_storage": s["Filter Metadata Storage"],
                        "topology_wall_s": rows[-1]["topology_wall_s"],
                        **{k: rows[-1][k] for k in dram_cols if k in rows[-1]}}
    return rows


def nm_of(topology: Path) -> dict[str, str]:
    """The Sparsity column (``N:M``) of a topology, by layer name."""
    out = {}
    for line in topology.read_text().splitlines()[1:]:
        cells = [c.strip() for c in line.split(",") if c.strip()]
        if cells:
            out[cells[0]] = next((c for c in cells[1:] if ":" in c), "1:1")
    return out


def user_mode() -> int:
    bench = DATA.parents[2] / "bench"
    cfg, topo = bench / "array_32x32_user.cfg", bench / "resnet18_scalesim.csv"
    lines = topo.read_text().splitlines()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for line in lines[1:]:
            one = Path(tmp) / f"{line.split(',')[0].strip()}.csv"
            one.write_text(lines[0] + "\n" + line + "\n")
            for df in ("ws", "os"):
                row = run(cfg, one, df, False, Path(tmp))[0]
                rows.append(row)
                print(f"{row['layer']} {df}: {row['total_cycles']} cycles in {row['topology_wall_s']} s",
                      file=sys.stderr)
    write(bench / "scalesim_user_mode.csv", rows)
    return 0


def write(target: Path, rows: list[dict[str, object]]) -> None:
    with open(target, "w", newline="") as f:
        f.write(f"# scalesim 3.0.0 on {platform.platform()}, {platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} cores, python {platform.python_version()}; regenerate: see "
                "scripts/scalesim_reference.py\n")
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {target} ({len(rows)} rows)", file=sys.stderr)


def sparse_mode() -> int:
    """N:M runs: the configs of tests/data/scalesim/sparse/ (64 KiB SRAMs) into sparse_reference.csv
    and of sparse/dram/ (1 KiB SRAMs: read windows roll over, the ofmap buffer drains often) into
    sparse/dram/reference.csv, with the DRAM counts in the last three columns."""
    folder = DATA / "sparse"
    for cfg_folder, target in ((folder, DATA / "sparse_reference.csv"),
                               (folder / "dram", folder / "dram" / "reference.csv")):
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for cfg in sorted(cfg_folder.glob("*.cfg")):
                for df in ("ws", "os", "is"):
                    for topo, gemm in ((folder / "conv_layers_nm.csv", False),
                                       (folder / "gemm_layers_nm.csv", True)):
                        rows += run(cfg, topo, df, gemm, Path(tmp), dram=True)
                        print(f"{cfg.stem} {df} {topo.stem}: {rows[-1]['topology_wall_s']} s",
                              file=sys.stderr)
        write(target, rows)
    return 0


def live_mode(layer: str, dataflow: str) -> int:
    """One layer of bench/resnet18_scalesim.csv on bench/array_32x32_user.cfg, timed now (for `make
    bench`): prints ``{"total_cycles": …, "wall_s": …}``."""
    import json

    bench = DATA.parents[2] / "bench"
    lines = (bench / "resnet18_scalesim.csv").read_text().splitlines()
    line = next((ln for ln in lines[1:] if ln.split(",")[0].strip() == layer), None)
    if line is None:
        print(f"no layer {layer!r} in bench/resnet18_scalesim.csv", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / f"{layer}.csv"
        one.write_text(lines[0] + "\n" + line + "\n")
        row = run(bench / "array_32x32_user.cfg", one, dataflow, False, Path(tmp))[0]
    print(json.dumps({"total_cycles": row["total_cycles"], "wall_s": row["topology_wall_s"]}))
    return 0


def resnet18_mode(nm: bool = False) -> int:
    """Four ResNet-18 conv layers (tests/data/scalesim/resnet18/conv_layers.csv) on a 32×32 array
    with 64 KiB SRAMs in CALC mode, ws/os/is: the DRAM counts at a realistic size (minutes). With
    ``nm``, the same layers with 2:4 filters (``conv_layers_2of4.csv``, ``array_32x32_nm.cfg``:
    ``[sparsity]`` on, layer-wise) into ``nm_reference.csv``."""
    folder = DATA / "resnet18"
    cfg, topology, out, label = (
        ("array_32x32_nm.cfg", "conv_layers_2of4.csv", "nm_reference.csv", "resnet18 2:4") if nm
        else ("array_32x32_calc.cfg", "conv_layers.csv", "reference.csv", "resnet18"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for df in ("ws", "os", "is"):
            rows += run(folder / cfg, folder / topology, df, False, Path(tmp), dram=True)
            print(f"{label} {df}: {rows[-1]['topology_wall_s']} s", file=sys.stderr)
    write(folder / out, rows)
    return 0


def main() -> int:
    if sys.argv[1:] == ["user"]:
        return user_mode()
    if sys.argv[1:] == ["resnet18"]:
        return resnet18_mode()
    if sys.argv[1:] == ["resnet18-nm"]:
        return resnet18_mode(nm=True)
    if len(sys.argv) == 4 and sys.argv[1] == "live":
        return live_mode(sys.argv[2], sys.argv[3])
    if sys.argv[1:] == ["sparse"]:
        return sparse_mode()
    for folder in (DATA, DATA / "dram"):
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for cfg in sorted(folder.glob("*.cfg")):
                for df in ("ws", "os", "is"):
                    for topo, gemm in ((DATA / "conv_layers.csv", False), (DATA / "gemm_layers.csv", True)):
                        rows += run(cfg, topo, df, gemm, Path(tmp), dram=True)
                        print(f"{cfg.stem} {df} {topo.stem}: {rows[-1]['topology_wall_s']} s",
                              file=sys.stderr)
        write(folder / "reference.csv", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
