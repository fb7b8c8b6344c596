"""A curve: one metric (mean ± 95 % CI over fixed episodes) per method at each x value."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from metaloop.io import atomic_write_json


@dataclass
class Curve:
    x_label: str
    metric: str
    x: list[int]
    #: method name → one ``{"mean", "ci95", "seconds", "episodes"}`` per x value (None where skipped)
    methods: dict[str, list[dict | None]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def add(self, method: str, index: int, result) -> None:
        row = self.methods.setdefault(method, [None] * len(self.x))
        row[index] = {"mean": result.mean, "ci95": result.ci95, "seconds": result.seconds,
                      "episodes": result.episodes}

    def to_dict(self) -> dict:
        return {"x_label": self.x_label, "metric": self.metric, "x": self.x, "methods": self.methods,
                "meta": self.meta}

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Curve:
        d = json.loads(Path(path).read_text())
        return cls(d["x_label"], d["metric"], d["x"], d["methods"], d.get("meta", {}))

    def table(self) -> str:
        """A markdown table, methods as rows and x values as columns (accuracy in %)."""
        scale = 100.0 if self.metric == "accuracy" else 1.0
        head = "| method | " + " | ".join(f"{self.x_label}={x}" for x in self.x) + " |"
        lines = [head, "|" + "---|" * (len(self.x) + 1)]
        for name, row in self.methods.items():
            cells = ["–" if r is None else f"{r['mean'] * scale:.2f} ± {r['ci95'] * scale:.2f}" for r in row]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)
