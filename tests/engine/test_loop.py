import pytest
import torch
from torch import nn

from metaloop.algorithms.base import Algorithm
from metaloop.engine.loop import meta_train
from metaloop.evaluate import evaluate
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.regression import LinearFamily, RegressionSampler


class OneStepLine(Algorithm):
    """y = w0 x + w1 adapted by one gradient step: a minimal MAML for testing the loop."""

    task = "regression"

    def __init__(self, lr: float = 0.02):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([2.5, -2.0]))
        self.lr = lr

    def adapt(self, support_x, support_y, *, steps=None):
        w = self.w
        for _ in range(1 if steps is None else steps):
            loss = self.loss(support_x * w[0] + w[1], support_y)
            (g,) = torch.autograd.grad(loss, w, create_graph=self.training)
            w = w - self.lr * g
        return w

    def predict(self, w, query_x):
        return query_x * w[0] + w[1]


def test_meta_train_improves_and_keeps_best():
    tasks = RegressionSampler(LinearFamily(slope=(1.0, 2.0), intercept=(0.0, 1.0)), shots=5, queries=5)
    val = EpisodeSet.generate(tasks, 50, seed=1)
    algo = OneStepLine()
    before = evaluate(algo, val).mean
    history = meta_train(algo, tasks, iterations=150, meta_batch=8, lr=0.05, val_episodes=val,
                         val_every=25, seed=0)
    after = evaluate(algo, val).mean
    assert after < before / 5
    assert history.best_value == pytest.approx(after)
    assert history.best_value == min(v for _, v, _ in history.validations)
    assert len(history.train_loss) == 150
    # meta-learned initialisation sits inside the task distribution (slope 1..2, intercept 0..1)
    w = algo.w.detach()
    assert 0.8 < float(w[0]) < 2.2 and -0.3 < float(w[1]) < 1.3


def test_meta_train_is_reproducible_and_stops_on_nan():
    tasks = RegressionSampler(LinearFamily(), shots=5, queries=5)
    a, b = OneStepLine(), OneStepLine()
    ha = meta_train(a, tasks, iterations=20, meta_batch=4, seed=3)
    hb = meta_train(b, tasks, iterations=20, meta_batch=4, seed=3)
    assert ha.train_loss == hb.train_loss and torch.equal(a.w, b.w)
    with pytest.raises(FloatingPointError, match="lower the learning rate or enable grad_clip"):
        meta_train(OneStepLine(lr=1e30), tasks, iterations=5, meta_batch=4)


def test_early_stopping():
    tasks = RegressionSampler(LinearFamily(), shots=5, queries=5)
    val = EpisodeSet.generate(tasks, 10, seed=2)
    algo = OneStepLine()
    history = meta_train(algo, tasks, iterations=400, meta_batch=2, lr=0.0, val_episodes=val,
                         val_every=10, patience=2)
    assert history.stopped_early and len(history.validations) == 3 and history.best_iteration == 10
