"""Predictions with uncertainty bands on held-out functions (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from metaloop.plots.runs import save

Predictor = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def plot_bands(path, functions: Sequence[tuple[Tensor, Tensor, Callable[[Tensor], Tensor]]],
               learners: dict[str, Predictor], x_range: tuple[float, float] = (-5.0, 5.0)) -> None:
    """One panel per (support_x, support_y, true_fn) row and learner column: mean ± 2 std.

    ``learners[name](support_x, support_y, grid_x) -> (mean, var)`` on ``[n, 1]`` tensors.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = torch.linspace(*x_range, 200).unsqueeze(-1)
    rows, cols = len(functions), len(learners)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for r, (sx, sy, fn) in enumerate(functions):
        for c, (name, predict) in enumerate(learners.items()):
            ax = axes[r][c]
            with torch.no_grad():
                mean, var = predict(sx, sy, grid)
            m, s = mean[:, 0].numpy(), var[:, 0].sqrt().numpy()
            g = grid[:, 0].numpy()
            ax.plot(g, fn(grid)[:, 0].numpy(), "k--", lw=1, label="truth")
            ax.plot(g, m, "C0", lw=1.5, label="mean")
            ax.fill_between(g, m - 2 * s, m + 2 * s, color="C0", alpha=0.25, label="±2 std")
            ax.scatter(sx[:, 0].numpy(), sy[:, 0].numpy(), c="C3", s=14, zorder=3, label="support")
            ax.set_ylim(-6, 6)
            if r == 0:
                ax.set_title(name)
            if r == 0 and c == 0:
                ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    save(fig, path, dpi=110)
