"""Report plots of run folders (the ``[plots]`` extra: matplotlib): learning curves, accuracy vs
adaptation steps, and a comparison of runs with 95 % confidence intervals."""

from metaloop.plots.runs import RunData, load_runs

__all__ = ["RunData", "load_runs"]
