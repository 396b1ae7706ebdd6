"""``simulate(trace, arch) -> Report``: replay a training trace on an architecture.

The shared core: it chooses iterations and layers, reads each iteration once, and hands every
layer to the architecture's family (``hwsim.npu``, ``hwsim.gpu``, ...), which maps, costs and times
its passes and returns report rows with the dense baseline beside them. Nothing here is specific
to a family: a family is a package with ``context(arch, manifest, *, dataflow, backend,
stream_chunk)`` and ``layer_rows(ctx, spec, layer_input, layer_index, passes)``; the context has
a ``meta`` dict that goes into the report's metadata. A family that sets ``READS_WEIGHTS = True``
also gets the recorded float16 weights and updates in its ``LayerInput``. A family with a
``mapping_context(arch, mapping, objective, dataflow, stream_chunk)`` maps its rows (``mapping=``):
the context's ``apply(spec, row)`` returns each row with its mapping and traffic.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from threadpoolctl import threadpool_limits

import archs
from archs import Architecture
from archs.units import format_size
from traces import Trace
from traces import load as load_trace
from traces.format.layer import PASSES, update_owners
from traces.format.validate import check_unread

from .engines import BACKEND_NAMES
from .errors import MappingError
from .layer_input import LayerInput
from .memory import MemoryBudgetError, family_working_bytes, input_bytes, operand_bytes
from .pool import LayerPool
from .report import Report

FAMILIES = {"edge_npu": "hwsim.npu", "gpu": "hwsim.gpu", "reram": "hwsim.reram"}  # family -> its package


def family_of(arch: Architecture) -> ModuleType:
    """The package that replays ``arch``'s family; MappingError for a family not simulated yet."""
    if arch.family not in FAMILIES:
        raise MappingError(f"{arch.name}: {arch.family} machines are described but not simulated yet; "
                           f"the simulator replays {', '.join(sorted(FAMILIES))} machines")
    return importlib.import_module(FAMILIES[arch.family])


MAX_CYCLES = 2**62  # a row's cycles: the report's sums over rows and iterations stay in int64


def _bounded(rows: list[dict[str, Any]], machine: Architecture) -> list[dict[str, Any]]:
    """``rows``, or MappingError when one takes more than :data:`MAX_CYCLES` (its own or its dense
    baseline's): a machine whose bandwidth, clock or rate is so low that totals would not fit int64."""
    for r in rows:
        for key in ("cycles", "dense_cycles"):
            if r.get(key, 0) >= MAX_CYCLES:
                raise MappingError(
                    f"{machine.name}: {r.get('layer', 'a layer')} {r.get('pass', '')} takes "
                    f"{float(r[key]):.3g} {key.replace('_', ' ')}, over 2**62 (totals would overflow): a "
                    "bandwidth, clock or rate of the machine is too low for this trace; raise it")
    return rows


def kind_rows(family: ModuleType, kind: str) -> Callable[..., list[dict[str, Any]]]:
    """The family's cost path for a layer kind: ``<kind>_rows`` where the family has one (an
    ``embedding``'s ``embedding_rows``), else its GEMM path ``layer_rows``."""
    return getattr(family, f"{kind}_rows", None) or family.layer_rows


def default_memory_budget_bytes() -> float:
    """Half of this machine's physical memory (the replay's default budget)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2
    except (ValueError, OSError, AttributeError):  # no sysconf: 8 GiB
        return 8 * 2**30


def simulate(trace: Trace | str | Path, arch: Architecture | str | Path, *, dataflow: str | None = None,
             passes: Sequence[str] = PASSES, iterations: Sequence[int] | str | None = None,
             layers: Sequence[int | str] | None = None, backend: str = "analytic",
             stream_chunk: int | None = None, workers: int | None = None,
             memory_budget_bytes: float | None = None,
             progress: Callable[[int, int], None] | None = None,
             mapping: str | Path | None = None, mapping_objective: str = "energy") -> Report:
    """Replay ``trace`` on ``arch``.

    Args:
        trace: a loaded trace or its path.
        arch: an Architecture, a preset name, a YAML file or a SCALE-Sim .cfg.
        dataflow: edge NPU: ``ws``, ``os`` or ``is`` (default: the architecture's); for other
            families a dataflow is a ``ValueError`` (they have no PE array).
        passes: any of ``forward, backward_data, backward_weight, update``; the update is one per
            weight parameter and step, on the first layer naming it (``traces.format.layer.update_owners``).
        iterations: which iterations (default: every iteration with exact masks; ``"all"``: every
            iteration). Iterations with masks replay exactly; counts-only ones in expected-value
            mode (``hwsim.expected``), marked ``mode = "expected"`` in the report.
        layers: layer names or indices (default: all).
        backend: ``analytic`` (closed form / max-plus loop) or ``event`` (simpy).
        stream_chunk: edge NPU: an explicit chunk of the streamed dimension (a user-given mapping).
        workers: threads replaying layers concurrently (default: up to 2, one per core), each
            with one BLAS thread during the call; the report is the same, bit for bit, for any
            number. An exception in the calling thread (Ctrl-C) cancels the layers not started
            and returns without waiting for the ones running (``hwsim.pool``).
        memory_budget_bytes: peak memory the replay may take beyond what the process holds when
            it starts (``hwsim.memory``): the layers in flight, their masks and working sets, fit it
            together (layers wait for room; an edge-NPU pass is costed in chunks sized to a
            worker's share); a layer that does not fit alone is refused up front with its estimate
            (``MemoryBudgetError``) instead of the process being killed (default: half of this
            machine's memory).
        progress: called with (done, total) after every layer of every iteration.
        mapping: edge NPU: ``None``/``"fixed"`` (the fixed loop order, SCALE-Sim's), ``"scalesim"``
            (SCALE-Sim 3.0.0's own CALC-mode DRAM reads and writes per operand), ``"search"``
            (the mapper picks each layer's tiles and loop order by ``mapping_objective``: energy,
            latency, edp or dram) or a YAML mapping file (docs/mapping.md). Every edge-NPU row
            gets a ``mapping`` column.
        mapping_objective: what ``search`` minimises.
    """
    tr = trace if isinstance(trace, Trace) else load_trace(trace)
    machine = arch if isinstance(arch, Architecture) else archs.load(arch)
    if backend not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKEND_NAMES)}")
    bad = [p for p in passes if p not in PASSES]
    if bad:
        raise ValueError(f"unknown pass {bad[0]!r}; passes are {', '.join(PASSES)}")
    if len(set(passes)) != len(passes):
        raise ValueError(f"passes {list(passes)} name a pass twice; each pass is replayed once")
    family = family_of(machine)
    if dataflow is not None and machine.family != "edge_npu":
        raise ValueError(f"dataflow {dataflow!r} applies to PE arrays (edge_npu machines); "
                         f"{machine.name} is a {machine.family} machine: leave the dataflow out")
    if iterations is None:
        its = list(tr.mask_iterations)
    elif isinstance(iterations, str):
        if iterations != "all":
            raise ValueError(f"iterations must be a list of numbers or 'all', got {iterations!r}")
        its = list(tr.iterations)
    else:
        its = list(iterations)
    twice = [i for n, i in enumerate(its) if i in its[:n]]
    if twice:
        raise ValueError(f"iteration {twice[0]} is given twice; each iteration is replayed once (the "
                         "whole-run estimate is their mean)")
    missing = [i for i in its if i not in tr.iterations]
    if missing:
        raise ValueError(f"iteration {missing[0]} is not in {tr.path} (it has {len(tr)} iterations, "
                         f"{tr.iterations[0]}..{tr.iterations[-1]})")
    if not its:
        raise ValueError(f"{tr.path} has no iteration with exact masks to replay; pass iterations='all' "
                         "to replay its counts in expected-value mode")
    chosen = list(range(len(tr.layers))) if layers is None else [tr.layer_index(x) for x in layers]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"layers {list(layers)} name a layer twice; each layer is replayed once")
    reads_weights = bool(getattr(family, "READS_WEIGHTS", False))
    threads = max(1, min(workers if workers is not None else min(2, os.cpu_count() or 1), len(chosen)))
    budget = default_memory_budget_bytes() if memory_budget_bytes is None else float(memory_budget_bytes)
    if not 0 < budget < float("inf"):
        raise ValueError(f"memory budget must be a positive, finite number of bytes, "
                         f"got {memory_budget_bytes!r}")
    # memory: each layer in flight holds its input (masks) and its working set; a worker's share of
    # the budget, less the largest input, is what an edge-NPU pass sizes its chunks to
    sched = tr.manifest.get("schedule") or {}
    mask_batch = min(int(tr.manifest.get("batch_size") or 1), int(sched.get("mask_samples") or 1 << 62))
    stored_weights = reads_weights and bool(sched.get("weights", True))
    in_bytes = {li: input_bytes(tr.layers[li], mask_batch, stored_weights) for li in chosen}
    largest = max(in_bytes.values())
    if threads > 1 and budget / threads < max(in_bytes[li] + operand_bytes(tr.layers[li], mask_batch, passes)
                                              for li in chosen) + 16 * 2**20:
        threads = 1  # too tight for layers side by side: one at a time, each with the whole budget
    if budget <= largest:
        li = max(chosen, key=in_bytes.__getitem__)
        raise MemoryBudgetError(tr.layers[li].name, in_bytes[li], budget, "its masks alone")
    ctx = family.context(machine, tr.manifest, dataflow=dataflow, backend=backend, stream_chunk=stream_chunk,
                         memory_budget_bytes=budget / threads - largest)  # layers replay concurrently
    working = family_working_bytes(family)
    need = {li: in_bytes[li] + working(ctx, tr.layers[li], mask_batch, passes, stored_weights)
            for li in chosen}
    for li in chosen:  # refused before anything is read
        if need[li] > budget:
            raise MemoryBudgetError(tr.layers[li].name, need[li], budget,
                                    f"its masks {format_size(in_bytes[li])} and its working set "
                                    f"{format_size(need[li] - in_bytes[li])} at batch {mask_batch}")
    check_unread(tr, its)  # a damaged file is refused though this replay would not read it
    prime = getattr(family, "prime", None)  # expected values a family takes from the trace (ReRAM writes)
    if prime is not None:
        prime(ctx, tr, its, chosen)
    mapper = getattr(family, "mapping_context", None)
    if mapper is None and mapping not in (None, "fixed"):
        raise ValueError(f"mapping {str(mapping)!r} applies to PE arrays (edge_npu machines); "
                         f"{machine.name} is a {machine.family} machine: leave the mapping out")
    mapped = mapper(machine, mapping, mapping_objective, dataflow, stream_chunk) if mapper else None
    rows: list[dict[str, Any]] = []
    done, total = 0, len(its) * len(chosen)

    def replay(a: tuple) -> list[dict[str, Any]]:
        spec, dens = a[1], a[2].densities(a[1])
        out = [{**r, **dens} for r in kind_rows(family, spec.kind)(*a)]
        return _bounded(out if mapped is None else [mapped.apply(spec, r) for r in out], machine)

    owners = update_owners(tr.layers)  # updates belong to parameters: one per parameter and step
    no_update = tuple(p for p in passes if p != "update")

    def args(it: Any, li: int) -> tuple:
        # a step whose update was skipped (mixed precision: gradients not finite) has no update pass
        update = owners[li] and not it.meta.get("update_skipped", False)
        return (ctx, tr.layers[li], LayerInput.read(it, li, weights=reads_weights), li,
                passes if update else no_update)

    def emit(layer_rows: list[dict[str, Any]]) -> None:
        nonlocal done
        rows.extend(layer_rows)
        done += 1
        if progress is not None:
            progress(done, total)

    table = (tr.manifest.get("vector_ops") or []) if layers is None else []  # the counted vector work
    vector_rows = getattr(family, "vector_op_rows", None) if table else None

    def tail(index: int, batch: int) -> None:
        if vector_rows is not None:
            rows.extend(_bounded(vector_rows(ctx, table, batch, index, passes), machine))

    if threads == 1:
        for index in its:
            with tr.iteration(index) as it:
                for li in chosen:  # one layer read at a time
                    emit(replay(args(it, li)))
                batch = it.batch
            tail(index, batch)
    else:  # each worker's matmuls get one BLAS thread: the workers share the cores
        limits = threadpool_limits(limits=1, user_api="blas")
        try:
            _replay_pooled(tr, its, chosen, threads, budget, need, replay, args, emit, tail)
        except (KeyboardInterrupt, SystemExit):
            raise  # BLAS keeps one thread: a cancelled worker may still be inside a BLAS call, and
            # changing the thread count would wait for it; the process is ending
        except BaseException:
            limits.restore_original_limits()
            raise
        limits.restore_original_limits()
    man = tr.manifest
    meta = {"arch": machine.name, "family": machine.family, "trace": str(Path(tr.path).resolve()),
            "backend": backend,
            "dataflow": None, "off_chip": machine.off_chip.name, "trace_iterations": len(tr),
            "clock_hz": machine.clock_hz, "method": man["method"]["name"], "model": man["model"]["name"],
            "dataset": (man.get("dataset") or {}).get("name", ""), "batch_size": man.get("batch_size"),
            **ctx.meta, **({"mapping": mapped.mode, "mapping_objective": mapping_objective}
                           if mapped is not None else {})}
    return Report(rows, meta)


def _replay_pooled(tr: Trace, its: list[int], chosen: list[int], threads: int, budget: float,
                   need: dict[int, float], replay: Callable, args: Callable, emit: Callable,
                   tail: Callable[[int, int], None]) -> None:
    """Replay with ``threads`` layer workers. Layers are read in this thread (the archive is not
    thread-safe), each handed to the workers as soon as it is read and its memory (``need``) fits
    beside the layers in flight, so reading overlaps the replay of the layers before it; results
    are emitted in layer order, each iteration's ``vector_ops`` rows (``tail``) after its layers."""
    with LayerPool(threads, budget) as pool:
        for index in its:
            futures = []
            with tr.iteration(index) as it:
                for li in chosen:
                    pool.reserve(need[li])
                    futures.append(pool.submit(replay, args(it, li), held_bytes=need[li]))
                    while futures and futures[0].done():
                        emit(futures.pop(0).result())
                batch = it.batch
            for f in futures:
                emit(f.result())
            tail(index, batch)  # the iteration's counted vector work, after its layers
