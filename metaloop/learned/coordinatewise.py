"""Coordinate-wise learned optimizers (Andrychowicz et al. 2016, "Learning to learn by gradient
descent by gradient descent").

An update rule maps each parameter coordinate's gradient (and its own per-coordinate state) to an
update, ``theta_{t+1} = theta_t + g_t`` (Eq. 1). The same small network is shared by all coordinates
(Sec. 2.1, Fig. 3), so one rule applies to any model size. :class:`LSTMRule` is the paper's
two-layer LSTM with 20 hidden units reading preprocessed gradients (App. A); :class:`SGDRule` is the
fixed rule ``g_t = -lr * grad`` that the same machinery must reduce to plain SGD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from metaloop.learned.preprocess import preprocess_gradients


class UpdateRule(nn.Module):
    """``forward(grad [n], state) -> (update [n], state)``, applied to every coordinate alike."""

    def init_state(self, n: int, like: Tensor) -> Any:
        return None

    def forward(self, grad: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError


class SGDRule(UpdateRule):
    """The identity-like rule: update = -lr * grad (no learned parameters)."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr

    def forward(self, grad: Tensor, state: Any) -> tuple[Tensor, Any]:
        return -self.lr * grad, state


class LSTMRule(UpdateRule):
    """Andrychowicz et al. Sec. 3: 2-layer coordinate-wise LSTM, 20 units, output scaled by 0.1.

    Inputs are the (log-magnitude, sign) features of App. A; the hidden state is per coordinate
    (``[n, hidden]``), so the rule is invariant to the order of parameters.
    """

    def __init__(self, hidden: int = 20, layers: int = 2, output_scale: float = 0.1,
                 preprocess_p: float = 10.0) -> None:
        super().__init__()
        self.cells = nn.ModuleList(
            nn.LSTMCell(2 if i == 0 else hidden, hidden) for i in range(layers)
        )
        self.out = nn.Linear(hidden, 1)
        self.hidden = hidden
        self.output_scale = output_scale
        self.preprocess_p = preprocess_p

    def init_state(self, n: int, like: Tensor) -> list[tuple[Tensor, Tensor]]:
        zeros = like.new_zeros(n, self.hidden)
        return [(zeros, zeros) for _ in self.cells]

    def forward(self, grad: Tensor, state: list[tuple[Tensor, Tensor]]):
        x = preprocess_gradients(grad, self.preprocess_p).to(self.out.weight.dtype)
        new_state = []
        for cell, (h, c) in zip(self.cells, state, strict=True):
            h, c = cell(x, (h, c))
            new_state.append((h, c))
            x = h
        return self.output_scale * self.out(x).squeeze(-1), new_state


def detach_state(state: Any) -> Any:
    """Cut the graph between truncation windows (truncated BPTT, Andrychowicz Sec. 2)."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(s) for s in state)
    return state


def unroll(
    rule: UpdateRule,
    loss_fn: Callable[[Tensor], Tensor],
    theta: Tensor,
    state: Any,
    steps: int,
    *,
    differentiable: bool,
) -> tuple[Tensor, Any, Tensor]:
    """Run ``steps`` updates of ``rule`` on ``loss_fn`` from the flat parameters ``theta``.

    Returns ``(theta_T, state_T, losses)`` where ``losses[t] = f(theta_t)`` for t = 0..T-1 plus the
    final ``f(theta_T)`` (so ``steps + 1`` values). With ``differentiable=True`` the losses keep the
    graph to the rule's parameters; the optimizee gradients themselves are treated as inputs, as the
    paper does to avoid second derivatives (Sec. 2.1: gradients are taken not to depend on phi).
    """
    losses = []
    theta = theta if differentiable else theta.detach()
    for _ in range(steps):
        with torch.enable_grad():
            if not theta.requires_grad:
                theta = theta.detach().requires_grad_(True)
            loss = loss_fn(theta)
            (grad,) = torch.autograd.grad(loss, theta, retain_graph=differentiable)
        losses.append(loss if differentiable else loss.detach())
        with torch.set_grad_enabled(differentiable):
            update, state = rule(grad.detach(), state)
            theta = (theta if differentiable else theta.detach()) + update
    with torch.set_grad_enabled(differentiable):
        losses.append(loss_fn(theta))
    return theta, state, torch.stack(losses)


def save_rule(rule: LSTMRule, path) -> None:
    """Write a trained :class:`LSTMRule` (its config and weights) to ``path``."""
    config = {"hidden": rule.hidden, "layers": len(rule.cells),
              "output_scale": rule.output_scale, "preprocess_p": rule.preprocess_p}
    torch.save({"format": "metaloop.lstm_rule.v1", "config": config,
                "state_dict": rule.state_dict()}, path)


def load_rule(path) -> LSTMRule:
    """Read a rule written by :func:`save_rule` (``weights_only``: no code is unpickled)."""
    blob = torch.load(path, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "metaloop.lstm_rule.v1":
        raise ValueError(f"{path} is not a saved LSTM optimizer (expected save_rule's format)")
    rule = LSTMRule(**blob["config"])
    rule.load_state_dict(blob["state_dict"])
    return rule
