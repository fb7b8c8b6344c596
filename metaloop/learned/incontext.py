"""A transformer that learns in context: the support set is its input, not its training data.

Prior-data fitted networks (Müller et al. 2022, Sec. 3-4) and MetaICL (Min et al. 2022) meta-train a
sequence model on many tasks so that, given a task's labelled support pairs and unlabelled queries,
one forward pass predicts the query labels: adaptation is inference, with no weight update.

Two structural choices make it a set learner (PFN Sec. 4.2, Fig. 2):

* no positional encoding, so the prediction is invariant to the order of the support set;
* an attention mask where every token attends to the support tokens and a query additionally only to
  itself, so a query never sees another query (whose label is unknown anyway) and queries are
  predicted independently: adding or removing queries changes nothing.

A support token embeds ``(x, y)``; a query token embeds ``x`` plus a learned "label unknown" vector.
For regression the head outputs a Gaussian (mean, variance) or, with ``output="binned"``, logits over
``bins`` fixed bins of y (PFN's Riemann distribution, :mod:`metaloop.learned.bar_distribution`);
for classification, logits over the ``ways`` labels, which are fed one-hot so the model must read
the label-to-class binding from the support set of each episode.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.learned.bar_distribution import check_bin_edges

OUTPUTS = ("gaussian", "binned", "classification")


def attention_mask(n_support: int, n_query: int, device: torch.device | None = None) -> Tensor:
    """``[L, L]`` boolean mask, True where attention is allowed (``L = n_support + n_query``)."""
    length = n_support + n_query
    allowed = torch.zeros(length, length, dtype=torch.bool, device=device)
    allowed[:, :n_support] = True
    idx = torch.arange(n_support, length, device=device)
    allowed[idx, idx] = True
    return allowed


class Block(nn.Module):
    """Pre-norm transformer block; the mask is passed to scaled dot-product attention."""

    def __init__(self, d_model: int, heads: int, ff: int) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Linear(ff, d_model))

    def forward(self, h: Tensor, allowed: Tensor) -> Tensor:
        b, length, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, length, 3, self.heads, d // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=allowed
        )
        h = h + self.proj(a.transpose(1, 2).reshape(b, length, d))
        return h + self.ff(self.norm2(h))


def standardized_conv4(in_channels: int, d_model: int) -> nn.Sequential:
    """Conv-4 with batch norm (a metric learner's embedding, loadable as ``0.*``), its 64 features
    standardized by a non-affine batch norm, then the default MLP.

    Why: the in-context transformer learns the label binding within 250 iterations on standardized
    frozen embeddings but sat at chance for 800 iterations end to end with the group-norm Conv-4,
    even started from a trained ProtoNet's filters (docs/learned.md): ReLU-pooled features share a
    large common component and the transformer's attention cannot tell images apart at the start.
    Batch statistics mix the images of a meta-batch only in training (as in every BN-trained
    few-shot network); in ``eval()`` each image is embedded alone with the running statistics.
    """
    from metaloop.nets import StandardizedConv4

    standardized = StandardizedConv4(in_channels)  # unpacked: parameter names stay 0.* and 1.*
    features = standardized.embedding_dim
    return nn.Sequential(*standardized, nn.Linear(features, d_model), nn.GELU(), nn.Linear(d_model, d_model))


class InContextTransformer(nn.Module):
    """``forward(support_x, support_y, query_x)`` on ``[tasks, n, ...]`` tensors.

    ``output="gaussian"`` returns ``(mean, variance)`` each ``[tasks, q, y_dim]``;
    ``output="binned"`` returns logits ``[tasks, q, 1, bins]`` over the edges in the ``bin_edges``
    buffer (``y_dim = 1``; the extra axis makes the distribution's shape that of the targets; the
    edges are saved with the weights, set them with :meth:`set_bin_edges`);
    ``output="classification"`` returns logits ``[tasks, q, ways]``. ``x_encoder`` maps a flat batch
    of inputs ``[N, *x_shape]`` to ``[N, d_model]`` (default: a 2-layer MLP on ``x_dim`` features;
    pass e.g. ``Conv4(1, out_features=d_model, norm="group")`` for pixels, or the string ``"conv4"``
    from a config: a Conv-4 with group norm on ``x_dim``-channel 28x28 images. Group norm is per
    example, so no embedding depends on the rest of the episode (batch norm would); without any
    norm a freshly initialised Conv-4 maps every image to almost the same vector (spread 0.03
    against a norm of 0.64, measured), the labels are then all the model can read, and training
    sat at chance.
    """

    def __init__(self, x_dim: int = 1, y_dim: int = 1, *, output: str = "gaussian", ways: int = 5,
                 d_model: int = 64, heads: int = 4, layers: int = 4, ff: int = 128,
                 x_encoder: nn.Module | str | None = None, min_std: float = 1e-3,
                 bins: int = 100) -> None:
        super().__init__()
        if x_encoder == "conv4":
            from metaloop.nets import Conv4

            x_encoder = Conv4(x_dim, out_features=d_model, norm="group")
        elif x_encoder == "conv4_bn":
            x_encoder = standardized_conv4(x_dim, d_model)
        elif isinstance(x_encoder, str):
            raise ValueError(f"x_encoder must be a module, None, 'conv4' or 'conv4_bn', got {x_encoder!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if output == "binned" and bins < 2:
            raise ValueError(f"bins must be >= 2 for output='binned' (the outer two carry the "
                             f"tails), got {bins}; PFNs use ~100 to 1000")
        if output == "binned" and y_dim != 1:
            raise ValueError(f"output='binned' predicts one target (y_dim=1) over one set of bin "
                             f"edges, got y_dim={y_dim}; use output='gaussian' for vector targets")
        self.output = output
        self.bins = bins
        self.ways = ways
        self.min_std = min_std
        self.x_encoder = x_encoder or nn.Sequential(
            nn.Linear(x_dim, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )
        label_dim = ways if output == "classification" else y_dim
        self.y_encoder = nn.Linear(label_dim, d_model)
        self.unknown = nn.Parameter(torch.zeros(d_model))
        self.blocks = nn.ModuleList(Block(d_model, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        out = {"classification": ways, "gaussian": 2 * y_dim, "binned": bins}[output]
        self.head = nn.Linear(d_model, out)
        if output == "binned":  # NaN until set from prior samples (see set_bin_edges)
            self.register_buffer("bin_edges", torch.full((bins + 1,), math.nan))

    @property
    def has_bin_edges(self) -> bool:
        return self.output == "binned" and bool(torch.isfinite(self.bin_edges).all())

    def set_bin_edges(self, edges: Tensor) -> None:
        """Fix the bins, e.g. to ``quantile_bin_edges(prior_y, bins)`` (PFN: quantiles of the prior)."""
        if self.output != "binned":
            raise ValueError(f"bin edges are for output='binned'; this model outputs {self.output!r}")
        edges = check_bin_edges(edges)
        if edges.numel() != self.bins + 1:
            raise ValueError(f"{self.bins} bins need {self.bins + 1} edges, got {edges.numel()}; "
                             f"build them with quantile_bin_edges(y, {self.bins})")
        self.bin_edges.copy_(edges)

    def _embed_x(self, x: Tensor) -> Tensor:
        b, n = x.shape[:2]
        return self.x_encoder(x.reshape(b * n, *x.shape[2:])).view(b, n, -1)

    def forward(self, support_x: Tensor, support_y: Tensor, query_x: Tensor):
        if support_x.shape[1] == 0:
            raise ValueError("the support set is empty; an in-context learner needs >= 1 example")
        if self.output == "classification":
            support_y = F.one_hot(support_y, self.ways).to(support_x.dtype)
        s, q = support_x.shape[1], query_x.shape[1]
        support = self._embed_x(support_x) + self.y_encoder(support_y)
        query = self._embed_x(query_x) + self.unknown
        h = torch.cat([support, query], dim=1)
        allowed = attention_mask(s, q, h.device)
        for block in self.blocks:
            h = block(h, allowed)
        out = self.head(self.norm(h[:, s:]))
        if self.output == "classification":
            return out
        if self.output == "binned":
            return out.unsqueeze(-2)
        mean, raw = out.chunk(2, dim=-1)
        std = self.min_std + F.softplus(raw)
        return mean, std.pow(2)
