"""Metrics of a run: JSON lines always (``metrics.jsonl``), a CSV copy, TensorBoard as an option.

Every line is deterministic (no wall-clock values), so a resumed run's file is byte-identical to an
uninterrupted one. On resume, lines written after the checkpoint (the work a kill threw away) are
dropped before training continues.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from metaloop.io import atomic_write_text


def read_metrics(path: Path) -> list[dict]:
    """All complete lines (a line cut by a kill mid-write is ignored)."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


class MetricsLogger:
    def __init__(self, run_dir: Path, resume_iteration: int | None = None, tensorboard: bool = False):
        self.path = run_dir / "metrics.jsonl"
        self.csv_path = run_dir / "metrics.csv"
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume_iteration is not None:
            kept = [r for r in read_metrics(self.path) if r["iteration"] <= resume_iteration]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        elif self.path.exists():
            self.path.unlink()
        self.file = open(self.path, "a")  # noqa: SIM115 (closed in close())
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise ValueError("training.tensorboard needs the tensorboard package: "
                                 "pip install tensorboard") from exc
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, row: dict) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("iteration", "kind") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{row['kind']}/{key}", value, row["iteration"])

    def write_csv(self) -> None:
        """Rewrite ``metrics.csv`` from the JSON lines (one column per key seen)."""
        rows = read_metrics(self.path)
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.csv_path, buffer.getvalue())

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
