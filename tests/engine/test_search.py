"""Hyper-parameter search: trials scored on meta-val, meta-test never touched, winner written out."""

from __future__ import annotations

import json

import pytest
import yaml

from metaloop.cli import main
from metaloop.config.presets import load_config

pytest.importorskip("optuna")

TINY = """
name: tiny
tasks: {family: sinusoid, shots: 5, queries: 5}
model: {name: mlp, hidden: [8]}
algorithm: {name: "tests.engine.tiny:TinyMAML", inner_lr: 0.02}
training: {iterations: 12, meta_batch: 2, val_every: 4, val_episodes: 5, checkpoint_every: 12}
evaluation: {episodes: 5}
"""


def test_search_scores_on_meta_val_and_writes_the_winner(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "space.yaml").write_text("training.lr: {log: [1.0e-4, 3.0e-2]}\n"
                                         "algorithm.inner_lr: {choice: [0.0, 0.02]}\n")
    out = tmp_path / "search"
    assert main(["train", str(tmp_path / "tiny.yaml"), "--search", str(tmp_path / "space.yaml"),
                 "--trials", "3", "--out", str(out)]) == 0
    summary = json.loads((out / "search.json").read_text())
    assert len(summary["trials"]) == 3 and summary["direction"] == "minimize"
    for trial in summary["trials"]:
        run = out / f"trial_{trial['number']:03d}"
        assert not (run / "result.json").exists()  # meta-test never evaluated during the search
        vals = [json.loads(x)["mean"] for x in (run / "metrics.jsonl").read_text().splitlines()
                if '"val"' in x]
        assert trial["value"] == min(vals)
        lr = yaml.safe_load((run / "config.yaml").read_text())["training"]["lr"]
        assert lr == trial["params"]["training.lr"]
    assert summary["best_value"] == min(t["value"] for t in summary["trials"])
    best = load_config(str(out / "best.yaml"))
    assert best.training.lr == summary["best_params"]["training.lr"] and best.name == "tiny_best"
    assert best.algorithm.args["inner_lr"] == summary["best_params"]["algorithm.inner_lr"]


def test_bad_space_is_refused(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "space.yaml").write_text("training.lr: {between: [1, 2]}\n")
    assert main(["train", str(tmp_path / "tiny.yaml"), "--search", str(tmp_path / "space.yaml")]) == 2
    assert "search space training.lr: expected one of" in capsys.readouterr().err
    (tmp_path / "space.yaml").write_text("algorithm.inner_lrr: {range: [0.0, 0.1]}\n")
    assert main(["train", str(tmp_path / "tiny.yaml"), "--search", str(tmp_path / "space.yaml")]) == 2
    assert "algorithm.inner_lrr: unknown argument" in capsys.readouterr().err
