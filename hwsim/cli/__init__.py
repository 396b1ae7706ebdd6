"""The ``hwsim`` command line: ``main.py`` plus one module per verb."""

from __future__ import annotations

from .main import main, parser

__all__ = ["main", "parser"]
