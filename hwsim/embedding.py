"""The ``embedding`` layer kind on any family: a gather forward, a scatter-add backward.

An embedding call of ``N`` samples with ``L`` indices each, into a table ``(V, D)``
(``traces.format.kinds.embedding``), does no MACs:

- forward: a gather: ``N·L`` rows of ``D`` elements read from the table (off-chip: a table is
  larger than any on-chip buffer of the three families) and ``N·L·D`` written out; no
  arithmetic, the vector unit moves them (one op per element, its lanes bound the rate);
- backward-weight: a scatter-add of ``dY``: ``N·L·D`` gradient elements read and added into the
  rows of ``dW`` that the batch touched (``U`` rows, the ``dw_needed`` mask: a read and a write of
  ``U·D`` elements, ``N·L·D`` additions on the vector unit); rows no index names are not touched.
  Its dense baseline is a dense gradient: the whole ``V·D`` gradient zero-filled (written), then
  ``min(N·L, V)`` rows read, added into and written (PyTorch's default, ``sparse=False``);
- no backward-data (indices have no gradient);
- update: the parameter's optimizer step, as for any layer (``hwsim.update``): PyTorch's dense
  gradient and optimizer state cover the whole table.

Every family runs it on its vector unit (the edge NPU's, the GPU's memory-bound kernels, the
ReRAM chip's digital unit: a table is not programmed into crossbars, which would need a write of
every row read), with ``VectorWork``'s bandwidth-bound timing. The forward's dense baseline is
the same gather (nothing to skip).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from archs import Architecture
from traces.format.kinds.embedding import lookups
from traces.format.layer import LayerSpec

from .energy import pass_energy
from .layer_input import LayerInput
from .pricing import ratio, total_pj
from .vector import VectorWork


def embedding_work(spec: LayerSpec, pass_: str, batch: int, touched_rows: int | None,
                   element_bytes: float) -> VectorWork:
    """The vector work of one embedding pass for ``batch`` samples (``element_bytes``: bytes per
    table or gradient element). ``touched_rows``: rows of the table the batch's gradient touches,
    each read, added into and written once; None: the dense gradient, the whole ``(V, D)`` table's
    gradient zero-filled (written) and then the scattered rows read, added into and written."""
    v, d = spec.w_shape
    n = lookups(spec.x_shape, batch) * d  # elements gathered or scattered
    if pass_ == "forward":
        moved = n * element_bytes
        return VectorWork(float(n), offchip_read_bytes=moved, offchip_write_bytes=moved)
    if pass_ == "backward_weight":
        if touched_rows is None:
            rows = min(lookups(spec.x_shape, batch), v)
            rmw, fill = rows * d * element_bytes, v * d * element_bytes
            return VectorWork(float(n + v * d), offchip_read_bytes=n * element_bytes + rmw,
                              offchip_write_bytes=rmw + fill)
        rmw = touched_rows * d * element_bytes
        return VectorWork(float(n), offchip_read_bytes=n * element_bytes + rmw, offchip_write_bytes=rmw)
    raise KeyError(f"an embedding has no {pass_!r} pass")


def touched(spec: LayerSpec, it: LayerInput, li: int) -> int | None:
    """Rows of the table the iteration's gradient touches (``dw_needed`` count / D), None when not
    recorded (a trace without it: every looked-up row, ``N·L`` at most ``V``)."""
    n = it.count(li, "dw_needed")
    if n is None:
        return None
    return n // spec.w_shape[1]


def embedding_rows(arch: Architecture, spec: LayerSpec, it: LayerInput, li: int, passes: Sequence[str], *,
                   element_bytes: float, update: Callable[[], dict | None]) -> list[dict]:
    """Report rows of one embedding layer of one iteration: forward and backward-weight on the
    vector unit, the update from ``update()`` (the family's update row; None: no gradient)."""
    rows: list[dict[str, Any]] = []
    batch = it.batch
    for pass_ in passes:
        if pass_ == "update":
            row = update()
            if row is not None:
                rows.append(row)
            continue
        if pass_ == "backward_data" or (pass_ == "backward_weight" and it.count(li, "dw") is None):
            continue
        seen = touched(spec, it, li)
        work = embedding_work(spec, pass_, batch, seen, element_bytes)
        base = embedding_work(spec, pass_, batch, None, element_bytes)
        rows.append({**_row(arch, work, base), "iteration": it.index, "layer": spec.name, "pass": pass_,
                     "mode": "exact" if it.has_masks else "expected", "batch": batch,
                     "simulated_batch": batch, "embedding_rows_touched": seen})
    return rows


def _row(arch: Architecture, work: VectorWork, base: VectorWork) -> dict[str, Any]:
    off = arch.off_chip.name
    cycles, base_cycles = work.cycles(arch), base.cycles(arch)

    def energy(w: VectorWork, c: int) -> dict[str, Any]:
        traffic = {(off, "a", "data", "read"): w.offchip_read_bytes,
                   (off, "c", "data", "write"): w.offchip_write_bytes}
        return pass_energy(arch, actual_macs=0, gated_macs=0, traffic=traffic, vector_ops=w.ops, cycles=c)

    e = energy(work, cycles)
    e_total, e_base = total_pj(e), total_pj(energy(base, base_cycles))
    row = {"cycles": cycles, "gemm_cycles": 0, "vector_cycles": cycles, "compute_cycles": 0,
           "stall_cycles": 0,
           "algorithmic_macs": 0, "effectual_macs": 0, "actual_macs": 0, "gated_macs": 0, "skipped_macs": 0,
           "vector_ops": work.ops, "energy_pj": e_total, "dense_cycles": base_cycles,
           "dense_energy_pj": e_base, "speedup": base_cycles / max(cycles, 1),
           "energy_saving": ratio(e_base, e_total, 1.0),
           f"{off}_a_read_bytes": work.offchip_read_bytes, f"{off}_c_write_bytes": work.offchip_write_bytes}
    row.update({f"energy_{k}_pj": v for k, v in e.items()})
    return row
