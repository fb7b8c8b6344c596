"""Learning curves: meta-train loss (raw and smoothed) and meta-val metric with its 95 % CI band."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloop.plots.runs import PALETTE, RunData, metric_label, pyplot, save


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    if window <= 1:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def plot_learning_curves(runs: list[RunData], path: Path) -> Path:
    plt = pyplot()
    has_val = any(r.val for r in runs)
    fig, axes = plt.subplots(1, 2 if has_val else 1, figsize=(11 if has_val else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for i, run in enumerate(runs):
        color = PALETTE[i % len(PALETTE)]
        rows = [r for r in run.train if not r.get("skipped")]
        if not rows:
            continue
        it = np.array([r["iteration"] for r in rows])
        loss = np.array([r["loss"] for r in rows], dtype=float)
        ax.plot(it, loss, color=color, alpha=0.18, lw=0.8)
        ax.plot(it, smooth(loss, max(1, len(loss) // 40)), color=color, lw=2, label=run.label)
        skipped = [r["iteration"] for r in run.train if r.get("skipped")]
        if skipped:
            ax.scatter(skipped, [np.nanmax(loss)] * len(skipped), marker="x", color=color,
                       label=f"{run.label}: skipped (NaN/inf)")
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel("meta-train query loss")
    ax.set_title("Meta-training loss (thin: per batch, thick: moving average)")
    positive = all(r["loss"] > 0 for run in runs for r in run.train if not r.get("skipped"))
    if positive:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
    ax.legend(fontsize=8)
    if has_val:
        ax = axes[0, 1]
        label, scale = metric_label(next(r.metric for r in runs if r.val))
        for i, run in enumerate(runs):
            if not run.val:
                continue
            color = PALETTE[i % len(PALETTE)]
            it = np.array([v["iteration"] for v in run.val])
            mean = np.array([v["mean"] for v in run.val]) * scale
            ci = np.array([v["ci95"] for v in run.val]) * scale
            ax.fill_between(it, mean - ci, mean + ci, color=color, alpha=0.18, lw=0)
            ax.plot(it, mean, "o-", color=color, ms=3, lw=1.8, label=run.label)
            best = [v for v in run.val if v.get("best")]
            if best:
                b = best[-1]
                ax.scatter([b["iteration"]], [b["mean"] * scale], s=120, facecolors="none",
                           edgecolors=color, lw=2, zorder=5)
        ax.scatter([], [], s=120, facecolors="none", edgecolors="gray", lw=2,
                   label="selected checkpoint (best meta-val)")
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel(label)
        ax.set_title("Meta-validation (band: 95% CI over episodes)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)
