"""Cost of the iteration files' digests (``traces.format.digest``) on a large synthetic trace.

Writes a trace with ``TraceWriter`` (``--layers`` 3×3 convs of 64 channels at 28×28, batch 16;
``--masks`` mask iterations with five packed masks per layer; ``--counts`` counts-only iterations,
a file each), then measures what the digests cost: on writing (each file's digest, taken right
after the file is written), per file alone (warm page cache), parsing the manifest's ``files``
table, and opening every file as a replay does (``check_unread``: every member's CRC-32, the zip
headers, the cheap checks) with and without the digest check. Times inside a phase are summed
with ``time.perf_counter`` around the digest calls only, so load from other jobs changes them
less than the totals. Needs about 1.2 GB of disk at the defaults; run it ``nice``'d.

    python bench/trace_digests.py /tmp/digest-bench            # prints a markdown list
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

import traces
import traces.format.writer as writer_module
from traces import LayerSpec, TraceWriter
from traces.format import bits, digest
from traces.format.manifest import TENSOR_INDEX, TENSORS, new_manifest
from traces.format.reader import Iteration, _parse_json

BATCH = 16
MASKED = ("x", "y", "dy", "dx", "w")


def write(path: Path, n_layers: int, n_masks: int, n_counts: int) -> tuple[float, float, int]:
    """Write the trace; return the seconds writing took, the seconds of it spent on digests, files."""
    layers = [LayerSpec(f"conv{i}", "conv2d", f"conv{i}", 0, "Conv2d", (64, 28, 28), (64, 64, 3, 3),
                        (64, 28, 28), padding=(1, 1)) for i in range(n_layers)]
    rng = np.random.default_rng(0)
    packed, counts = {}, np.full((n_layers, len(TENSORS)), -1, dtype=np.int64)
    for li, spec in enumerate(layers):
        for t in MASKED:
            packed[(li, t)] = bits.pack(rng.random(spec.numel(t, BATCH)) < 0.5)
            counts[li, TENSOR_INDEX[t]] = bits.popcount(packed[(li, t)])
    dense = counts.copy()  # counts-only iterations: dense, within every bound
    for li, spec in enumerate(layers):
        for t in MASKED:
            dense[li, TENSOR_INDEX[t]] = spec.numel(t, BATCH)
    spent = [0.0]
    plain = writer_module.file_digest

    def timed(p: Path) -> str:
        t = time.perf_counter()
        out = plain(p)
        spent[0] += time.perf_counter() - t
        return out

    writer_module.file_digest = timed
    try:
        start = time.perf_counter()
        w = TraceWriter(path, overwrite=True)
        manifest = new_manifest(layers, model={"name": "synthetic"}, method={"name": "synthetic"},
                                dataset={"name": "random"}, schedule={"every": 1}, batch_size=BATCH)
        w.write_manifest(manifest)
        total = n_masks + n_counts
        every = max(1, total // n_masks)
        for i in range(total):
            masked = i % every == 0 and i // every < n_masks
            w.write_iteration(i, {"batch": BATCH}, counts if masked else dense, packed if masked else None)
        manifest.update(complete=True, iterations=total)
        w.write_manifest(manifest)
        return time.perf_counter() - start, spent[0], total
    finally:
        writer_module.file_digest = plain


def open_all(path: Path, digests: bool) -> tuple[float, float]:
    """Open every iteration as ``check_unread`` does; the seconds, and those in the digest check."""
    plain, spent = digest.check_digest, [0.0]

    def timed(*args: object) -> None:
        t = time.perf_counter()
        plain(*args)
        spent[0] += time.perf_counter() - t

    digest.check_digest = timed
    try:
        tr = traces.load(path, digests=digests)
        start = time.perf_counter()
        for i in tr.iterations:
            Iteration(tr, i, tr.file_of(i), tr.row_of(i)).close()
        return time.perf_counter() - start, spent[0]
    finally:
        digest.check_digest = plain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scratch", type=Path, help="a directory to write the trace in (removed after)")
    ap.add_argument("--layers", type=int, default=50)
    ap.add_argument("--masks", type=int, default=60)
    ap.add_argument("--counts", type=int, default=4000)
    args = ap.parse_args()
    path = args.scratch / "digest-bench.trace"
    took, on_digests, n_files = write(path, args.layers, args.masks, args.counts)
    files = sorted(path.glob("iter-*.npz"))
    masks = [f for f in files if f.name.endswith(".masks.npz")]
    size_gib = sum(f.stat().st_size for f in files) / 2**30
    raw = (path / "manifest.json").read_bytes()
    doc = json.loads(raw)
    without = json.dumps({k: v for k, v in doc.items() if k != "files"}, indent=1).encode()
    print(f"- trace: {n_files} files, {size_gib:.2f} GiB; {len(masks)} mask files of "
          f"{masks[0].stat().st_size / 2**20:.1f} MiB with {args.layers * len(MASKED) + 2} members each")
    print(f"- writing: {took:.1f} s, of which digests {on_digests:.2f} s ({on_digests / took:.1%})")
    for kind, group in (("mask", masks), ("counts", [f for f in files if f not in masks][:2000])):
        start = time.perf_counter()
        for f in group:
            digest.file_digest(f)
        per = (time.perf_counter() - start) / len(group)
        print(f"- digest of one {kind} file (warm page cache): {per * 1e3:.2f} ms, mean of {len(group)}")
    for label, text in (("with", raw), ("without", without)):
        start = time.perf_counter()
        for _ in range(5):
            _parse_json(text)
        print(f"- manifest {label} the files table: {len(text) / 2**10:.0f} KiB, parsed in "
              f"{(time.perf_counter() - start) / 5 * 1e3:.1f} ms")
    for digests in (False, True, False, True):
        took, spent = open_all(path, digests)
        print(f"- opening every file (CRC-32s, headers, cheap checks), digests {'on' if digests else 'off'}: "
              f"{took:.2f} s, of which digests {spent:.2f} s")
    shutil.rmtree(path)


if __name__ == "__main__":
    main()
