"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, NeurIPS 2016).

A query's label distribution is an attention-weighted sum of the support labels (Eq. 1),
``P(y | x, S) = sum_i a(x, x_i) y_i``, with ``a`` a softmax over cosine similarities of the
embeddings (Eq. 2). ``predict`` returns ``log P`` so the cross-entropy of the base class is exactly
the paper's negative log-likelihood of the true label.

Full context embeddings (Sec. 2.1.2 and App. A.1/A.2, ``fce=True``): support embeddings are
re-read by a bidirectional LSTM over the support set, ``g(x_i, S) = h_fwd_i + h_bwd_i + g'(x_i)``,
and the query embedding is refined by K steps of an attention LSTM that reads the support set:
``h_k, c_k = LSTM(f'(x), [h_{k-1}, r_{k-1}], c_{k-1})``, ``h_k += f'(x)``,
``r_k = sum_i softmax(h_k . g(x_i)) g(x_i)``. The "[h, r]" state is fed as ``h + r`` so the LSTM
keeps one hidden size (as in common re-implementations; the paper leaves the width unstated).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.algorithms.registry import register
from metaloop.metric.distances import check_support_labels, cosine_similarity
from metaloop.nets.conv4 import Conv4


@dataclass(frozen=True)
class SupportMemory:
    """What :meth:`MatchingNet.adapt` returns: (context) support embeddings and one-hot labels."""

    embeddings: Tensor
    labels_onehot: Tensor


class SupportContext(nn.Module):
    """``g(x_i, S)``: bidirectional LSTM over the support embeddings plus a skip connection."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, bidirectional=True, batch_first=True)

    def forward(self, g: Tensor) -> Tensor:
        out, _ = self.lstm(g.unsqueeze(0))
        fwd, bwd = out[0].chunk(2, dim=-1)
        return g + fwd + bwd


class AttentionLSTM(nn.Module):
    """``f(x, S)``: K read steps of an LSTM attending over the support embeddings (App. A.1)."""

    def __init__(self, dim: int, steps: int) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"fce_steps must be >= 1, got {steps}")
        self.cell = nn.LSTMCell(dim, dim)
        self.steps = steps

    def forward(self, f: Tensor, g: Tensor) -> Tensor:
        h = torch.zeros_like(f)
        c = torch.zeros_like(f)
        r = torch.zeros_like(f)
        for _ in range(self.steps):
            h_hat, c = self.cell(f, (h + r, c))
            h = h_hat + f
            r = torch.softmax(h @ g.t(), dim=-1) @ g
        return h


@register("matching")
class MatchingNet(Algorithm):
    """Matching Networks around any embedding network (default: Conv-4, batch norm).

    ``embedding_dim`` is needed only with ``fce=True`` (taken from ``backbone.embedding_dim`` if
    present). ``scale`` multiplies the cosines before the softmax; 1 is the paper's kernel.
    """

    def __init__(
        self,
        backbone: nn.Module | None = None,
        fce: bool = False,
        fce_steps: int = 5,
        embedding_dim: int | None = None,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else Conv4(norm="batch")
        self.scale = scale
        self.fce = fce
        if fce:
            dim = embedding_dim or getattr(self.backbone, "embedding_dim", None)
            if dim is None:
                raise ValueError(
                    "fce=True needs the embedding size: pass embedding_dim=... or a backbone with "
                    "an 'embedding_dim' attribute"
                )
            self.support_context = SupportContext(dim)
            self.query_context = AttentionLSTM(dim, fce_steps)

    def embed(self, x: Tensor) -> Tensor:
        z = self.backbone(x)
        return z.flatten(1) if z.dim() > 2 else z

    def adapt(
        self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None
    ) -> SupportMemory:
        check_no_steps("MatchingNet", steps)
        return self.adapt_embedded(self.embed(support_x), support_y)

    def adapt_embedded(self, g: Tensor, support_y: Tensor) -> SupportMemory:
        ways = check_support_labels(support_y)
        if self.fce:
            g = self.support_context(g)
        return SupportMemory(g, F.one_hot(support_y, ways).to(g.dtype))

    def attention(self, memory: SupportMemory, query_x: Tensor) -> Tensor:
        """``a(x, x_i)`` of Eq. 2, ``[n_query, n_support]``; each row sums to 1."""
        return self.attention_embedded(memory, self.embed(query_x))

    def attention_embedded(self, memory: SupportMemory, f: Tensor) -> Tensor:
        if self.fce:
            f = self.query_context(f, memory.embeddings)
        return torch.softmax(self.scale * cosine_similarity(f, memory.embeddings), dim=-1)

    def predict(self, adapted: SupportMemory, query_x: Tensor) -> Tensor:
        """``log P(y | x, S)`` per way (Eq. 1); a softmax of it gives back ``P``."""
        return self.predict_embedded(adapted, self.embed(query_x))

    def predict_embedded(self, adapted: SupportMemory, z_query: Tensor) -> Tensor:
        probs = self.attention_embedded(adapted, z_query) @ adapted.labels_onehot
        return torch.log(probs.clamp_min(1e-12))
