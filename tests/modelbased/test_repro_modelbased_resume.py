"""repro_modelbased --resume: a run stopped after a validation and resumed ends where an unbroken run does."""

import torch

from benchmarks.repro_modelbased import run
from metaloop.config import load_config
from metaloop.engine.snapshot import read_snapshot
from tests.data.conftest import write_fake_omniglot


def _config(root, *extra):
    return load_config("hebbian_omniglot_5w1s", [
        f"tasks.root={root}", "tasks.queries=2", "evaluation.queries=2", "evaluation.episodes=2",
        "training.iterations=6", "training.val_every=2", "training.val_episodes=2", "training.meta_batch=2",
        "training.scheduler=cosine", *extra])


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_resumed_run_equals_an_unbroken_one(tmp_path):
    root = tmp_path / "omniglot"
    write_fake_omniglot(root)
    whole = run(_config(root), float("inf"), None, tmp_path / "whole.json")
    part = run(_config(root), float("inf"), 4, tmp_path / "split.json")  # stops after two validations
    assert not part["complete"] and part["iterations_done"] == 4
    first = read_snapshot(tmp_path / "split.ckpt")
    assert first.iterations == 4 and first.extra["progress"]["chunk"] == 2
    resumed = run(_config(root), float("inf"), None, tmp_path / "split.json", resume=True)

    a, b = read_snapshot(tmp_path / "whole.ckpt"), read_snapshot(tmp_path / "split.ckpt")
    _same(a.learner, b.learner)  # same tasks, same optimizer and scheduler steps
    assert a.scheduler == b.scheduler and a.scheduler["last_epoch"] == 6
    assert a.optimizer["state"].keys() == b.optimizer["state"].keys()
    for k, state in a.optimizer["state"].items():
        _same(state, b.optimizer["state"][k])
    assert [v["iteration"] for v in resumed["validations"]] == [2, 4, 6]
    losses = [[v["train_loss"] for v in log["validations"]] for log in (resumed, whole)]
    assert losses[0] == losses[1]
    assert resumed["best_iteration"] == whole["best_iteration"] in (2, 4, 6)
    assert a.selected_state() is a.best_state  # --init-from and scoring read the selected state
    assert a.info()["iterations"] == whole["best_iteration"] and a.info()["iterations_run"] == 6
    timeless = [{k: v for k, v in log["test"].items() if k != "seconds"} for log in (resumed, whole)]
    assert timeless[0] == timeless[1] and resumed["complete"]


def test_the_scheduler_of_the_preset_is_applied(tmp_path):
    root = tmp_path / "omniglot"
    write_fake_omniglot(root)
    log = run(_config(root), float("inf"), None, tmp_path / "cosine.json")
    lrs = [v["lr"] for v in log["validations"]]
    assert lrs[0] < 2e-3 and lrs[-1] == 0.0 and lrs == sorted(lrs, reverse=True)  # cosine to zero at 6
