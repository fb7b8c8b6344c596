"""repro_optim: a wall-time bound stops at a --wall-chunk boundary with a checkpoint and a test row,
and --resume goes on from there."""

import json

import pytest

from benchmarks.repro_optim import main
from metaloop.engine.snapshot import read_snapshot

ARGS = ["maml_sinusoid", "--iterations", "7", "--eval-every", "100", "--eval-episodes", "3",
        "--set", "training.meta_batch=2"]


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
