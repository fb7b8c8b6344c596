"""Coordinate-wise learned optimizers (Andrychowicz et al. 2016, "Learning to learn by gradient
descent by gradient descent").

An update rule maps each parameter coordinate's gradient (and its own per-coordinate state) to an
update, ``theta_{t+1} = theta_t + g_t`` (Eq. 1). The same small network is shared by all coordinates
(Sec. 2.1, Fig. 3), so one rule applies to any model size. :class:`LSTMRule` is the paper's
two-layer LSTM with 20 hidden units reading preprocessed gradients (App. A); :class:`SGDRule` is the
fixed rule ``g_t = -lr * grad`` that the same machinery must reduce to plain SGD.

A stationary point of the loss should be a fixed point of the optimizer. An unconstrained LSTM
does not have that property: its output for a zero gradient is a learned constant, so a coordinate
that gets no gradient (a dead ReLU unit's weights) keeps moving by the same amount every step.
:func:`gradient_gate` restores it, coordinate by coordinate (``LSTMRule(gradient_gate=True)``).
"""

from __future__ import annotations

import math
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


def gradient_gate(grad: Tensor, p: float = 10.0) -> Tensor:
    """``min(1, |g| e^p)`` per coordinate: 0 at ``g = 0``, linear below ``|g| = e^-p``, 1 above.

    ``e^-p`` is the threshold of App. A's preprocessing, below which a gradient is read on a linear
    scale; above it the gate is exactly 1 and the rule's update is untouched. Multiplying the update
    by it makes every stationary point a fixed point (``g = 0 => update = 0``) and the update
    continuous in ``g`` at 0.
    """
    return (grad.abs() * math.exp(p)).clamp(max=1.0)


class LSTMRule(UpdateRule):
    """Andrychowicz et al. Sec. 3: 2-layer coordinate-wise LSTM, 20 units, output scaled by 0.1.

    Inputs are the (log-magnitude, sign) features of App. A; the hidden state is per coordinate
    (``[n, hidden]``), so the rule is invariant to the order of parameters. ``gradient_gate``
    multiplies the output by :func:`gradient_gate` of the current gradient, so a coordinate with
    zero gradient is not moved (the LSTM state is still updated); ``False`` is the paper's rule.
    """

    def __init__(self, hidden: int = 20, layers: int = 2, output_scale: float = 0.1,
                 preprocess_p: float = 10.0, gradient_gate: bool = True) -> None:
        super().__init__()
        self.cells = nn.ModuleList(
            nn.LSTMCell(2 if i == 0 else hidden, hidden) for i in range(layers)
        )
        self.out = nn.Linear(hidden, 1)
        self.hidden = hidden
        self.output_scale = output_scale
        self.preprocess_p = preprocess_p
        self.gradient_gate = gradient_gate

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
        update = self.output_scale * self.out(x).squeeze(-1)
        if self.gradient_gate:
            update = update * gradient_gate(grad, self.preprocess_p).to(update.dtype)
        return update, new_state


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
              "output_scale": rule.output_scale, "preprocess_p": rule.preprocess_p,
              "gradient_gate": rule.gradient_gate}
    torch.save({"format": "metaloop.lstm_rule.v1", "config": config,
                "state_dict": rule.state_dict()}, path)


def load_rule(path) -> LSTMRule:
    """Read a rule written by :func:`save_rule` (``weights_only``: no code is unpickled).

    Files written before the gate existed have no ``gradient_gate`` entry and load ungated, as they
    were trained.
    """
    blob = torch.load(path, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "metaloop.lstm_rule.v1":
        raise ValueError(f"{path} is not a saved LSTM optimizer (expected save_rule's format)")
    rule = LSTMRule(**{"gradient_gate": False, **blob["config"]})
    rule.load_state_dict(blob["state_dict"])
    return rule
