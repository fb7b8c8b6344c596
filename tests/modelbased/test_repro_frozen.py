"""repro_frozen --resume: a stopped run resumed ends where an unbroken one does (task stream, RNGs,
optimizer, best state), on tiny synthetic features standing in for the frozen ProtoNet embedding."""

import json

import pytest
import torch

from benchmarks import repro_frozen
from metaloop.data.base import ClassDataset
from metaloop.engine.snapshot import read_snapshot
from metaloop.tasks.episode_set import EpisodeSet


def _features(seed: int, classes: int = 12, per_class: int = 16, dim: int = 6) -> ClassDataset:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    data = centres.repeat_interleave(per_class, 0) + 0.3 * torch.randn(classes * per_class, dim, generator=g)
    targets = torch.arange(classes).repeat_interleave(per_class)
    return ClassDataset(data, targets, tuple(f"c{seed}-{c}" for c in range(classes)), name=f"f{seed}")


@pytest.fixture
def synthetic(monkeypatch):
    """No dataset, no trained encoder: the three feature splits and the test episodes made up here."""
    monkeypatch.setattr(repro_frozen, "feature_splits",
                        lambda args: ([_features(0), _features(1), _features(2)], {}, None))
    monkeypatch.setattr(repro_frozen, "episode_set", lambda *a, **k: None)
    monkeypatch.setattr(repro_frozen, "same_episodes",
                        lambda images, sampler: EpisodeSet.generate(sampler, 4, seed=0))


def _run(out, *extra):
    args = ["mann", "--out", str(out), "--every", "2", "--meta-batch", "2", "--train-queries", "2",
            "--instance-episodes", "2", "--episodes", "4", *extra]
    assert repro_frozen.main(args) == 0
    return read_snapshot(out / "mann.pt"), json.loads((out / "mann.json").read_text())


def test_a_resumed_run_equals_an_unbroken_one(tmp_path, synthetic):
    whole, whole_log = _run(tmp_path / "whole", "--iterations", "6")
    _run(tmp_path / "split", "--iterations", "4")
    resumed, resumed_log = _run(tmp_path / "split", "--iterations", "6", "--resume")
    assert whole.iterations == resumed.iterations == 6
    for key, value in whole.learner.items():
        assert torch.equal(value, resumed.learner[key]), key
    for key, state in whole.optimizer["state"].items():
        assert all(torch.equal(v, resumed.optimizer["state"][key][k]) for k, v in state.items())
    assert whole.best_iteration == resumed.best_iteration
    assert whole_log["result"]["mean"] == resumed_log["result"]["mean"]
    curve = [json.loads(line) for line in (tmp_path / "split" / "mann_curve.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in curve] == [2, 4, 6]
    whole_curve = (tmp_path / "whole" / "mann_curve.jsonl").read_text().splitlines()
    assert [json.loads(line)["loss"] for line in whole_curve] == [row["loss"] for row in curve]
