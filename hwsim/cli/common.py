"""Helpers shared by the command-line modules: progress bars and tables on the terminal."""

from __future__ import annotations

import sys
from typing import Any


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="it", disable=None, file=sys.stderr, leave=False)


def _print_frame(df: Any) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
        print(df.to_string())
