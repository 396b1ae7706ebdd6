"""Helpers shared by the command-line modules: progress bars, tables, output-path checks."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="it", disable=None, file=sys.stderr, leave=False)


def _print_frame(df: Any) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
        print(df.to_string())


def check_output(path: Path, option: str, *, directory: bool = False) -> None:
    """Refuse an output path that cannot be written, before any long work is done.

    The nearest existing ancestor must be a directory where a file can be created (missing
    directories below it are created by the writers); ``path`` itself must not be a directory
    (or, with ``directory``, must not be a file). Raises ValueError with the path and the fix.
    """
    p = Path(path)
    if directory and p.exists() and not p.is_dir():
        raise ValueError(f"{option} {p}: is a file; give a directory")
    if not directory and p.is_dir():
        raise ValueError(f"{option} {p}: is a directory; give a file name")
    parent = p if directory else p.parent
    parent = parent if str(parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {p}: {parent} is a file, not a directory; choose another path")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        why = exc.strerror or exc.__class__.__name__
        raise ValueError(f"{option} {p}: cannot write in {parent} ({why}); "
                         "choose a writable location") from None
