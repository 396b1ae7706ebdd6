"""File digests: what seals a trace's iteration files to its manifest (format 5, numpy only).

An iteration file is a zip archive: member data, and around it the *structure*: a local header
before each member's data, the central directory and the end records. A file's digest is the
SHA-256 of its structure: every byte of the file in file order except the members' data, each
skipped span replaced by its start and end offsets (two little-endian uint64). The structure holds
each member's name, size and CRC-32, so the digest covers the data too: readers check every member's
bytes against its CRC-32 (``zipfile`` on every read, ``Iteration._verify_members`` on opening), and a
member changed after recording either fails its CRC-32 or was re-saved with a new one, which changes
the digest. Computing it reads the headers only (one small read per member and the file's tail, what
opening the file reads anyway), not the data: microseconds per member whatever the file's size.
Together, CRC-32s and digest cover every byte: a byte changed anywhere, an array re-saved with valid
CRCs, a file copied over another are refused. The digest guards against changes, not against a
forger, who can rewrite the manifest too.

The writer stamps every member with the zip epoch (1980-01-01 00:00), so a file's bytes, its digest
and the manifest depend on the recorded data only. It records each file's digest when it writes the
file and puts the table in ``manifest.json`` (``files``) every time it writes the manifest (first,
and at close: both atomically).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import TraceFormatError

FIRST_SEALED_VERSION = 5  # the first format whose manifest holds ``files``
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # every member's date: the earliest a zip can hold
_LOCAL_HEADER_BYTES = 30  # a local header's fixed part; its name and extra field follow
_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FILE_RE = re.compile(r"^iter-\d{8}(-\d{8})?\.(masks|counts)\.npz$")


def write_npz(f: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """What ``numpy.savez`` writes (stored ``.npy`` members, zip64, no pickles), every member dated
    :data:`ZIP_EPOCH` instead of now: the same arrays give the same bytes."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def structure_digest(f: IO[bytes], zf: zipfile.ZipFile) -> str:
    """SHA-256 (64 hex digits) of an open archive's bytes outside its members' data (module doc);
    ``f`` is the archive's file opened for reading, ``zf`` the ``ZipFile`` over it."""
    size = f.seek(0, 2)
    spans = []
    for info in zf.infolist():
        f.seek(info.header_offset)
        head = f.read(_LOCAL_HEADER_BYTES)
        if len(head) < _LOCAL_HEADER_BYTES:
            continue  # a truncated file: hashed as it is (and refused by the reader's own checks)
        n_name, n_extra = struct.unpack("<HH", head[26:30])
        start = min(info.header_offset + _LOCAL_HEADER_BYTES + n_name + n_extra, size)
        spans.append((start, min(start + info.compress_size, size)))
    h = hashlib.sha256()
    at = 0
    for start, end in sorted(spans):
        _hash_range(f, h, at, start)
        h.update(struct.pack("<QQ", start, end))
        at = max(at, end)
    _hash_range(f, h, at, size)
    return h.hexdigest()


def _hash_range(f: IO[bytes], h: Any, start: int, end: int) -> None:
    f.seek(start)
    while start < end:
        chunk = f.read(min(_CHUNK, end - start))
        if not chunk:
            return
        h.update(chunk)
        start += len(chunk)


def file_digest(path: Path) -> str:
    """The digest of the ``.npz`` file at ``path`` (reads its headers only)."""
    with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
        return structure_digest(f, zf)


def check_files_field(files: Any, file: Path, version: int) -> None:
    """The manifest's ``files`` table: ``{iteration file name: digest}``, present from format 5 on."""
    if version < FIRST_SEALED_VERSION:
        if files is not None:
            raise TraceFormatError(file, "files", f"a files table in a version {version} manifest",
                                   f"none before format {FIRST_SEALED_VERSION} (which added it)")
        return
    if not isinstance(files, dict):
        found = "nothing (field missing)" if files is None else type(files).__name__
        raise TraceFormatError(file, "files", found,
                               "a JSON object {iteration file name: its digest} (format 5)")
    for name, digest in files.items():
        if not _FILE_RE.match(name):
            raise TraceFormatError(file, "files", f"the name {name[:60]!r}", "iteration file names "
                                   "iter-NNNNNNNN.(masks|counts).npz or iter-FIRST-LAST.counts.npz")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise TraceFormatError(file, f"files.{name}", repr(digest)[:80],
                                   "64 lower-case hex digits (docs/trace-format.md, Digests)")


def check_listing(path: Path, manifest: dict[str, Any], present: list[str]) -> list[str]:
    """The iteration files present against the manifest's ``files``: every listed file is there, and
    every file there is listed, except in an incomplete trace (killed before its manifest was
    rewritten), whose unlisted files are returned (read unsealed). Traces before format 5: none."""
    files = manifest.get("files")
    if files is None:
        return []
    have = set(present)
    gone = sorted(set(files) - have)
    if gone:
        raise TraceFormatError(path / gone[0], "file", "nothing there (listed in manifest.json's files)",
                               "every iteration file the recording wrote; copy the whole trace directory, "
                               "or re-record")
    unlisted = [n for n in present if n not in files]
    if unlisted and manifest.get("complete"):
        raise TraceFormatError(path / unlisted[0], "file", "a file manifest.json's files does not list",
                               "only the files the recording wrote (was it copied in?); remove it, or if it "
                               f"belongs there run `hwsim trace rehash {path}` to record the files as they "
                               "are")
    return unlisted


def check_digest(path: Path, manifest: dict[str, Any], file: Path, zf: zipfile.ZipFile) -> None:
    """An opened iteration file's digest is the one the manifest recorded (when it recorded one)."""
    files = manifest.get("files")
    expected = None if files is None else files.get(file.name)
    if expected is None:
        return
    try:
        with open(file, "rb") as f:
            found = structure_digest(f, zf)
    except OSError as exc:
        raise TraceFormatError(file, "(archive)", f"unreadable data ({exc})",
                               "a complete .npz iteration file") from None
    if found != expected:
        raise TraceFormatError(file, "digest", f"{found[:16]}… (the file changed after recording)",
                               f"{expected[:16]}…, as manifest.json recorded; re-record the trace, or if "
                               f"the file was edited on purpose run `hwsim trace rehash {path}` (it "
                               "validates the trace, then records the files as they are)")


def check_sealable(version: Any, mfile: Path) -> None:
    """Digests are recorded in traces of format 4 (which then becomes 5) and later."""
    if not isinstance(version, int) or version < FIRST_SEALED_VERSION - 1:
        raise TraceFormatError(mfile, "format_version", repr(version),
                               f"{FIRST_SEALED_VERSION - 1} or later to record file digests (older "
                               "formats are read without them); re-record the trace to seal it")


def seal(path: Path) -> tuple[int, list[str]]:
    """Record the digests of a trace's iteration files as they are now in its manifest (atomically),
    without checking them (``hwsim trace rehash`` validates first). A format 4 trace becomes format 5
    (the same format with the table); 1 to 3 are refused. Returns the number of files and the names
    whose digest changed or was missing."""
    from .manifest import MANIFEST_NAME
    from .writer import ITER_GLOB, atomic_write

    mfile = path / MANIFEST_NAME
    doc = json.loads(mfile.read_bytes())
    version = doc.get("format_version")
    check_sealable(version, mfile)
    old = doc.get("files") or {}
    files = {f.name: file_digest(f) for f in sorted(path.glob(ITER_GLOB))}
    changed = [n for n, d in files.items() if old.get(n) != d]
    doc["format_version"] = max(version, FIRST_SEALED_VERSION)
    doc["files"] = files
    text = json.dumps(doc, indent=1).encode()
    atomic_write(mfile, lambda f: f.write(text))
    return len(files), changed


def seal_state(trace: Any) -> str:
    """A few words on how a loaded ``traces.Trace``'s files are sealed, for ``trace info`` and
    ``trace validate``."""
    version = trace.manifest["format_version"]
    if trace.manifest.get("files") is None:
        return f"files not sealed (format {version} records no digests)"
    n = len({trace.file_of(i) for i in trace.iterations})
    if trace.unsealed:
        return (f"{len(trace.unsealed)} of {n} files not sealed (written after the manifest's last "
                "rewrite; the recording did not finish)")
    return f"{n} files sealed by their digests"
