"""Snapshots: the one file layout of the reproduction scripts, and the older layouts still read."""

import pytest
import torch

from metaloop.engine.snapshot import FORMAT, Snapshot, check_split, data_of, read_snapshot, save_snapshot


def _state(value=1.0):
    return {"w": torch.full((2, 3), value), "b": torch.zeros(3)}


def _same(a, b):
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_round_trip_keeps_every_field(tmp_path):
    snap = Snapshot(
        learner=_state(1.0),
        iterations=12,
        cpu_seconds=3.5,
        optimizer={"state": {}, "lr": 0.1},
        scheduler={"last_epoch": 12},
        best_state=_state(2.0),
        best_iteration=8,
        extra={"rng": torch.arange(4), "log": {"validations": [1, 2]}},
    )
    save_snapshot(tmp_path / "run.ckpt", snap)
    assert torch.load(tmp_path / "run.ckpt", weights_only=False)["format"] == FORMAT
    got = read_snapshot(tmp_path / "run.ckpt")
    _same(got.learner, snap.learner)
    _same(got.selected_state(), snap.best_state)  # scoring and warm starts take the selected state
    assert (got.iterations, got.cpu_seconds, got.optimizer, got.scheduler) == (
        12,
        3.5,
        snap.optimizer,
        snap.scheduler,
    )
    assert got.info() == {"iterations": 8, "iterations_run": 12, "train_cpu_s": 3.5}
    assert torch.equal(got.extra["rng"], torch.arange(4)) and got.extra["log"] == {"validations": [1, 2]}
    no_best = Snapshot(learner=_state(), iterations=5)
    assert no_best.selected_state() is no_best.learner and no_best.info()["iterations"] == 5


def test_older_script_layouts_are_read(tmp_path):
    cur, best = _state(1.0), _state(2.0)
    layouts = {  # what repro_optim / repro_metric / repro_modelbased / repro_frozen wrote before
        "optim.pt": (
            {
                "algorithm": cur,
                "optimizer": {"o": 1},
                "iterations": 7,
                "cpu_seconds": 1.5,
                "scheduler": {"last_epoch": 7},
            },
            cur,
            {"iterations": 7, "iterations_run": 7, "train_cpu_s": 1.5},
        ),
        "metric.ckpt": (
            {
                "model": cur,
                "opt": {"o": 1},
                "sched": {"s": 1},
                "rng": torch.arange(3),
                "state": {"iteration": 6, "cpu_seconds": 2.0, "best": {"iteration": 4}},
                "best_state": best,
            },
            best,
            {"iterations": 4, "iterations_run": 6, "train_cpu_s": 2.0},
        ),
        "modelbased.ckpt": (
            {
                "algorithm": cur,
                "optimizer": {"o": 1},
                "scheduler": None,
                "log": {"v": []},
                "rng": torch.arange(2),
                "progress": {
                    "done": 9,
                    "chunk": 3,
                    "cpu_s": 4.0,
                    "best": 0.9,
                    "best_state": best,
                    "best_iteration": 6,
                },
            },
            best,
            {"iterations": 6, "iterations_run": 9, "train_cpu_s": 4.0},
        ),
        "frozen.pt": (
            {
                "learner": cur,
                "optimizer": {"o": 1},
                "iteration": 5,
                "cpu_s": 0.5,
                "best_acc": 0.8,
                "best_state": best,
            },
            best,
            {"iterations": None, "iterations_run": 5, "train_cpu_s": 0.5},
        ),
        "plain.pt": (cur, cur, {"iterations": None, "iterations_run": None, "train_cpu_s": None}),
    }
    for name, (blob, selected, info) in layouts.items():
        torch.save(blob, tmp_path / name)
        snap = read_snapshot(tmp_path / name)
        _same(snap.selected_state(), selected)
        assert snap.info() == info, name
        if name != "plain.pt":
            assert snap.optimizer == {"o": 1}, name
    metric = read_snapshot(tmp_path / "metric.ckpt")  # what its --resume needs besides the weights
    assert metric.scheduler == {"s": 1} and torch.equal(metric.extra["rng"], torch.arange(3))
    assert metric.extra["state"]["iteration"] == 6
    modelbased = read_snapshot(tmp_path / "modelbased.ckpt")
    assert modelbased.extra["progress"] == {
        "done": 9,
        "chunk": 3,
        "cpu_s": 4.0,
        "best": 0.9,
        "best_iteration": 6,
    }
    assert modelbased.extra["log"] == {"v": []}
    assert read_snapshot(tmp_path / "frozen.pt").extra == {"best_acc": 0.8}


def test_safetensors_weights_are_read(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    safetensors.save_file(_state(3.0), str(tmp_path / "w.safetensors"))
    _same(read_snapshot(tmp_path / "w.safetensors").learner, _state(3.0))


def test_what_is_not_a_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        read_snapshot(tmp_path / "missing.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="expected a state dict or a training checkpoint, got list"):
        read_snapshot(tmp_path / "list.pt")
    torch.save({"config": "x", "epoch": 3}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"no learner state found \(keys: \['config', 'epoch'\]\)"):
        read_snapshot(tmp_path / "other.pt")
    torch.save({"format": "metaloop-snapshot/9", "learner": {}}, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match="written by a newer metaloop"):
        read_snapshot(tmp_path / "newer.pt")


def test_weights_are_refused_on_another_split_of_the_same_dataset():
    snap = Snapshot(learner=_state(), data={"dataset": "omniglot", "split": "vinyals"})
    check_split(snap, {"dataset": "omniglot", "split": "vinyals"})  # the split it was trained on
    check_split(
        snap, {"dataset": "mini_imagenet", "split": "ravi"}
    )  # another dataset: a transfer, not a leak
    check_split(
        Snapshot(learner=_state()), {"dataset": "omniglot", "split": "reptile"}
    )  # unknown: the caller's word
    check_split(snap, None)  # a run without a dataset (regression) has nothing to compare
    lake = Snapshot(learner=_state(), data={"dataset": "omniglot", "split": "lake"})
    check_split(
        lake, {"dataset": "omniglot", "split": "vinyals"}
    )  # Siamese nets on the shared table: disjoint test classes
    with pytest.raises(ValueError, match="split 'lake'"):
        check_split(lake, {"dataset": "omniglot", "split": "reptile"})
    with pytest.raises(
        ValueError,
        match=r"trained on omniglot split 'vinyals', but this run uses split "
        r"'reptile'.*--set tasks.split=vinyals",
    ):
        check_split(snap, {"dataset": "omniglot", "split": "reptile"}, "w.pt")


def test_data_of_a_tasks_config():
    from metaloop.config import load_config

    assert data_of(load_config("maml_omniglot_5w1s").tasks) == {"dataset": "omniglot", "split": "reptile"}
    assert data_of(load_config("maml_sinusoid").tasks) is None  # regression: no classes to leak
