"""Memory-augmented neural network (Santoro et al. 2016, "One-shot learning with MANNs").

An LSTM controller reads the episode as a sequence of ``(x_t, y_{t-1})`` pairs (Sec. 2.2): the
label of each example arrives one step *after* the example, so the network must bind an input to
its label in the external memory and retrieve it when the class comes back. Memory is read by
content and written by least-recently-used access (:mod:`metaloop.modelbased.memory`). The read
vector feeds the output and the next controller input (Sec. 3.1).

``adapt`` reads the support set as that sequence; its state holds the controller, the memory and the
last support label still to be shown. ``predict`` takes one more step per query from that same state,
each query on its own copy, so queries never see each other (and never a query label).
"""

from __future__ import annotations

import math
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
    one_hot,
    shuffle_support,
)
from metaloop.modelbased.memory import LRUMemory, MemoryState
from metaloop.nets import StandardizedConv4
from metaloop.tasks.episode import EpisodeBatch


@dataclass
class MANNState:
    hidden: tuple[Tensor, Tensor]  # LSTM (h, c), [B, controller]
    memory: MemoryState
    pending_label: Tensor  # one-hot y_{t-1} to show with the next input, [B, ways]
    support_logits: Tensor | None = None  # per-step predictions while reading the support set

    def expand(self, batch: int) -> MANNState:
        h, c = self.hidden
        return MANNState((h.expand(batch, -1), c.expand(batch, -1)), self.memory.expand(batch),
                         self.pending_label.expand(batch, -1))


@register("mann")
class MANN(Algorithm):
    """LSTM controller + LRU memory. Paper sizes: 200 LSTM units, 128 x 40 memory, 4 read heads.

    ``embedding=None`` (or ``"conv4"``) uses a batch-norm Conv-4 embedding of 28x28 images;
    ``"conv4_standardized"`` adds a non-affine batch norm on its features
    (:class:`~metaloop.nets.StandardizedConv4`); pass ``nn.Flatten()`` with ``input_shape`` for the
    paper's flattened-pixel setting. ``key_strength=True`` adds the NTM's learned read sharpness
    (see :meth:`LRUMemory.step`); the default reads exactly as eq. 3. ``initial_key_strength`` sets
    where that sharpness starts: at PyTorch's default (about 1.7) a read spreads over all 128 slots
    and the memory took thousands of iterations to carry any label (docs/model_based.md); starting
    at 10 a matching slot dominates the read from the first iteration.
    """

    def __init__(self, ways: int, embedding: nn.Module | str | None = None, *, in_channels: int = 1,
                 image_size: int = 28, input_shape: tuple[int, ...] | None = None,
                 controller: int = 200, slots: int = 128, memory_dim: int = 40, heads: int = 4,
                 gamma: float = 0.95, support_loss_weight: float = 1.0,
                 key_strength: bool = False, initial_key_strength: float | None = None) -> None:
        super().__init__()
        if ways < 2:
            raise ValueError(f"ways must be >= 2, got {ways}")
        self.ways = ways
        self.embedding = self._build_embedding(embedding, in_channels, image_size)
        features = embedding_dim(self.embedding, input_shape)
        self.memory = LRUMemory(slots, memory_dim, heads, gamma)
        self.controller = nn.LSTMCell(features + ways + heads * memory_dim, controller)
        self.key = nn.Linear(controller, heads * memory_dim)
        self.gate = nn.Linear(controller, heads)  # alpha of eq. 7, one per head
        self.output = nn.Linear(controller + heads * memory_dim, ways)
        # beta_t = 1 + softplus(W h_t) per head (NTM eq. 5); off = Santoro's eq. 3 exactly
        self.strength = nn.Linear(controller, heads) if key_strength else None
        if initial_key_strength is not None:
            if not key_strength:
                raise ValueError("initial_key_strength needs key_strength=True (there is no strength to set)")
            if not initial_key_strength > 1:
                raise ValueError(f"initial_key_strength must be > 1 (beta = 1 + softplus), "
                                 f"got {initial_key_strength}")
            with torch.no_grad():  # beta = 1 + softplus(W h + b) starts near the target for small W h
                self.strength.bias.fill_(math.log(math.expm1(initial_key_strength - 1)))
        self.support_loss_weight = support_loss_weight

    def widen_state(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """A saved state of this MANN with fewer ways, mapped onto this one (e.g. 5-way → 20-way).

        The label enters the controller between the features and the reads, so a plain
        name-and-shape transfer must drop the whole controller input matrix; this keeps its feature
        and read columns and the old labels' columns, and the old classes' output rows. The new
        labels' columns and output rows start at zero: on an episode that uses only the old labels
        the widened model gives the old logits, and each new label's weights get their own
        gradient from the episodes where it appears.
        """
        own = self.state_dict()
        old_ways = state["output.weight"].shape[0]
        if not 2 <= old_ways <= self.ways:
            raise ValueError(f"widen_state maps fewer ways onto {self.ways}; the state has {old_ways}")
        reads = self.memory.heads * self.memory.dim
        features = own["controller.weight_ih"].shape[1] - self.ways - reads
        widened = dict(state)
        w_ih = torch.zeros_like(own["controller.weight_ih"])
        saved = state["controller.weight_ih"]
        if saved.shape[1] != features + old_ways + reads:
            raise ValueError(f"controller.weight_ih {tuple(saved.shape)} does not fit this MANN's "
                             f"{features} features and memory reads (different embedding or memory?)")
        w_ih[:, :features + old_ways] = saved[:, :features + old_ways]
        w_ih[:, features + self.ways:] = saved[:, features + old_ways:]
        widened["controller.weight_ih"] = w_ih
        for name in ("output.weight", "output.bias"):
            grown = torch.zeros_like(own[name])
            grown[:old_ways] = state[name]
            widened[name] = grown
        return widened

    @staticmethod
    def _build_embedding(embedding: nn.Module | str | None, in_channels: int, image_size: int) -> nn.Module:
        if isinstance(embedding, nn.Module):
            return embedding
        if embedding is None or embedding == "conv4":
            return default_embedding(in_channels, image_size)
        if embedding == "conv4_standardized":
            return StandardizedConv4(in_channels, image_size=image_size)
        raise ValueError(f"unknown embedding {embedding!r}; "
                         "use 'conv4', 'conv4_standardized' or an nn.Module")

    def initial_state(self, batch: int, like: Tensor) -> MANNState:
        size = self.controller.hidden_size
        zeros = like.new_zeros(batch, size)
        return MANNState((zeros, zeros.clone()), self.memory.initial_state(batch, like.device, like.dtype),
                         like.new_zeros(batch, self.ways))

    def step(self, state: MANNState, features: Tensor) -> tuple[Tensor, MANNState]:
        """One time step on ``features`` [B, F] with the pending label; returns logits [B, ways]."""
        inputs = torch.cat([features, state.pending_label, state.memory.reads], dim=-1)
        h, c = self.controller(inputs, state.hidden)
        keys = self.key(h).view(-1, self.memory.heads, self.memory.dim)
        strength = None if self.strength is None else 1 + F.softplus(self.strength(h))
        reads, memory = self.memory.step(state.memory, keys, self.gate(h), strength)
        logits = self.output(torch.cat([h, reads], dim=-1))
        return logits, MANNState((h, c), memory, state.pending_label)

    def read_sequence(self, features: Tensor, labels: Tensor, state: MANNState | None = None
                      ) -> MANNState:
        """Present ``(x_t, y_{t-1})`` for a batch of sequences ``features [B, T, F]``, ``labels [B, T]``.

        The returned state carries ``support_logits [B, T, ways]`` (the prediction made at each step,
        before that step's label was shown) and ``y_T`` as the pending label.
        """
        if state is None:
            state = self.initial_state(features.shape[0], features)
        outputs = []
        targets = one_hot(labels, self.ways, features.dtype)
        for t in range(features.shape[1]):
            logits, state = self.step(state, features[:, t])
            state.pending_label = targets[:, t]
            outputs.append(logits)
        state.support_logits = torch.stack(outputs, dim=1)
        return state

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> MANNState:
        check_no_steps("MANN", steps)
        check_episode_labels("MANN", support_y, self.ways)
        features = self.embedding(support_x).flatten(1)
        return self.read_sequence(features.unsqueeze(0), support_y.unsqueeze(0))

    def predict(self, adapted: MANNState, query_x: Tensor) -> Tensor:
        features = self.embedding(query_x).flatten(1)
        logits, _ = self.step(adapted.expand(features.shape[0]), features)
        return logits

    def forward_batch(self, batch: EpisodeBatch) -> tuple[Tensor, Tensor, Tensor]:
        """All tasks at once: the support sequence (shuffled in training), then each query as its
        own next step from the post-support state. Returns query logits ``[T, Q, ways]``, the
        per-step support logits ``[T, S, ways]`` and the support labels in the order shown."""
        sx, sy = batch.support_x, batch.support_y
        check_episode_labels("MANN", sy, self.ways)
        if self.training:
            sx, sy = shuffle_support(sx, sy)
        zs, zq = embed_pair(self.embedding, sx, batch.query_x, batch_dims=2)
        state = self.read_sequence(zs, sy)
        tasks, queries = zq.shape[:2]
        after = MANNState(tuple(t.repeat_interleave(queries, 0) for t in state.hidden),
                          state.memory.repeat_interleave(queries),
                          state.pending_label.repeat_interleave(queries, 0))
        logits, _ = self.step(after, zq.flatten(0, 1))
        return logits.view(tasks, queries, -1), state.support_logits, sy

    def batch_logits(self, batch: EpisodeBatch) -> Tensor:
        return self.forward_batch(batch)[0]

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        """Query loss plus, as in the paper's training, the loss at every support step."""
        logits, support_logits, sy = self.forward_batch(batch)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten())
        if self.support_loss_weight:
            support = F.cross_entropy(support_logits.flatten(0, 1), sy.flatten())
            loss = loss + self.support_loss_weight * support
        return loss
