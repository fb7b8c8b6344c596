"""Gradient preprocessing for coordinate-wise learned optimizers.

Gradients span many orders of magnitude across coordinates and over training, which an LSTM with
bounded activations cannot read directly. Andrychowicz et al. (2016), Appendix A, feed each
coordinate as the pair (log-magnitude, sign):

    (log|g| / p, sign(g))     if |g| >= exp(-p)
    (-1,         exp(p) g)    otherwise

so both features stay in a small range; ``p = 10`` as in the paper. Ravi & Larochelle (2017,
Sec. 3.3) use the same preprocessing for the gradients and losses fed to their meta-learner.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def preprocess_gradients(grad: Tensor, p: float = 10.0) -> Tensor:
    """Map ``grad`` (any shape) to ``[..., 2]`` features (log-magnitude / p, sign)."""
    if p <= 0:
        raise ValueError(f"preprocessing exponent p must be positive, got {p}")
    threshold = math.exp(-p)
    big = grad.abs() >= threshold
    log_part = torch.where(big, grad.abs().clamp_min(threshold).log() / p, -torch.ones_like(grad))
    sign_part = torch.where(big, torch.sign(grad), grad * math.exp(p))
    return torch.stack([log_part, sign_part], dim=-1)
