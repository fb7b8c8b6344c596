"""The CLI end to end, in-process: presets, train → eval → report, bench, errors and --help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from metaloop.cli import build_parser, main

TINY = """# tiny test config
name: tiny
tasks: {family: sinusoid, shots: 5, queries: 5}
model: {name: mlp, hidden: [16]}
algorithm: {name: "tests.engine.tiny:TinyMAML", inner_lr: 0.02}
training: {iterations: 30, meta_batch: 3, lr: 0.003, val_every: 10, val_episodes: 10, checkpoint_every: 10}
evaluation: {episodes: 25, steps: [0, 1, 3]}
"""


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.mark.parametrize("command", ["train", "eval", "presets", "bench", "report"])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0 and command in capsys.readouterr().out


def test_presets_one_line_each(capsys):
    assert main(["presets"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("maml_sinusoid "))
    assert "Finn et al. 2017" in line


def test_show_prints_a_child_preset_and_the_merged_config_that_runs(capsys):
    assert main(["presets", "--show", "maml_omniglot_20w1s"]) == 0
    out = capsys.readouterr().out
    assert "extends: maml_omniglot_5w1s" in out and "# merged with maml_omniglot_5w1s (what runs):" in out
    merged = out.split("(what runs):", 1)[1]
    assert "name: maml_omniglot_20w1s" in merged and "out_features: 20" in merged
    assert "optimizer: adam" in merged  # inherited from the 5-way parent


def test_train_eval_report(config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--set", "training.seed=4"]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["seed"] == 4 and result["episodes"] == 25 and set(result["by_steps"]) == {"0", "1", "3"}
    assert result["by_steps"]["1"]["mean"] == result["mean"]  # TinyMAML's default is one step
    assert result["iterations"] == 30 and result["checkpoint"] == "best.safetensors"
    assert "torch" in result["versions"] and result["train_cpu_seconds"] > 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in lines if x["kind"] == "val"] == [10, 20, 30]
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("kind,iteration,loss")
    capsys.readouterr()
    # eval recomputes exactly the training-time meta-test number from the saved best weights
    assert main(["eval", str(run), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["mean"] == result["mean"] and again["ci95"] == result["ci95"]
    assert main(["eval", str(run), "--episodes", "5", "--checkpoint", "last"]) == 0
    out = capsys.readouterr().out
    assert "over 5 episodes" in out and "before adaptation" in out
    assert main(["eval", str(run), "--calibrate"]) == 2  # a regression run has no logits to scale
    assert "--calibrate fits a temperature to classification logits" in capsys.readouterr().err
    # a second run to compare, then the report
    other = tmp_path / "other"
    assert main(["train", str(config), "--out", str(other), "--set", "training.lr=0.0"]) == 0
    assert main(["report", str(run), str(other), "--out", str(tmp_path / "rep")]) == 0
    for name in ("learning_curves", "adaptation_steps", "comparison"):
        png = (tmp_path / "rep" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # refusing to overwrite a run
    assert main(["train", str(config), "--out", str(run)]) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err


def test_bad_config_stops_before_work_with_one_line(config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--set", "training.optimiser=sgd"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("metaloop train: error: training.optimiser: unknown key in training; allowed:")
    assert "\n" not in err and not run.exists()
    assert main(["train", "no_such_preset"]) == 2
    assert "unknown preset 'no_such_preset'" in capsys.readouterr().err


def test_nan_stops_cleanly_or_skips(config, tmp_path, capsys):
    run = tmp_path / "nan"
    args = ["train", str(config), "--out", str(run), "--set", "algorithm.inner_lr=1e38"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert re.search(r"stopped: meta-loss is (nan|inf) at iteration 1; lower the learning rate", err)
    assert "on_nonfinite=skip" in err
    skip = tmp_path / "skip"
    # skip mode trains through every bad step; the final meta-test of a learner that still diverges
    # at adaptation time is refused with a message, never reported as a (NaN-based) accuracy
    assert main(["train", str(config), "--out", str(skip), "--set", "algorithm.inner_lr=1e38",
                 "--set", "training.on_nonfinite=skip", "--set", "training.val_episodes=0"]) == 1
    assert "predicted NaN/inf on episode 0" in capsys.readouterr().err
    rows = [json.loads(line) for line in (skip / "metrics.jsonl").read_text().splitlines()]
    assert sum(1 for r in rows if r.get("skipped")) == 30


def test_bench_discovers_scripts(tmp_path, monkeypatch, capsys):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench_toy.py").write_text(
        "import sys, json\nprint(json.dumps({'args': sys.argv[1:]}))\n")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "toy", "--json", "--", "--size", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == {"args": ["--json", "--size", "3"]}
    assert main(["bench"]) == 0 and "toy" in capsys.readouterr().out
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'; available: toy" in capsys.readouterr().err


def test_tensorboard_option_needs_the_package(config, tmp_path, capsys):
    try:
        import tensorboard  # noqa: F401
        pytest.skip("tensorboard installed")
    except ImportError:
        pass
    code = main(["train", str(config), "--out", str(tmp_path / "tb"), "--set", "training.tensorboard=true"])
    assert code == 2 and "training.tensorboard needs the tensorboard package" in capsys.readouterr().err
