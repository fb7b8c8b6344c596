"""Conditional and latent neural processes for regression task families.

CNP (Garnelo et al. 2018a, Sec. 2.4): each context pair is encoded, ``r_i = h([x_i, y_i])``, the
codes are averaged (Eq. 4, so the model is invariant to context order and size) and a decoder maps
``[x*, r]`` to a Gaussian ``(mu, sigma)`` per target point. Trained by the target log-likelihood.

NP (Garnelo et al. 2018b, Sec. 2-3): a global latent ``z`` captures function-level uncertainty, so
samples are coherent functions. ``q(z | set)`` is a Gaussian from the mean of encoded pairs;
training maximises the ELBO ``E_{q(z|C,T)} log p(y_T | x_T, z) - KL(q(z|C,T) || q(z|C))`` (Eq. 7),
the context-conditioned posterior standing in for the prior. As in the deterministic-path variant
used as the NP baseline of Kim et al. (2019), the decoder also reads a CNP-style code ``r``
(``deterministic``). Both bound ``sigma`` below (``0.01 + 0.99 softplus``) as in the DeepMind
reference code's 0.1 + 0.9.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _check_context(cx: Tensor) -> None:
    if cx.shape[-2] == 0:
        raise ValueError("the context (support) set is empty; a neural process needs >= 1 point")


class ConditionalNeuralProcess(nn.Module):
    """``forward(cx [B,n,dx], cy [B,n,dy], tx [B,m,dx]) -> (mean, var)`` each ``[B, m, dy]``."""

    def __init__(self, x_dim: int = 1, y_dim: int = 1, hidden: int = 128, min_std: float = 0.01):
        super().__init__()
        self.encoder = mlp([x_dim + y_dim, hidden, hidden, hidden])
        self.decoder = mlp([x_dim + hidden, hidden, hidden, 2 * y_dim])
        self.min_std = min_std

    def forward(self, cx: Tensor, cy: Tensor, tx: Tensor) -> tuple[Tensor, Tensor]:
        _check_context(cx)
        r = self.encoder(torch.cat([cx, cy], dim=-1)).mean(dim=-2, keepdim=True)
        out = self.decoder(torch.cat([tx, r.expand(*tx.shape[:-1], r.shape[-1])], dim=-1))
        mean, raw = out.chunk(2, dim=-1)
        std = self.min_std + (1 - self.min_std) * F.softplus(raw)
        return mean, std.pow(2)

    def loss(self, cx: Tensor, cy: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
        """Mean negative log-likelihood of the targets (Garnelo 2018a, Eq. 5)."""
        mean, var = self(cx, cy, tx)
        return F.gaussian_nll_loss(mean, ty, var, full=True)


class NeuralProcess(nn.Module):
    """Latent-variable NP with an optional deterministic path (see module docstring)."""

    def __init__(self, x_dim: int = 1, y_dim: int = 1, hidden: int = 128, latent: int = 128,
                 deterministic: bool = True, min_std: float = 0.01) -> None:
        super().__init__()
        self.latent_encoder = mlp([x_dim + y_dim, hidden, hidden, hidden])
        self.latent_head = mlp([hidden, hidden, 2 * latent])
        self.det_encoder = mlp([x_dim + y_dim, hidden, hidden, hidden]) if deterministic else None
        extra = hidden if deterministic else 0
        self.decoder = mlp([x_dim + latent + extra, hidden, hidden, 2 * y_dim])
        self.min_std = min_std

    def latent(self, x: Tensor, y: Tensor) -> Normal:
        """``q(z | set)``: Gaussian with sigma in (0.1, 1) as in the reference code."""
        s = self.latent_encoder(torch.cat([x, y], dim=-1)).mean(dim=-2)
        mu, raw = self.latent_head(s).chunk(2, dim=-1)
        return Normal(mu, 0.1 + 0.9 * torch.sigmoid(raw))

    def decode(self, cx: Tensor, cy: Tensor, tx: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` is ``[S, B, latent]``; returns mean and variance ``[S, B, m, dy]``."""
        m = tx.shape[-2]
        parts = [tx.expand(z.shape[0], *tx.shape), z.unsqueeze(-2).expand(*z.shape[:2], m, -1)]
        if self.det_encoder is not None:
            r = self.det_encoder(torch.cat([cx, cy], dim=-1)).mean(dim=-2)
            parts.append(r.unsqueeze(-2).expand(z.shape[0], *r.shape[:1], m, -1))
        mean, raw = self.decoder(torch.cat(parts, dim=-1)).chunk(2, dim=-1)
        std = self.min_std + (1 - self.min_std) * F.softplus(raw)
        return mean, std.pow(2)

    def loss(self, cx: Tensor, cy: Tensor, tx: Tensor, ty: Tensor, samples: int = 1) -> Tensor:
        """Negative ELBO per target point (Eq. 7), with ``z`` reparameterised from q(z | C, T)."""
        _check_context(cx)
        prior = self.latent(cx, cy)
        posterior = self.latent(torch.cat([cx, tx], dim=-2), torch.cat([cy, ty], dim=-2))
        z = posterior.rsample((samples,))
        mean, var = self.decode(cx, cy, tx, z)
        log_lik = Normal(mean, var.sqrt()).log_prob(ty).sum(dim=(-2, -1)).mean(0)  # [B]
        kl = kl_divergence(posterior, prior).sum(-1)  # [B]
        return ((kl - log_lik) / ty.shape[-2]).mean()

    def predictive(self, cx: Tensor, cy: Tensor, tx: Tensor, samples: int = 32,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Samples of ``(mean, var)`` ``[S, B, m, dy]`` with z ~ q(z | C), plus the moment-matched
        predictive variance of the mixture (mean of variances + variance of means)."""
        _check_context(cx)
        prior = self.latent(cx, cy)
        eps = torch.randn((samples, *prior.loc.shape), generator=generator, dtype=cx.dtype)
        means, variances = self.decode(cx, cy, tx, prior.loc + prior.scale * eps)
        mixture_var = variances.mean(0) + means.var(0, unbiased=False)
        return means, variances, mixture_var

    @staticmethod
    def mixture_log_prob(means: Tensor, variances: Tensor, y: Tensor) -> Tensor:
        """log of the equal-weight mixture density over the S samples, per point ``[B, m, dy]``."""
        logp = Normal(means, variances.sqrt()).log_prob(y.unsqueeze(0))
        return torch.logsumexp(logp, dim=0) - math.log(means.shape[0])
