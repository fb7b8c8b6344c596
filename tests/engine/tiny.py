"""A minimal one-step MAML over any module (torch.func), used by the engine's tests through the
config path ``tests.engine.tiny:TinyMAML`` (real algorithms live on other branches)."""

from __future__ import annotations

import torch
from torch.func import functional_call

from metaloop.algorithms.base import Algorithm


class TinyMAML(Algorithm):
    task = "regression"

    def __init__(self, model: torch.nn.Module, inner_lr: float = 0.01, inner_steps: int = 1):
        super().__init__()
        self.model, self.inner_lr, self.inner_steps = model, inner_lr, inner_steps

    def adapt(self, support_x, support_y, *, steps=None):
        params = dict(self.model.named_parameters())
        for _ in range(self.inner_steps if steps is None else steps):
            loss = self.loss(functional_call(self.model, params, (support_x,)), support_y)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=self.training)
            params = {k: v - self.inner_lr * g for (k, v), g in zip(params.items(), grads, strict=True)}
        return params

    def predict(self, params, query_x):
        return functional_call(self.model, params, (query_x,))


class TinyClassifier(Algorithm):
    """Classification learner stub used to test the task-kind check of the config builder."""

    task = "classification"

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model


class TinyOwnNet(Algorithm):
    """A learner that builds its own network (``model: {name: none}``) and takes its task kind."""

    def __init__(self, task: str = "classification", ways: int = 2, width: int = 4):
        super().__init__()
        self.task, self.ways = task, ways
        self.net = torch.nn.Linear(1, width)
