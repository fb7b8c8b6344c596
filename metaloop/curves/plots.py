"""Matplotlib figures for curves and reliability diagrams (matplotlib is the optional ``plots`` extra)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from metaloop.curves.curve import Curve
from metaloop.curves.reliability import ReliabilityDiagram
from metaloop.plots.runs import save


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'metaloop[plots]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curve(curve: Curve, path: str | os.PathLike, title: str | None = None) -> Path:
    """Lines with 95 % CI bands, one per method; log-scaled x for shots."""
    plt = _pyplot()
    scale = 100.0 if curve.metric == "accuracy" else 1.0
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    reference = set(curve.meta.get("reference", []))
    for name, row in curve.methods.items():
        pts = [(x, r) for x, r in zip(curve.x, row, strict=True) if r is not None]
        xs = [x for x, _ in pts]
        mean = [r["mean"] * scale for _, r in pts]
        ci = [r["ci95"] * scale for _, r in pts]
        style = "--" if name in reference else "-o"
        line, = ax.plot(xs, mean, style, label=name, markersize=4)
        ax.fill_between(xs, [m - c for m, c in zip(mean, ci, strict=True)],
                        [m + c for m, c in zip(mean, ci, strict=True)], color=line.get_color(), alpha=0.2)
    if curve.x_label == "shots":
        ax.set_xscale("log")
        ax.set_xlabel("shots per class (K)")
    else:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("adaptation steps")
    ax.set_xticks(curve.x)
    ax.set_xticklabels([str(x) for x in curve.x])
    ax.set_ylabel("accuracy (%)" if curve.metric == "accuracy" else curve.metric)
    episodes = curve.meta.get("episodes")
    ax.set_title(title or f"{curve.metric} vs {curve.x_label} (95 % CI, {episodes} episodes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def plot_reliability(diagrams: Mapping[str, ReliabilityDiagram], path: str | os.PathLike) -> Path:
    """One reliability diagram per method: accuracy per confidence bin against the diagonal."""
    plt = _pyplot()
    n = len(diagrams)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, (name, d) in zip(axes[0], diagrams.items(), strict=True):
        width = 1.0 / d.bins
        centres = [(i + 0.5) * width for i in range(d.bins)]
        filled = d.count > 0
        ax.bar([c for c, f in zip(centres, filled, strict=True) if f], d.accuracy[filled].tolist(),
               width=width, edgecolor="black", linewidth=0.5, label="accuracy")
        low = torch.minimum(d.confidence, d.accuracy)  # the gap spans accuracy ↔ mean confidence
        ax.bar([c for c, f in zip(centres, filled, strict=True) if f],
               (d.confidence - d.accuracy).abs()[filled].tolist(), bottom=low[filled].tolist(),
               width=width, facecolor="none", edgecolor="red", hatch="///", linewidth=0.5,
               label="gap to confidence")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{name}\nECE {d.ece * 100:.1f} %", fontsize=9)
        ax.set_xlabel("confidence")
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save(fig, path)
