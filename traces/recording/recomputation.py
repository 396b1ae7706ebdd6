"""Activation checkpointing's recomputation, recorded as forward work (imports torch).

``torch.utils.checkpoint.checkpoint(fn, *args)`` (and what builds on it: Hugging Face's
``gradient_checkpointing_enable``, ``checkpoint_sequential``) runs ``fn``'s forward once more in
the backward pass, to remake the activations it did not keep. That second run is forward work of
the step: its layer calls are recorded again, as further calls (``name#1``), like any reused
layer's; its parameter products (:mod:`traces.recording.functional`), products of two activations
(:mod:`traces.recording.products`) and vector work (:mod:`traces.recording.vector_ops`) too. The
recorder knows a call is such a recomputation by construction, not by guessing: while it records,
the two entry points of ``torch.utils.checkpoint`` that hold the checkpointed function (the
generator of ``use_reentrant=False`` and ``CheckpointFunction`` of ``use_reentrant=True``, looked
up by ``checkpoint`` when it is called, so also through a ``checkpoint`` imported or bound
earlier) are given ``fn`` wrapped, and the wrapper turns the forward pass's capture on around the
runs that are recomputations:

- ``use_reentrant=False``: the original forward runs ``fn`` itself (recorded as usual); the
  wrapped ``fn`` is only called by the recomputation, inside the backward pass. Its calls get no
  gradients of their own (autograd's backward runs through the original forward's graph, with the
  recomputed tensors), so they are forward work only: no backward passes, no update (updates
  belong to parameters), vector rows with the ``forward`` pass only.
- ``use_reentrant=True``: the original forward runs the wrapped ``fn`` under ``torch.no_grad()``:
  recorded as forward work only (its inputs detached: nothing in it builds a graph); the
  recomputation in backward builds the graph that the backward pass then runs through, so its calls
  carry the backward passes.

Either way the step's forward work is the model's forward plus the checkpointed functions' forward
once more, and the backward work and the updates are what they are without checkpointing.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import torch
import torch.utils.checkpoint as _checkpoint

from ..format.errors import RecorderError
from .capture import call_site


def _refuse_selective(generator: Callable, fn: Callable, args: tuple, kwargs: dict) -> None:
    """Refuse ``checkpoint(..., context_fn=...)`` (selective activation checkpointing): its
    recomputation may serve operators' results from what the forward saved, so a recomputed call
    need not run its GEMM again, and the recorder cannot tell which do."""
    try:
        bound = inspect.signature(generator).bind_partial(fn, *args, **kwargs).arguments
    except TypeError:
        return
    context_fn = bound.get("context_fn")
    if context_fn is not None and context_fn is not getattr(_checkpoint, "noop_context_fn", None):
        inner = getattr(context_fn, "func", context_fn)  # a functools.partial's function
        name = getattr(inner, "__name__", type(inner).__name__)
        raise RecorderError(
            f"torch.utils.checkpoint at {call_site()} runs with context_fn={name} (selective "
            "activation checkpointing): its "
            "recomputation may reuse results the forward saved, so the recorder cannot tell which "
            "GEMMs run again and the trace would overstate the recomputation; record with plain "
            "checkpointing (no context_fn)")


class _Reentrant:
    """Stands for ``torch.utils.checkpoint.CheckpointFunction`` while a recorder is open: its
    ``apply`` hands the original one the checkpointed function wrapped."""

    def __init__(self, original: Any, wrap: Callable[[Callable], Callable]) -> None:
        self.original, self.wrap = original, wrap

    def apply(self, function: Callable, preserve: bool, *args: Any) -> Any:
        return self.original.apply(self.wrap(function), preserve, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class Recomputation:
    """The recorder's capture of activation checkpointing's recomputation (a mixin of
    :class:`~traces.recording.recorder.Recorder`)."""

    def _recompute_enter(self) -> None:
        """Wrap torch.utils.checkpoint's two entry points (restored by :meth:`_recompute_exit`)."""
        self._recomputing = 0  # recomputations running now (in the backward pass)
        self._checkpointed_nograd = 0  # use_reentrant=True forwards running now (under no_grad)
        self._checkpoint_patches: list[tuple[str, Any]] = []
        generator = getattr(_checkpoint, "_checkpoint_without_reentrant_generator", None)
        if generator is not None:
            def without_reentrant(fn: Callable, *args: Any, **kwargs: Any) -> Iterator[None]:
                if self._writer is not None and self._training_now():
                    _refuse_selective(generator, fn, args, kwargs)
                # torch's early stop ends a recomputation inside the operator that saves the last
                # activation needed, which may be in the middle of a recorded call: off while
                # recording, the recomputation runs the whole function, every call completing
                with _checkpoint.set_checkpoint_early_stop(False):
                    yield from generator(self._wrap_checkpointed(fn, reentrant=False), *args, **kwargs)
            self._patch_checkpoint("_checkpoint_without_reentrant_generator", without_reentrant)
        function = getattr(_checkpoint, "CheckpointFunction", None)
        if function is not None:
            wrap = partial(self._wrap_checkpointed, reentrant=True)
            self._patch_checkpoint("CheckpointFunction", _Reentrant(function, wrap))

    def _patch_checkpoint(self, name: str, value: Any) -> None:
        self._checkpoint_patches.append((name, getattr(_checkpoint, name)))
        setattr(_checkpoint, name, value)

    def _recompute_exit(self) -> None:
        for name, original in reversed(getattr(self, "_checkpoint_patches", [])):
            setattr(_checkpoint, name, original)
        self._checkpoint_patches = []

    def _wrap_checkpointed(self, fn: Callable, *, reentrant: bool) -> Callable:
        """``fn`` as run by the recorded checkpoint: its recomputation (and, reentrant, its
        forward under no_grad) with the forward pass's capture on. A checkpoint outside a
        recorded training step (evaluation, another model) gets ``fn`` as it is."""
        if self._writer is None or not self._training_now():
            return fn
        owner = self._module_stack[-1] if getattr(self, "_module_stack", None) else None
        runs = [0]

        def run(*args: Any, **kwargs: Any) -> Any:
            runs[0] += 1
            if reentrant and runs[0] == 1 and not torch.is_grad_enabled():  # the forward
                args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
                with self._checkpointed_forward():
                    return fn(*args, **kwargs)
            with self._recomputation(owner, args, kwargs, forward_only=not reentrant):
                return fn(*args, **kwargs)

        return run

    @contextlib.contextmanager
    def _checkpointed_forward(self) -> Iterator[None]:
        """A reentrant checkpoint's forward, under no_grad: recorded as forward work only."""
        rows = self._vector_rows
        first = len(rows) if rows is not None else 0
        self._checkpointed_nograd += 1
        try:
            yield
        finally:
            self._checkpointed_nograd -= 1
            if rows is not None:
                for row in rows[first:]:
                    row["passes"] = ["forward"]

    @contextlib.contextmanager
    def _recomputation(self, owner: str | None, args: tuple, kwargs: dict, *,
                       forward_only: bool) -> Iterator[None]:
        """Run a checkpointed function's recomputation in the backward pass as forward work: the
        forward pass's capture of parameter products, activation products and (iteration 0)
        vector work on, the GEMM watch attributing GEMMs as in a forward pass. The capture is on
        exactly as in the forward pass, so the recomputation remakes the same saved tensors."""
        if self._writer is None or not self.model.training or not torch.is_grad_enabled():
            yield
            return
        model_batch = self._model_batch
        self._recomputing += 1
        self._param_products_on(self.model, (), {})
        self._act_on(self.model, ())
        self._vector_begins(self.model, args, kwargs)
        rows = self._vector_rows if self._vector_mode is not None else None
        first = len(rows) if rows is not None else 0
        if owner is not None and rows is not None:
            self._module_stack.append(owner)
        try:
            yield
        finally:
            if owner is not None and rows is not None and self._module_stack:
                self._module_stack.pop()
            self._vector_ends(self.model, args, None)
            self._act_off(self.model, args, None)
            self._param_products_off(self.model, args, None)
            self._recomputing -= 1
            self._model_batch = model_batch
            if rows is not None and forward_only:  # autograd never runs back through it
                for row in rows[first:]:
                    row["passes"] = ["forward"]
