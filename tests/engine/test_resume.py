"""Resume is exact: a run killed with SIGKILL and resumed writes byte-identical metrics."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from metaloop.engine.checkpoint import read_checkpoint
from metaloop.engine.logger import MetricsLogger
from metaloop.engine.trainer import Trainer, TrainOptions
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.regression import sinusoid_tasks
from tests.engine.tiny import TinyMAML

REPO = Path(__file__).resolve().parents[2]

TINY = """
name: tiny
tasks: {family: sinusoid, shots: 5, queries: 5}
model: {name: mlp, hidden: [16]}
algorithm: {name: "tests.engine.tiny:TinyMAML", inner_lr: 0.02}
training: {iterations: 200, meta_batch: 4, lr: 0.003, scheduler: step, step_size: 50,
           val_every: 50, val_episodes: 10, checkpoint_every: 20}
evaluation: {episodes: 20, steps: [0, 1]}
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "metaloop", *args]


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1", "PYTHONPATH": str(REPO)}


def test_kill_9_then_resume_is_bit_identical(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    full, killed = tmp_path / "full", tmp_path / "killed"
    reference = subprocess.Popen(cli("train", str(config), "--out", str(full)), cwd=REPO, env=env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = subprocess.Popen(cli("train", str(config), "--out", str(killed)), cwd=REPO, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.time() + 60
    while not pointer.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.05)  # let it write a few metric lines past the checkpoint, then kill mid-run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "result.json").exists()
    at = read_checkpoint(killed / "checkpoints")[1]["iteration"]
    assert 20 <= at < 200
    assert reference.wait(timeout=120) == 0, reference.stderr.read()
    done = subprocess.run(cli("train", "--resume", str(killed)), cwd=REPO, env=env(), check=True,
                          capture_output=True, text=True, timeout=120)
    assert f"resuming {killed} from iteration {at}/200" in done.stdout
    a, b = (full / "metrics.jsonl").read_bytes(), (killed / "metrics.jsonl").read_bytes()
    assert a.count(b"\n") == 200 + 4 and a == b
    assert (full / "metrics.csv").read_bytes() == (killed / "metrics.csv").read_bytes()
    assert (full / "checkpoints/best.safetensors").read_bytes() == \
        (killed / "checkpoints/best.safetensors").read_bytes()


class NoisyTinyMAML(TinyMAML):
    """Draws from the torch (dropout), NumPy and Python global RNGs, so resume must restore all three."""

    def meta_loss(self, batch):
        jitter = 1 + 0.1 * np.random.rand() + 0.1 * random.random()
        return super().meta_loss(batch) * jitter


def make_trainer(run_dir: Path, iterations: int = 30, callback=None) -> Trainer:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    algo = NoisyTinyMAML(model, inner_lr=0.02)
    tasks = sinusoid_tasks(shots=5, queries=5)
    opt = torch.optim.Adam(algo.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)
    options = TrainOptions(iterations=iterations, meta_batch=3, seed=5, val_every=10, checkpoint_every=10)
    trainer = Trainer(algo, tasks, opt, options, scheduler=sched, run_dir=run_dir,
                      val_episodes=EpisodeSet.generate(tasks, 5, seed=9), callback=callback)
    return trainer


def test_in_process_resume_restores_every_rng_and_scheduler(tmp_path):
    ref = make_trainer(tmp_path / "ref")
    ref.logger = MetricsLogger(tmp_path / "ref")
    ref_history = ref.run()
    ref.logger.close()

    def crash(it, loss, result):
        if it == 17:
            raise KeyboardInterrupt

    first = make_trainer(tmp_path / "run", callback=crash)
    first.logger = MetricsLogger(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        first.run()
    first.logger.close()
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    np.random.seed(123)  # the resumed process starts with other global RNG states
    random.seed(123)
    torch.manual_seed(123)
    second = make_trainer(tmp_path / "run")
    assert second.resume() == 10
    second.logger = MetricsLogger(tmp_path / "run", resume_iteration=10)
    history = second.run()
    second.logger.close()
    assert history.train_loss == ref_history.train_loss
    assert history.validations == ref_history.validations
    assert (tmp_path / "run/metrics.jsonl").read_bytes() == (tmp_path / "ref/metrics.jsonl").read_bytes()
    for p, q in zip(second.algorithm.parameters(), ref.algorithm.parameters(), strict=True):
        assert torch.equal(p, q)
    # the test can fail: resuming, then scrambling one global RNG, changes the losses
    third = make_trainer(tmp_path / "copy")
    assert third.resume() == 10
    np.random.seed(123)
    assert third.run().train_loss[10:] != ref_history.train_loss[10:]
