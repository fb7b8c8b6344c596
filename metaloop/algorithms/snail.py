"""SNAIL: a simple neural attentive meta-learner (Mishra et al. 2018).

The episode is one sequence: the labelled support examples ``(embed(x_i), onehot(y_i))`` followed by
a query ``(embed(x), 0)``. Temporal convolutions aggregate what came before and causal soft attention
picks out the relevant support examples (Sec. 3); the output at the last position is the query's
prediction. Omniglot architecture (App. B): Attention(64, 32), TC(T, 128), Attention(256, 128),
TC(T, 128), Attention(512, 256), then a 1x1 convolution (a linear layer) to ``ways`` logits.

Each query is classified from the support set alone, as the last position of its own
``[support..., query]`` sequence, exactly as in training with a single query per sequence. Since
the network is causal, that sequence's support positions are the same for every query: they are
computed once per episode and each query adds one position (``extend_sequential``), the same
function as ``sequence_logits`` on the full sequences at a fraction of the cost for many queries.
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
    one_hot,
    shuffle_support,
)
from metaloop.modelbased.snail_blocks import AttentionBlock, TCBlock, extend_sequential
from metaloop.tasks.episode import EpisodeBatch


@dataclass
class SNAILState:
    support: Tensor  # [S, features + ways]: embedded, labelled support sequence


@register("snail")
class SNAIL(Algorithm):
    def __init__(self, ways: int, shots: int, embedding: nn.Module | None = None, *,
                 in_channels: int = 1, image_size: int = 28,
                 input_shape: tuple[int, ...] | None = None, tc_filters: int = 128,
                 attention: tuple[tuple[int, int], ...] = ((64, 32), (256, 128), (512, 256))) -> None:
        super().__init__()
        if ways < 2 or shots < 1:
            raise ValueError(f"need ways >= 2 and shots >= 1, got ways={ways}, shots={shots}")
        if len(attention) != 3:
            raise ValueError("attention takes three (key_size, value_size) pairs, one per block")
        self.ways, self.shots = ways, shots
        self.embedding = embedding if embedding is not None else default_embedding(in_channels, image_size)
        seq_len = ways * shots + 1
        channels = embedding_dim(self.embedding, input_shape) + ways
        layers: list[nn.Module] = []
        for i, (key, value) in enumerate(attention):
            layers.append(AttentionBlock(channels, key, value))
            channels = layers[-1].out_channels
            if i < 2:
                layers.append(TCBlock(channels, seq_len, tc_filters))
                channels = layers[-1].out_channels
        self.blocks = nn.Sequential(*layers)
        self.output = nn.Linear(channels, ways)

    def widen_state(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """A saved state of a SNAIL with fewer ways, mapped onto this one (e.g. 5-way → 20-way).

        More ways change every block's input width (the one-hot label, and the TC blocks get one
        dense block per doubling of the sequence length), so a name-and-shape transfer keeps only
        the embedding. Here every input column that comes from a part both networks have (the
        features, the old labels, each attention block, each old dense block) keeps its trained
        weights; columns fed by the new labels or the new dense blocks, and the new classes' output
        rows, start at zero, and new dense blocks keep this model's initialisation. On a sequence
        that uses only the old labels the widened network gives the old logits.
        """
        old_ways = state["output.weight"].shape[0]
        if not 2 <= old_ways <= self.ways:
            raise ValueError(f"widen_state maps fewer ways onto {self.ways}; the state has {old_ways}")
        own = self.state_dict()
        new_inputs = _input_segments(self._features, self.ways, _describe(own, len(self.blocks)))
        old_inputs = _input_segments(self._features, old_ways, _describe(state, len(self.blocks)))
        widened = {k: v for k, v in state.items() if k.startswith("embedding.")}
        for consumer, segments in new_inputs.items():
            if consumer == "output":
                names = ["weight"]
            elif f"{consumer}.value.weight" in own:
                names = ["query.weight", "key.weight", "value.weight"]
            else:
                names = ["filter.conv.weight", "gate.conv.weight"]
            weights = [f"{consumer}.{n}" for n in names]
            biases = [w[: -len("weight")] + "bias" for w in weights]
            if consumer not in old_inputs:  # a dense block the narrower net did not have
                widened.update({k: own[k] for k in weights + biases})
                continue
            old_at = _offsets(old_inputs[consumer])
            rows = slice(0, old_ways) if consumer == "output" else slice(None)  # new classes: zero rows
            for w, b in zip(weights, biases, strict=True):
                grown = torch.zeros_like(own[w])
                at = 0
                for name, width in segments:
                    if name in old_at:
                        start, old_width = old_at[name]
                        if name != "labels" and old_width != width:
                            raise ValueError(f"{w}: input part {name} is {old_width} wide in the saved "
                                             f"state and {width} here (different architecture?)")
                        grown[rows, at:at + old_width] = state[w][:, start:start + old_width]
                    at += width
                widened[w] = grown
                bias = torch.zeros_like(own[b])
                bias[rows] = state[b]
                widened[b] = bias
        return widened

    @property
    def _features(self) -> int:
        return self.blocks[0].query.in_features - self.ways

    def labelled(self, features: Tensor, labels: Tensor | None) -> Tensor:
        """Append the one-hot label, or zeros for an unlabelled query."""
        if labels is None:
            return F.pad(features, (0, self.ways))
        return torch.cat([features, one_hot(labels, self.ways, features.dtype)], dim=-1)

    def _check(self, support_y: Tensor) -> None:
        check_episode_labels("SNAIL", support_y, self.ways)
        if support_y.shape[-1] != self.ways * self.shots:
            raise ValueError(
                f"SNAIL was built for {self.ways}-way {self.shots}-shot sequences "
                f"({self.ways * self.shots} support examples) but got {support_y.shape[-1]}"
            )

    def classify(self, support: Tensor, queries: Tensor) -> Tensor:
        """``support [T, S, D]`` (or ``[S, D]``: one task), ``queries [T, Q, D]`` (or ``[Q, D]``)
        → logits ``[T, Q, ways]`` (or ``[Q, ways]``): each query appended alone to its task's support."""
        if support.dim() == 2:
            return self.classify(support.unsqueeze(0), queries.unsqueeze(0))[0]
        return self.output(extend_sequential(self.blocks, support, queries)[1])

    def sequence_logits(self, support: Tensor, queries: Tensor) -> Tensor:
        """The reference for ``classify``: one full ``[support..., query]`` sequence per query."""
        if support.dim() == 2:
            return self.sequence_logits(support.unsqueeze(0), queries.unsqueeze(0))[0]
        tasks, n = queries.shape[:2]
        sequence = torch.cat([support.repeat_interleave(n, dim=0), queries.flatten(0, 1).unsqueeze(1)], dim=1)
        return self.output(self.blocks(sequence)[:, -1]).view(tasks, n, -1)

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None) -> SNAILState:
        check_no_steps("SNAIL", steps)
        self._check(support_y)
        return SNAILState(self.labelled(self.embedding(support_x).flatten(1), support_y))

    def predict(self, adapted: SNAILState, query_x: Tensor) -> Tensor:
        return self.classify(adapted.support, self.labelled(self.embedding(query_x).flatten(1), None))

    def batch_logits(self, batch: EpisodeBatch) -> Tensor:
        """Every query of every task after its task's support sequence (support order shuffled in
        training); returns ``[T, Q, ways]``."""
        sx, sy = batch.support_x, batch.support_y
        self._check(sy)
        if self.training:
            sx, sy = shuffle_support(sx, sy)
        zs, zq = embed_pair(self.embedding, sx, batch.query_x, batch_dims=2)
        return self.classify(self.labelled(zs, sy), self.labelled(zq, None))

    def meta_loss(self, batch: EpisodeBatch) -> Tensor:
        return F.cross_entropy(self.batch_logits(batch).flatten(0, 1), batch.query_y.flatten())


def _describe(state: dict[str, Tensor], blocks: int) -> list[tuple[str, int]]:
    """For each block of a saved SNAIL state, its layers that append channels, with their widths:
    an attention block is one layer, a TC block one per dense block."""
    layers = []
    for i in range(blocks):
        name = f"blocks.{i}"
        if f"{name}.value.weight" in state:
            layers.append([(name, state[f"{name}.value.weight"].shape[0])])
            continue
        dense, j = [], 0
        while f"{name}.blocks.{j}.filter.conv.weight" in state:
            dense.append((f"{name}.blocks.{j}", state[f"{name}.blocks.{j}.filter.conv.weight"].shape[0]))
            j += 1
        layers.append(dense)
    return [layer for block in layers for layer in block]


def _input_segments(features: int, ways: int, layers) -> dict[str, list[tuple[str, int]]]:
    """For every layer that reads the growing channel stack (attention, dense block, output), the
    named parts of its input in order: features, labels, then what each earlier layer appended."""
    stack = [("features", features), ("labels", ways)]
    inputs = {}
    for name, width in layers:
        inputs[name] = list(stack)
        stack.append((name, width))
    inputs["output"] = list(stack)
    return inputs


def _offsets(segments: list[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    """``{part: (first column, width)}``."""
    at, offsets = 0, {}
    for name, width in segments:
        offsets[name] = (at, width)
        at += width
    return offsets
