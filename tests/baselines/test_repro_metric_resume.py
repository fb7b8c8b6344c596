"""repro_metric --resume: a run stopped at a validation and resumed ends where an unbroken run does."""

import pytest
import torch

import benchmarks.repro_metric as repro_metric
from metaloop.engine.snapshot import read_snapshot
from tests.data.conftest import write_fake_omniglot


@pytest.fixture
def run(tmp_path, monkeypatch):
    root = tmp_path / "omniglot"
    write_fake_omniglot(root)

    def run_in(folder, *flags):
        monkeypatch.setattr(repro_metric, "RESULTS", tmp_path / folder)
        repro_metric.main(
            [
                "protonet_omniglot_5w1s",
                "--root",
                str(root),
                "--test-episodes",
                "2",
                "--set",
                "tasks.ways=3",
                "--set",
                "tasks.queries=2",
                "--set",
                "training.meta_batch=2",
                "--set",
                "training.val_every=2",
                "--set",
                "training.val_episodes=2",
                "--set",
                "evaluation.ways=3",
                "--set",
                "evaluation.queries=2",
                *flags,
            ]
        )
        return read_snapshot(tmp_path / folder / "protonet_omniglot_5w1s.ckpt")

    return run_in


def test_a_resumed_run_equals_an_unbroken_one(run):
    whole = run("whole", "--iterations", "4")
    first = run("split", "--iterations", "2")
    assert first.iterations == 2 and whole.iterations == 4
    resumed = run("split", "--iterations", "4", "--resume")
    assert resumed.iterations == 4 and [p["iteration"] for p in resumed.extra["state"]["curve"]] == [2, 4]
    for k, v in whole.learner.items():  # same task stream (the saved generator), same optimizer steps
        assert torch.equal(v, resumed.learner[k]), k
    assert resumed.best_iteration == whole.best_iteration in (2, 4)
