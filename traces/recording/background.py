"""A trace writer's work done behind the training loop: one worker thread, a bounded queue.

The recorder hands each finished iteration (masks as unpacked ``bool`` arrays, counts, weights)
to :class:`BackgroundWriter`; the worker packs the bits and writes the files with the same
:class:`~traces.format.writer.TraceWriter` code, in submission order, so the trace is byte for byte what
a synchronous writer produces. The queue holds at most ``max_pending`` jobs: a training loop that
records faster than the disk writes waits (backpressure) instead of growing memory. An exception
in the worker (a full disk) is raised again in the training thread at the next submit, drain or
close; jobs after it are skipped. The worker only touches numpy arrays and files, never torch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from ..format.writer import TraceWriter

Job = Callable[[TraceWriter], object]


class BackgroundWriter:
    """Runs jobs ``job(writer)`` on one worker thread, in order, behind a bounded queue.

    Args:
        writer: the :class:`TraceWriter` the jobs write with (only the worker touches it).
        max_pending: jobs queued at most before :meth:`submit` blocks (>= 1).
    """

    def __init__(self, writer: TraceWriter, max_pending: int = 2) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.writer = writer
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hwsim-trace-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue ``job``; blocks while ``max_pending`` jobs wait. Raises the worker's error, if any."""
        self.raise_error()
        if self._closed:
            raise RuntimeError("BackgroundWriter.submit after close()")
        self._queue.put(job)

    def drain(self) -> None:
        """Wait until every queued job has run; raise the worker's error, if any."""
        self._queue.join()
        self.raise_error()

    def close(self, *, raise_error: bool = True) -> None:
        """Run what is queued, stop the worker and wait for it (idempotent). ``raise_error``:
        raise the worker's error, if any (False while another exception is on its way out)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if raise_error:
            self.raise_error()

    def raise_error(self) -> None:
        """Raise the exception a job raised in the worker, if one did."""
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:  # after a failure, later files would leave a gap: skip them
                    job(self.writer)
            except BaseException as exc:  # handed to the training thread
                self._error = exc
            finally:
                self._queue.task_done()
