"""Meta Networks (Munkhdalai & Yu 2017): fast weights generated from loss gradients.

Alg. 1 on top of a shared (slow) embedding ``f`` (Conv-4 by default):

1. Task level: the representation loss ``L_emb`` (contrastive, over support pairs) of the dynamic
   representation learner ``u`` gives gradients ``nabla_Q``; meta learner ``m`` turns them into
   task-level fast weights ``Q*`` (lines 3-6).
2. Example level: each support example's base-learner loss gives ``nabla_i`` w.r.t. the slow weights
   ``W``; meta learner ``d`` turns it into fast weights ``W*_i`` stored in memory ``M``, keyed by
   ``r_i = u(Q, Q*, x_i)`` (lines 7-12).
3. A query reads ``W*`` from memory by softmax attention over cosine similarity to the keys and is
   classified by the base learner with slow and fast weights (lines 14-18).

Every layer with fast weights is *layer-augmented* (Sec. 3.3): ``relu(W x) + relu(W* x)``. Deviations
(documented in docs/model_based.md): fast weights sit on the two layers above the shared embedding
rather than in every layer of separate CNNs, and the attention has a learned inverse temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaloop.algorithms.base import Algorithm, check_no_steps
from metaloop.algorithms.registry import register
from metaloop.modelbased.episode_sequence import (
    check_episode_labels,
    default_embedding,
    embed_pair,
    embedding_dim,
)
from metaloop.modelbased.fast_weights import (
    CoordinatewiseGenerator,
    contrastive_loss,
    per_example_gradients,
)
from metaloop.tasks.episode import EpisodeBatch


@dataclass
class MetaNetState:
    task_fast: Tensor  # Q* [B, R, F]
    keys: Tensor  # r_i [B, S, R]
    memory: tuple[Tensor, Tensor]  # W1*_i [B, S, H, F], W2*_i [B, S, ways, H]


def _linear(weight: Tensor, x: Tensor) -> Tensor:
    """``x [B, N, in]`` by per-task (``[B, out, in]``) or per-example (``[B, N, out, in]``) weights."""
    if weight.dim() == 2:
        return x @ weight.T
    if weight.dim() == 3:
        return torch.einsum("bni,boi->bno", x, weight)
    return torch.einsum("bni,bnoi->bno", x, weight)


@register("metanet")
class MetaNetwork(Algorithm):
    def __init__(self, ways: int, embedding: nn.Module | None = None, *, in_channels: int = 1,
                 image_size: int = 28, input_shape: tuple[int, ...] | None = None,
                 hidden: int = 64, representation: int = 64, margin: float = 1.0) -> None:
        super().__init__()
        if ways < 2:
            raise ValueError(f"ways must be >= 2, got {ways}")
        self.ways, self.margin = ways, margin
        self.embedding = embedding if embedding is not None else default_embedding(in_channels, image_size)
        features = embedding_dim(self.embedding, input_shape)
        self.Q = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(representation, features), a=5**0.5))
        self.W1 = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(hidden, features), a=5**0.5))
        self.W2 = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(ways, hidden), a=5**0.5))
        self.b2 = nn.Parameter(torch.zeros(ways))
        self.task_generator = CoordinatewiseGenerator()  # m
        self.example_generator = CoordinatewiseGenerator()  # d
        self.log_temperature = nn.Parameter(torch.tensor(2.3))  # inverse temperature e^2.3 ≈ 10

    def represent(self, z: Tensor, task_fast: Tensor | None) -> Tensor:
        """Dynamic representation learner ``u``, layer-augmented when ``Q*`` is given."""
        r = F.relu(_linear(self.Q, z))
        return r if task_fast is None else r + F.relu(_linear(task_fast, z))

    def base(self, z: Tensor, w1: Tensor, w2: Tensor, fast: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Base learner ``b``: two layers, each layer-augmented when fast weights are given."""
        h = F.relu(_linear(w1, z))
        if fast is not None:
            h = h + F.relu(_linear(fast[0], z))
        logits = _linear(w2, h) + self.b2
        return logits if fast is None else logits + _linear(fast[1], h)

    def task_state(self, zs: Tensor, ys: Tensor) -> MetaNetState:
        """Alg. 1 lines 2-12 for a batch of support sets ``zs [B, S, F]``, ``ys [B, S]``."""
        create = self.training and torch.is_grad_enabled()
        batch, shots = ys.shape
        (grad_q,) = per_example_gradients(
            lambda w: contrastive_loss(F.relu(_linear(w[0], zs)), ys, self.margin).sum(),
            [self.Q], (batch,), create)
        task_fast = self.task_generator(grad_q)

        def support_loss(w: list[Tensor]) -> Tensor:
            h = F.relu(_linear(w[0], zs))
            logits = _linear(w[1], h) + self.b2
            return F.cross_entropy(logits.flatten(0, 1), ys.flatten(), reduction="sum")

        grad_1, grad_2 = per_example_gradients(support_loss, [self.W1, self.W2], (batch, shots), create)
        memory = (self.example_generator(grad_1), self.example_generator(grad_2))
        return MetaNetState(task_fast, self.represent(zs, task_fast), memory)

    def classify(self, state: MetaNetState, zq: Tensor) -> Tensor:
        """Alg. 1 lines 14-18: attend over support keys, read fast weights, run the base learner."""
        r = self.represent(zq, state.task_fast)
        similarity = F.cosine_similarity(r.unsqueeze(2), state.keys.unsqueeze(1), dim=-1, eps=1e-8)
        attention = (similarity * self.log_temperature.exp()).softmax(dim=-1)  # [B, Q, S]
        fast = tuple(torch.einsum("bqs,bs...->bq...", attention, m) for m in state.memory)
        return self.base(zq, self.W1, self.W2, fast)

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> MetaNetState:
        check_no_steps("MetaNetwork", steps)
        check_episode_labels("MetaNetwork", support_y, self.ways)
        with torch.enable_grad():  # the support-loss gradients are part of the forward pass
            z = self.embedding(support_x).flatten(1)
            state = self.task_state(z.unsqueeze(0), support_y.unsqueeze(0))
        if not self.training:
            state = MetaNetState(state.task_fast.detach(), state.keys.detach(),
                                 tuple(m.detach() for m in state.memory))
        return state

    def predict(self, adapted: MetaNetState, query_x: Tensor) -> Tensor:
        return self.classify(adapted, self.embedding(query_x).flatten(1).unsqueeze(0))[0]

    def batch_logits(self, batch: EpisodeBatch) -> Tensor:
        check_episode_labels("MetaNetwork", batch.support_y, self.ways)
        zs, zq = embed_pair(self.embedding, batch.support_x, batch.query_x, batch_dims=2)
        return self.classify(self.task_state(zs, batch.support_y), zq)

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        return F.cross_entropy(self.batch_logits(batch).flatten(0, 1), batch.query_y.flatten())
