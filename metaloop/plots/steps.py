"""Meta-test metric against the number of adaptation steps (0 = before adaptation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloop.plots.runs import PALETTE, RunData, metric_label, pyplot, save


def plot_adaptation_steps(runs: list[RunData], path: Path) -> Path | None:
    runs = [r for r in runs if r.result and r.result.get("by_steps")]
    if not runs:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    label, scale = metric_label(runs[0].metric)
    for i, run in enumerate(runs):
        color = PALETTE[i % len(PALETTE)]
        items = sorted((int(k), v) for k, v in run.result["by_steps"].items())
        steps = np.array([k for k, _ in items])
        mean = np.array([v["mean"] for _, v in items]) * scale
        ci = np.array([v["ci95"] for _, v in items]) * scale
        ax.errorbar(steps, mean, yerr=ci, fmt="o-", color=color, capsize=4, lw=2, ms=6, label=run.label)
    ax.set_xlabel("adaptation steps on the support set")
    ax.set_ylabel(f"meta-test {label}")
    episodes = runs[0].result["episodes"]
    ax.set_title(f"Meta-test {label.split(' (')[0]} after k adaptation steps\n"
                 f"(mean ± 95% CI over {episodes} episodes)")
    ticks = sorted({int(k) for r in runs for k in r.result["by_steps"]})
    ax.set_xticks(ticks, [f"{t}\n(before)" if t == 0 else str(t) for t in ticks])
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)
