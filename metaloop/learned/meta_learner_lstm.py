"""The Ravi & Larochelle (2017) LSTM meta-learner: the learner's parameters are an LSTM cell state.

Sec. 3.1 observes that a gradient step ``theta_t = theta_{t-1} - lr * grad_t`` is the LSTM cell
update ``c_t = f_t * c_{t-1} + i_t * c~_t`` with ``c~_t = -grad_t``, ``f_t = 1`` and ``i_t = lr``;
so the meta-learner *learns* the input gate (a per-coordinate, per-step learning rate) and the
forget gate (a learned weight decay, e.g. to escape a bad point) from the gradient, loss, current
parameter and previous gate value (Eqs. 2-3). The initial cell state ``c_0`` is the learner's meta-
learned initialisation. Sec. 3.3: parameters are shared across coordinates, gradients and losses are
preprocessed as in Andrychowicz et al. and read by a first, ordinary LSTM layer, and the gradient of
the learner's loss is treated as an input (no second derivatives).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from metaloop.learned.preprocess import preprocess_gradients


class MetaLearnerLSTM(nn.Module):
    """Coordinate-wise 2-layer meta-learner: a plain LSTMCell, then the gate layer of Eqs. 2-3."""

    def __init__(self, init_theta: Tensor, hidden: int = 20, preprocess_p: float = 10.0) -> None:
        super().__init__()
        self.c0 = nn.Parameter(init_theta.detach().clone())
        self.lstm = nn.LSTMCell(4, hidden)
        self.forget = nn.Linear(hidden + 2, 1)  # reads [h_t, theta_{t-1}, f_{t-1}]
        self.input = nn.Linear(hidden + 2, 1)  # reads [h_t, theta_{t-1}, i_{t-1}]
        self.hidden = hidden
        self.preprocess_p = preprocess_p
        # Sec. 3.4 / official code: start close to gradient descent, f ~ 1 and a small i.
        with torch.no_grad():
            for gate, lo, hi in ((self.forget, 4.0, 6.0), (self.input, -5.0, -4.0)):
                gate.weight.uniform_(-0.01, 0.01)
                gate.bias.uniform_(lo, hi)

    def init_state(self, tasks: int = 1) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(h, c, f, i)`` of the first layer and the gates, per coordinate (of ``tasks`` learners)."""
        n = self.c0.numel() * tasks
        zeros = self.c0.new_zeros(n, self.hidden)
        return zeros, zeros, self.c0.new_ones(n, 1), self.c0.new_zeros(n, 1)

    def step(self, theta: Tensor, grad: Tensor, loss: Tensor, state):
        """One learner update ``theta_t = f_t * theta_{t-1} - i_t * grad_t`` (Eq. 2).

        ``theta`` and ``grad`` are flat (several learners may be concatenated); ``loss`` is a scalar
        or one value per coordinate (each learner's loss repeated over its coordinates).
        """
        h, c, f_prev, i_prev = state
        g = preprocess_gradients(grad, self.preprocess_p)
        l_feat = preprocess_gradients(loss.expand_as(grad), self.preprocess_p)
        h, c = self.lstm(torch.cat([g, l_feat], dim=-1).to(theta.dtype), (h, c))
        col = theta.unsqueeze(-1)
        f = torch.sigmoid(self.forget(torch.cat([h, col, f_prev], dim=-1)))
        i = torch.sigmoid(self.input(torch.cat([h, col, i_prev], dim=-1)))
        theta = f.squeeze(-1) * theta - i.squeeze(-1) * grad
        return theta, (h, c, f, i)

    def fix_gates(self, lr: float, forget_bias: float = 40.0) -> None:
        """Freeze the rule at plain SGD: ``f = sigmoid(40) = 1`` and ``i = lr`` (used by tests)."""
        if not 0 < lr < 1:
            raise ValueError(f"an input gate is a sigmoid, so lr must be in (0, 1), got {lr}")
        with torch.no_grad():
            self.forget.weight.zero_()
            self.forget.bias.fill_(forget_bias)
            self.input.weight.zero_()
            self.input.bias.fill_(math.log(lr / (1 - lr)))
