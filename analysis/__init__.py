"""Tidy frames, plotly figures, self-contained HTML reports, Pareto fronts and design-space sweeps
(``analysis.sweep``, on Dask). ``import analysis`` loads neither plotly nor dask."""

from .pareto_front import pareto, pareto_mask

__all__ = ["pareto", "pareto_mask"]
