"""repro_optim: a wall-time bound stops at a --wall-chunk boundary with a checkpoint and a test row,
and --resume goes on from there."""

import json

import pytest

from benchmarks.repro_optim import main
from metaloop.engine.snapshot import read_snapshot

ARGS = [
    "maml_sinusoid",
    "--iterations",
    "7",
    "--eval-every",
    "100",
    "--eval-episodes",
    "3",
    "--set",
    "training.meta_batch=2",
]


def _rows(out):
    return [json.loads(line) for line in (out / "maml_sinusoid.jsonl").read_text().splitlines()]


def test_wall_bound_stops_at_a_chunk_boundary_and_resume_finishes(tmp_path):
    out = str(tmp_path)
    main(ARGS + ["--out", out, "--minutes", "0", "--wall-chunk", "3"])  # out of time after one chunk
    assert [r["iterations"] for r in _rows(tmp_path)] == [3]
    assert read_snapshot(tmp_path / "maml_sinusoid.pt").iterations == 3
    main(ARGS + ["--out", out, "--resume"])  # unbounded: runs to --iterations
    rows = _rows(tmp_path)
    assert [r["iterations"] for r in rows] == [3, 7]
    assert all(len(r[k]) == 2 for r in rows for k in r if k.startswith("mse@"))


def test_wall_chunk_below_one_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):  # a chunk of 0 would never advance the run
        main(ARGS + ["--out", str(tmp_path), "--minutes", "1", "--wall-chunk", "0"])
    assert "--wall-chunk must be >= 1" in capsys.readouterr().err


def test_weights_of_another_split_are_refused(tmp_path):
    """A checkpoint records the class split it was trained on; resuming or warm-starting it on
    another split of the same dataset (whose test classes it may have trained on) is refused."""
    from metaloop.engine.snapshot import Snapshot, save_snapshot
    from tests.data.conftest import write_fake_omniglot

    root = tmp_path / "omniglot"
    write_fake_omniglot(root)
    save_snapshot(
        tmp_path / "maml_omniglot_5w1s.pt",
        Snapshot(learner={}, iterations=5, cpu_seconds=1.0, data={"dataset": "omniglot", "split": "vinyals"}),
    )
    args = [
        "maml_omniglot_5w1s",
        "--out",
        str(tmp_path),
        "--set",
        f"tasks.root={root}",
        "--set",
        "tasks.split=lake",
        "--set",
        "tasks.queries=1",
        "--set",
        "tasks.ways=2",
        "--set",
        "model.out_features=2",
        "--set",
        "evaluation.queries=1",
        "--set",
        "evaluation.ways=2",
    ]
    with pytest.raises(
        ValueError, match="trained on omniglot split 'vinyals', but this run uses split 'lake'"
    ):
        main(args + ["--resume"])
    with pytest.raises(ValueError, match="--set tasks.split=vinyals"):
        main(args + ["--init-from", str(tmp_path / "maml_omniglot_5w1s.pt")])
