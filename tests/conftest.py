"""Shared test fixtures: where the reference material lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIG12 = SHARED / "reference" / "sparseloop_fig12"


@pytest.fixture(scope="session")
def fig12_dir() -> Path:
    if not FIG12.is_dir():
        pytest.fail(f"{FIG12} is missing: CI and developers have ../shared beside the checkout")
    return FIG12
