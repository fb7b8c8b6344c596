"""Comparison of runs: meta-test mean with 95 % CI error bars, one bar per run, values written on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloop.plots.runs import PALETTE, RunData, metric_label, pyplot, save


def plot_comparison(runs: list[RunData], path: Path) -> Path | None:
    runs = [r for r in runs if r.result]
    if not runs:
        return None
    metrics = {r.metric for r in runs}
    if len(metrics) > 1:
        raise ValueError(f"cannot compare runs scored with different metrics ({', '.join(sorted(metrics))})")
    plt = pyplot()
    label, scale = metric_label(runs[0].metric)
    mean = np.array([r.result["mean"] for r in runs]) * scale
    ci = np.array([r.result["ci95"] for r in runs]) * scale
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(runs) + 1.6))
    y = np.arange(len(runs))
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(runs))]
    ax.barh(y, mean, xerr=ci, color=colors, alpha=0.85, capsize=5, height=0.6)
    for yi, m, c in zip(y, mean, ci, strict=True):
        ax.text(m + c, yi, f"  {m:.2f} ± {c:.2f}", va="center", fontsize=9)
    ax.set_yticks(y, [f"{r.label}\n({r.result['episodes']} episodes)" for r in runs], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(f"meta-test {label}")
    ax.set_xlim(0, float((mean + ci).max()) * 1.3)
    ax.grid(axis="y", visible=False)
    ax.set_title("Meta-test comparison (error bars: 95% CI)")
    fig.tight_layout()
    return save(fig, path)
