"""``Sweep``: the sweep spec from Python, validated exactly like the YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .run import RunCounts, execute, load
from .spec import FORMAT_VERSION, SweepSpec, spec_from_dict


class Sweep:
    """A sweep built from Python values; the arguments are the YAML spec's keys.

    Either one design (``base``, ``axes``, ``derive``, ``constraints``, ``sampling``) or a list of
    ``designs`` (each a mapping with those keys). Traces are paths or ``{"synthetic": {...}}``
    mappings; ``options`` holds ``passes``, ``iterations``, ``backend``.
    """

    def __init__(self, traces: list[Any], base: str | None = None, axes: dict[str, Any] | None = None, *,
                 derive: dict[str, str] | None = None, constraints: list[str] | None = None,
                 sampling: dict[str, Any] | None = None, designs: list[dict[str, Any]] | None = None,
                 options: dict[str, Any] | None = None, name: str = "sweep") -> None:
        if designs is None:
            one: dict[str, Any] = {"base": base, "axes": axes or {}}
            for key, value in (("derive", derive), ("constraints", constraints), ("sampling", sampling)):
                if value is not None:
                    one[key] = value
            designs = [one]
        elif base is not None or axes is not None:
            raise ValueError("give either base/axes (one design) or designs, not both")
        self.data: dict[str, Any] = {"version": FORMAT_VERSION, "name": name,
                                     "traces": [_plain_trace(t) for t in traces], "designs": designs}
        if options:
            self.data["options"] = options
        self.spec: SweepSpec = spec_from_dict(self.data, source=f"Sweep({name})", text=self.to_yaml())

    def to_yaml(self) -> str:
        """The spec as YAML text (what ``hwsim sweep`` reads)."""
        return yaml.safe_dump(self.data, sort_keys=False)

    def run(self, directory: str | Path, **kwargs: Any) -> RunCounts:
        """Run the points not yet in ``directory`` (keywords: see :func:`analysis.sweep.execute`)."""
        return execute(self.spec, directory, **kwargs)

    @staticmethod
    def load(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(points, rows)`` of a sweep directory."""
        return load(directory)

    def __len__(self) -> int:
        from .points import sample

        return sum(len(sample(d)) for d in self.spec.designs) * len(self.spec.traces)


def _plain_trace(t: Any) -> Any:
    if isinstance(t, (str, Path)):
        return {"path": str(Path(t).resolve())}
    if hasattr(t, "path") and not isinstance(t, dict):  # a loaded traces.Trace
        return {"path": str(Path(t.path).resolve())}
    return t
