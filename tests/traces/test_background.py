"""Recording off the training step: batched counts files, a background writer, same bytes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import traces
from traces.format.manifest import FORMAT_VERSION
from traces.format.validate import validate
from traces.format.writer import TraceWriter
from traces.recording.background import BackgroundWriter
from traces.zoo.models import MLP, ResNet

from .killing import kill_after_files, mlp_recording_script


def _train(path, *, background: bool, counts_batch: int, steps: int = 23, every: int = 5,
           mask_samples: int | None = None, model: str = "mlp") -> None:
    torch.manual_seed(0)
    if model == "mlp":
        net = MLP(64, 10, hidden=(32, 16))
        x = torch.relu(torch.randn(16, 64))
    else:
        net = ResNet((3, 8, 8), 10, width=4)
        x = torch.randn(16, 3, 8, 8)
    t = torch.randint(0, 10, (16,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    with traces.record(net, path, every=every, optimizer=opt, mask_samples=mask_samples, seed=0,
                       background=background, counts_batch=counts_batch) as rec:
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), t)
            loss.backward()
            opt.step()
            rec.step(loss=loss.item())


def _files(path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(path.iterdir())}


@pytest.mark.parametrize("model, mask_samples", [("mlp", None), ("resnet", 3)])
def test_background_writer_writes_the_bytes_a_synchronous_writer_writes(tmp_path, model, mask_samples):
    _train(tmp_path / "sync", background=False, counts_batch=4, model=model, mask_samples=mask_samples)
    _train(tmp_path / "bg", background=True, counts_batch=4, model=model, mask_samples=mask_samples)
    sync, bg = _files(tmp_path / "sync"), _files(tmp_path / "bg")
    assert list(sync) == list(bg)
    assert [name for name in sync if sync[name] != bg[name]] == []
    # masks every 5 of 23 steps; the counts-only runs between them, in batches of at most 4
    assert list(sync) == ["iter-00000000.masks.npz", "iter-00000001-00000004.counts.npz",
                          "iter-00000005.masks.npz", "iter-00000006-00000009.counts.npz",
                          "iter-00000010.masks.npz", "iter-00000011-00000014.counts.npz",
                          "iter-00000015.masks.npz", "iter-00000016-00000019.counts.npz",
                          "iter-00000020.masks.npz", "iter-00000021-00000022.counts.npz", "manifest.json"]


def test_batched_counts_read_like_one_file_per_iteration(tmp_path):
    """A format-2 trace with batch files holds the same iterations, counts and metadata as one
    written with a file per iteration (format 1's layout, which the reader keeps reading)."""
    _train(tmp_path / "one", background=False, counts_batch=1)
    _train(tmp_path / "batched", background=True, counts_batch=3)
    one, batched = traces.load(tmp_path / "one"), traces.load(tmp_path / "batched")
    assert one.manifest["format_version"] == batched.manifest["format_version"] == FORMAT_VERSION == 5
    assert len(list((tmp_path / "one").glob("iter-*"))) == 23
    # 5 mask files; runs of 4 counts-only iterations in batches of 3 and 1, and the last 2 in one
    assert len(list((tmp_path / "batched").glob("iter-*"))) == 5 + 4 * 2 + 1
    assert one.iterations == batched.iterations == list(range(23))
    assert one.mask_iterations == batched.mask_iterations == [0, 5, 10, 15, 20]
    c1, b1 = one.counts()
    c2, b2 = batched.counts()
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(b1, b2)
    for a, b in zip(one, batched, strict=True):
        assert a.meta == b.meta and a.has_masks == b.has_masks
    assert validate(batched).iterations == 23


def _set_format_version(trace: Path, version: int) -> None:
    """Rewrite the trace manifest's ``format_version`` (as an older or newer writer would have)."""
    manifest = trace / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["format_version"] = version
    if version < 5:  # format 5 added the files table (digests)
        doc.pop("files", None)
    if version < 4:  # format 4 added the matmul layout convention and the vector_ops table
        doc["layout"].pop("matmul_operands", None)
        doc.pop("vector_ops", None)
    manifest.write_text(json.dumps(doc))


def test_format_1_traces_still_read(tmp_path):
    """A trace as format 1 wrote it (version 1 in the manifest, a file per iteration) loads."""
    _train(tmp_path / "t", background=False, counts_batch=1)
    _set_format_version(tmp_path / "t", 1)
    assert validate(traces.load(tmp_path / "t")).iterations == 23


def test_a_batch_file_in_a_format_1_trace_or_a_bad_batch_is_refused(tmp_path):
    _train(tmp_path / "t", background=False, counts_batch=4)
    _set_format_version(tmp_path / "t", 1)
    with pytest.raises(traces.TraceFormatError, match="one file per iteration in a trace of format_version"):
        traces.load(tmp_path / "t")
    _set_format_version(tmp_path / "t", 2)
    batch = tmp_path / "t" / "iter-00000001-00000004.counts.npz"
    with np.load(batch) as z:
        counts, meta = z["counts"], z["meta"]
    np.savez(batch, counts=counts[:3], meta=meta)  # one iteration short
    tr = traces.load(tmp_path / "t")
    with pytest.raises(traces.TraceFormatError, match=r"iter-00000001-00000004.counts.npz: counts: found "
                                                      r"int64 \(3, 3, 9\); expected int64 \(4, 3, 9\)"):
        tr.iteration(2)
    batch.rename(tmp_path / "t" / "iter-00000004-00000001.counts.npz")
    with pytest.raises(traces.TraceFormatError, match="FIRST < LAST"):
        traces.load(tmp_path / "t")


def test_a_write_error_in_the_background_reaches_the_training_loop(tmp_path, monkeypatch):
    """A full disk in the worker is raised in the training thread (at a later step or at close),
    and the trace it leaves loads with every iteration before the failure."""
    real = TraceWriter.write_iteration

    def failing(self, index, *args, **kwargs):
        if index == 7:
            raise OSError(28, "No space left on device", str(self.path / "iter-00000007.masks.npz"))
        return real(self, index, *args, **kwargs)

    monkeypatch.setattr(TraceWriter, "write_iteration", failing)
    with pytest.raises(OSError, match="No space left on device"):
        _train(tmp_path / "t", background=True, counts_batch=1, every=1, steps=40)
    tr = traces.load(tmp_path / "t")
    assert not tr.complete and tr.iterations == list(range(7))


def test_backpressure_blocks_the_submitter_instead_of_queueing_without_bound(tmp_path):
    writer = TraceWriter(tmp_path / "t")
    release, ran = threading.Event(), []
    worker = BackgroundWriter(writer, max_pending=1)
    worker.submit(lambda w: (release.wait(30), ran.append(1)))  # the worker holds this one
    deadline = time.monotonic() + 30
    while worker._queue.unfinished_tasks and not worker._queue.empty() and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until the worker has taken the first job
    worker.submit(lambda w: ran.append(2))  # fills the queue
    third = threading.Thread(target=worker.submit, args=(lambda w: ran.append(3),))
    third.start()
    third.join(0.3)
    assert third.is_alive()  # blocked: the queue is full
    release.set()
    third.join(30)
    worker.close()
    assert ran == [1, 2, 3]


KILLED = mlp_recording_script("every=0, first=False, counts_batch=8", 10**7)



def test_sigkill_leaves_every_completed_counts_batch(tmp_path):
    path = tmp_path / "killed.trace"
    kill_after_files(KILLED, path, 3)
    files = sorted(path.glob("iter-*.npz"))
    tr = traces.load(path)
    assert not tr.complete
    assert len(tr.iterations) == 8 * len(files)  # every completed batch, whole, and nothing else
    assert tr.iterations == list(range(len(tr.iterations)))
    assert validate(tr).iterations == len(tr.iterations)
    cli = subprocess.run([sys.executable, "-m", "hwsim.cli", "trace", "validate", str(path)],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr


def test_sigterm_during_training_writes_what_was_queued_and_marks_the_trace_incomplete(tmp_path):
    path = tmp_path / "t.trace"
    proc = subprocess.Popen([sys.executable, "-m", "hwsim.cli", "train", "--model", "mlp",
                             "--epochs", "200", "--every", "3", "--out", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(path.glob("iter-*.npz"))) < 4:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the recorder wrote nothing"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 143, proc.stderr.read()
    assert not [f.name for f in path.iterdir() if f.name.startswith(".")]  # no temporaries
    tr = traces.load(path)
    assert not tr.complete and tr.iterations == list(range(len(tr.iterations)))
    assert validate(tr).iterations >= 4
