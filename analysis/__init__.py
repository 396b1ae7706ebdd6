"""Tidy DataFrames, plotly figures, HTML reports and design-space sweeps over simulation results."""
