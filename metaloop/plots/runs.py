"""Read what the plots need from run folders, and the shared matplotlib set-up."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from metaloop.engine.logger import read_metrics
from metaloop.io import atomic_write

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


@dataclass
class RunData:
    path: Path
    label: str
    train: list[dict] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    result: dict | None = None

    @property
    def metric(self) -> str:
        if self.result:
            return self.result["metric"]
        return self.val[0]["metric"] if self.val else "metric"


def load_runs(paths: list[str | Path]) -> list[RunData]:
    runs = []
    for p in map(Path, paths):
        if not (p / "metrics.jsonl").is_file() and not (p / "result.json").is_file():
            raise FileNotFoundError(f"{p} is not a metaloop run folder (no metrics.jsonl or result.json)")
        rows = read_metrics(p / "metrics.jsonl")
        result = json.loads((p / "result.json").read_text()) if (p / "result.json").is_file() else None
        label = (result or {}).get("name") or p.name
        runs.append(RunData(p, label, [r for r in rows if r["kind"] == "train"],
                            [r for r in rows if r["kind"] == "val"], result))
    labels = [r.label for r in runs]
    for r in runs:  # two runs of one preset: tell them apart by folder
        if labels.count(r.label) > 1:
            r.label = f"{r.label} ({r.path.name})"
    return runs


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ValueError("plots need matplotlib: pip install 'metaloop[plots]'") from exc
    plt.rcParams.update({"axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
                         "grid.alpha": 0.3, "font.size": 10, "legend.frameon": False})
    return plt


def metric_label(metric: str) -> tuple[str, float]:
    """Axis label and scale: accuracy in percent, MSE as is."""
    if metric == "accuracy":
        return "accuracy (%)", 100.0
    return {"mse": "MSE (lower is better)"}.get(metric, metric), 1.0



def save(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically (a crash never leaves half an image) and close it."""
    path = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
