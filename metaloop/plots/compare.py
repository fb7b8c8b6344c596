"""Comparison of runs: meta-test mean with its 95 % CI, one row per run (a dot-and-whisker chart).

Dots and whiskers rather than bars: accuracies of good few-shot learners differ by a point or two,
which bars starting at zero hide, and a bar axis cut above zero misleads; here the axis is zoomed
on the intervals and whether two intervals overlap is visible at a glance.
"""

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
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(runs) + 1.7))
    y = np.arange(len(runs))
    for i, (m, c) in enumerate(zip(mean, ci, strict=True)):
        color = PALETTE[i % len(PALETTE)]
        ax.errorbar(m, i, xerr=c, fmt="o", color=color, ms=8, capsize=6, lw=2.2)
        ax.annotate(f"{m:.2f} ± {c:.2f}", (m + c, i), textcoords="offset points", xytext=(8, 0),
                    va="center", fontsize=9)
    lo, hi = float((mean - ci).min()), float((mean + ci).max())
    pad = max(hi - lo, 1e-3 * max(abs(hi), 1.0)) * 0.25
    right = hi + 2.2 * pad + 0.12 * (hi - lo + pad)  # room for the value labels
    if runs[0].metric == "accuracy":
        right = min(right, 100.0 + 2.2 * pad)
    ax.set_xlim(lo - pad, right)
    ax.set_ylim(len(runs) - 0.5, -0.5)
    ax.set_yticks(y, [f"{r.label}\n({r.result['episodes']} episodes)" for r in runs], fontsize=9)
    ax.set_xlabel(f"meta-test {label}")
    ax.grid(axis="y", visible=False)
    better = "lower" if runs[0].metric == "mse" else "higher"
    ax.set_title(f"Meta-test comparison: mean ± 95% CI ({better} is better)")
    fig.tight_layout()
    return save(fig, path)
