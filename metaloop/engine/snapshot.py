"""One resumable file per training run of the reproduction scripts (``benchmarks/repro_*.py``).

The engine's own runs checkpoint as weights + state + a pointer (``checkpoint.py``). The scripts
keep a single file instead: the learner, its optimizer and scheduler, how far the run got, and the
meta-val-selected state. They used to write four different layouts, which every reader had to
guess between. Now they all write :class:`Snapshot`. :func:`read_snapshot` still reads the older
layouts, so the checkpoints kept in ``benchmarks/checkpoints/`` and in users' run folders keep
resuming and scoring.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from metaloop.io import atomic_torch_save

FORMAT = "metaloop-snapshot/1"
#: (dataset, trained split, scored split) whose test classes are never the training classes: Lake's
#: meta-train and meta-val are background alphabets, Vinyals' test alphabets are evaluation ones
#: (checked on the data: 0 shared characters)
DISJOINT_TEST = {("omniglot", "lake", "vinyals")}


@dataclass
class Snapshot:
    """A training run as one script left it.

    ``extra`` holds what only one script needs to resume exactly (its RNG state, its log).
    ``iterations`` and ``cpu_seconds`` are None when the file does not say (plain weights).
    ``data`` names the dataset and class split it was trained on (``{"dataset", "split"}``), so
    that :func:`check_split` can refuse to score or continue it on another split, whose test
    classes may be its training classes.
    """

    learner: dict
    iterations: int | None = None
    cpu_seconds: float | None = None
    optimizer: dict | None = None
    scheduler: dict | None = None
    best_state: dict | None = None
    best_iteration: int | None = None
    extra: dict = field(default_factory=dict)
    data: dict | None = None

    def selected_state(self) -> dict:
        """The state to score or warm-start from: the meta-val-selected one when there is one."""
        return self.learner if self.best_state is None else self.best_state

    def info(self) -> dict:
        """How the selected state was trained, for result files."""
        selected = self.iterations if self.best_state is None else self.best_iteration
        return {"iterations": selected, "iterations_run": self.iterations,
                "train_cpu_s": self.cpu_seconds}


def data_of(tasks) -> dict | None:
    """What :attr:`Snapshot.data` records for a run's ``tasks`` config (None without a dataset)."""
    return {"dataset": tasks.dataset, "split": tasks.split} if tasks.dataset else None


def check_split(snapshot: Snapshot, data: dict | None, source: str = "checkpoint") -> None:
    """Refuse to use weights on a class split other than the one they were trained on. ``data`` is
    the current run's record (as :func:`data_of`); None (no dataset) checks nothing."""
    trained = snapshot.data or {}
    if data is None or trained.get("split") is None:
        return  # nothing to compare
    dataset, split = data["dataset"], data["split"]
    if trained.get("dataset") != dataset or trained["split"] == split:
        return  # another dataset (a transfer), or the same split
    if (dataset, trained["split"], split) in DISJOINT_TEST:
        return
    raise ValueError(
        f"{source} was trained on {trained.get('dataset')} split {trained['split']!r}, but this run uses "
        f"split {split!r}: that split's test classes can be this learner's training classes. Pass "
        f"--set tasks.split={trained['split']} (the split it was trained on)"
    )


def save_snapshot(path: str | os.PathLike, snapshot: Snapshot) -> Path:
    """Write atomically: a run killed mid-write keeps its previous snapshot."""
    return atomic_torch_save(path, {"format": FORMAT, **asdict(snapshot)})


def read_snapshot(path: str | os.PathLike) -> Snapshot:
    """A snapshot, an older script layout, a plain state dict or a safetensors file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return Snapshot(learner=load_file(str(path)))
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict):
        raise ValueError(f"{path}: expected a state dict or a training checkpoint, got {type(blob).__name__}")
    if blob.get("format") == FORMAT:
        fields = {k: v for k, v in blob.items() if k != "format"}
        return Snapshot(**fields)
    if isinstance(blob.get("format"), str):
        raise ValueError(f"{path}: checkpoint format {blob['format']!r} is not {FORMAT!r}; "
                         "it was written by a newer metaloop")
    for layout, read in LEGACY.items():
        if layout(blob):
            return read(blob)
    if blob and all(isinstance(v, torch.Tensor) for v in blob.values()):
        return Snapshot(learner=blob)
    raise ValueError(f"{path}: no learner state found (keys: {sorted(blob)[:8]})")


def _modelbased(blob: dict) -> Snapshot:  # repro_modelbased's .ckpt before snapshots
    progress = dict(blob["progress"])
    best_state = progress.pop("best_state", None)
    return Snapshot(learner=blob["algorithm"], iterations=progress.get("done"),
                    cpu_seconds=progress.get("cpu_s"), optimizer=blob.get("optimizer"),
                    scheduler=blob.get("scheduler"), best_state=best_state,
                    best_iteration=progress.get("best_iteration"),
                    extra={"progress": progress, "log": blob.get("log"), "rng": blob.get("rng")})


def _metric(blob: dict) -> Snapshot:  # repro_metric's .ckpt before snapshots
    state = blob.get("state", {})
    best = state.get("best") or {}
    return Snapshot(learner=blob["model"], iterations=state.get("iteration"),
                    cpu_seconds=state.get("cpu_seconds"), optimizer=blob.get("opt"),
                    scheduler=blob.get("sched"), best_state=blob.get("best_state"),
                    best_iteration=best.get("iteration"), extra={"rng": blob.get("rng"), "state": state})


def _frozen(blob: dict) -> Snapshot:  # repro_frozen's state file before snapshots
    return Snapshot(learner=blob["learner"], iterations=blob.get("iteration"),
                    cpu_seconds=blob.get("cpu_s"), optimizer=blob.get("optimizer"),
                    best_state=blob.get("best_state"), extra={"best_acc": blob.get("best_acc")})


def _optim(blob: dict) -> Snapshot:  # repro_optim's .pt before snapshots
    return Snapshot(learner=blob["algorithm"], iterations=blob.get("iterations"),
                    cpu_seconds=blob.get("cpu_seconds"), optimizer=blob.get("optimizer"),
                    scheduler=blob.get("scheduler"))


#: the layouts the scripts wrote before snapshots, each recognised by its keys
LEGACY = {
    lambda b: "progress" in b and "algorithm" in b: _modelbased,
    lambda b: "model" in b and "state" in b: _metric,
    lambda b: "learner" in b and "best_state" in b: _frozen,
    lambda b: "algorithm" in b: _optim,
}
