"""NaN/inf handling (stop with the last good checkpoint kept, or skip the update) and gradient clipping."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from metaloop.engine.checkpoint import read_checkpoint
from metaloop.engine.trainer import Trainer, TrainOptions
from metaloop.tasks.regression import LinearFamily, RegressionSampler
from tests.engine.tiny import TinyMAML


class PoisonedAt(TinyMAML):
    """Meta-loss turns NaN at the given meta-iterations (counted by calls)."""

    def __init__(self, model, bad: set[int]):
        super().__init__(model, inner_lr=0.01)
        self.bad, self.calls = bad, 0

    def meta_loss(self, batch):
        self.calls += 1
        loss = super().meta_loss(batch)
        return loss * float("nan") if self.calls in self.bad else loss


def trainer(tmp_path, bad, **options) -> Trainer:
    torch.manual_seed(0)
    algo = PoisonedAt(nn.Linear(1, 1), bad)
    tasks = RegressionSampler(LinearFamily(), shots=4, queries=4)
    opt = torch.optim.Adam(algo.parameters(), lr=0.01)
    options = TrainOptions(iterations=20, meta_batch=2, checkpoint_every=10, **options)
    return Trainer(algo, tasks, opt, options, run_dir=tmp_path)


def test_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    t = trainer(tmp_path, {15})
    with pytest.raises(FloatingPointError, match="meta-loss is nan at iteration 15; lower the learning rate "
                                                 "or enable grad_clip, or set on_nonfinite=skip"):
        t.run()
    weights, state = read_checkpoint(tmp_path / "checkpoints")
    assert state["iteration"] == 10 and all(torch.isfinite(w).all() for w in weights.values())


def test_skip_leaves_parameters_and_optimizer_untouched(tmp_path):
    t = trainer(tmp_path, {3, 4}, on_nonfinite="skip")
    snapshots = {}
    t.callback = lambda it, loss, r: snapshots.__setitem__(it, [p.detach().clone() for p in t.params])
    history = t.run()
    assert history.skipped == [3, 4] and math.isnan(history.train_loss[2])
    for a, b in zip(snapshots[2], snapshots[4], strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(snapshots[4][0], snapshots[5][0])
    assert t.optimizer.state[t.params[0]]["step"] == 18  # two of twenty updates skipped


def test_gradient_clipping_scales_to_the_max_norm():
    torch.manual_seed(0)
    algo = TinyMAML(nn.Linear(1, 1).double(), inner_lr=0.01)
    tasks = RegressionSampler(LinearFamily(), shots=4, queries=4, dtype=torch.float64)
    before = [p.detach().clone() for p in algo.parameters()]
    opt = torch.optim.SGD(algo.parameters(), lr=1.0)
    t = Trainer(algo, tasks, opt, TrainOptions(iterations=1, meta_batch=3, grad_clip=0.01))
    # the same batch the trainer will draw, for the reference gradient
    batch = tasks.sample_batch(3, t.generator.clone_state())
    ref = torch.autograd.grad(algo.meta_loss(batch), list(algo.parameters()))
    norm = torch.sqrt(sum((g ** 2).sum() for g in ref))
    assert norm > 0.01
    loss, reported, applied = t.step()
    assert applied and reported == pytest.approx(float(norm), rel=1e-12)
    for p, p0, g in zip(algo.parameters(), before, ref, strict=True):
        torch.testing.assert_close(p0 - p.detach(), g * (0.01 / norm), rtol=1e-6, atol=1e-12)
