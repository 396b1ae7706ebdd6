"""The recorder's module hooks, which a copy of the model does not carry.

``copy.deepcopy(model)`` during recording (an EMA teacher, a frozen copy for distillation) and
pickling the whole model (``torch.save(model)`` as a checkpoint) copy each module's hook
dictionaries, and with them the recorder the hooks are bound to: a recorder holds a trace writer,
threads and locks, so the copy died with ``TypeError: cannot pickle '_thread.lock' object``. A
:class:`Hook` copies as :class:`NoHook`: the copy is a plain module, outside the recorded model
(its GEMMs in a training step are refused as a teacher's are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class NoHook:
    """A hook that does nothing: what a recorder's hook becomes in a copy of the model."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


class Hook:
    """A recorder's module hook ``fn``; copied (``copy.deepcopy``, pickle) as a :class:`NoHook`."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __deepcopy__(self, memo: dict) -> NoHook:
        return NoHook()

    def __reduce__(self) -> tuple[type, tuple]:
        return NoHook, ()
