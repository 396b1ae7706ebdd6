"""The layer workers of a replay: daemon threads that an interrupt does not wait for.

``concurrent.futures.ThreadPoolExecutor`` finishes every queued task when its ``with`` block is
left by an exception, and the interpreter joins its threads at exit: Ctrl-C during a replay then
waits for the layers already handed out (tens of seconds on large layers), and a second Ctrl-C
lands in that join as a threading traceback. Here an exception in the submitting thread cancels
what is queued and returns at once; the threads are daemons, so the process exits without
waiting for the layer being computed. Each task also holds a number of bytes (its layer's
estimated memory) while queued or running: ``reserve`` waits until the bytes in flight plus the
new task's fit ``capacity_bytes`` (a task larger than the capacity runs alone).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_STOP = object()


class LayerPool:
    """``threads`` daemon workers running submitted calls in submission order; a context manager.

    ``capacity_bytes``: the most bytes the queued and running tasks may hold together (``None``:
    no limit). Leaving the ``with`` block normally waits for the tasks and stops the workers;
    leaving it by an exception (Ctrl-C included) cancels the queued tasks and does not wait.
    """

    def __init__(self, threads: int, capacity_bytes: float | None = None) -> None:
        self.capacity_bytes = capacity_bytes
        self.in_flight_bytes = 0.0
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._room = threading.Condition()
        self._cancelled = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"hwsim-layer-{i}", daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[..., Any], *args: Any, held_bytes: float = 0) -> Future:
        """Queue ``fn(*args)``; ``held_bytes`` (taken by ``reserve``) are released when it ends."""
        future: Future = Future()
        self._tasks.put((future, fn, args, held_bytes))
        return future

    def reserve(self, nbytes: float) -> None:
        """Wait until ``nbytes`` fit beside the tasks in flight, then hold them (``release`` gives
        them back): memory the submitting thread allocates for a task before submitting it."""
        with self._room:
            while (self.capacity_bytes is not None and self.in_flight_bytes > 0
                   and self.in_flight_bytes + nbytes > self.capacity_bytes):
                self._room.wait(0.1)
            self.in_flight_bytes += nbytes

    def release(self, nbytes: float) -> None:
        with self._room:
            self.in_flight_bytes -= nbytes
            self._room.notify_all()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            future, fn, args, nbytes = task
            task = None  # the arguments (a layer's masks) are freed with the call
            try:
                if not self._cancelled.is_set() and future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:  # handed to the submitter
                        future.set_exception(exc)
            finally:
                del fn, args
                self.release(nbytes)

    def __enter__(self) -> LayerPool:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is not None:  # an error or an interrupt: drop the queue, leave the running layer
            self._cancelled.set()
        for _ in self._threads:
            self._tasks.put(_STOP)
        if kind is None:
            for t in self._threads:
                t.join()
