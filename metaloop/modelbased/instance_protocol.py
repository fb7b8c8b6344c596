"""Santoro et al. (2016) evaluation: accuracy by how many times a class has been presented.

Table 1 of the paper reports, over sequences of e.g. 5 classes x 10 instances in random order with
labels shuffled per episode, the accuracy on the 1st, 2nd, 3rd, 4th, 5th and 10th presentation of a
class: the 1st is chance (the label has never been shown), later ones measure one-shot binding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metaloop.metrics import mean_ci95
from metaloop.modelbased.episode_sequence import shuffle_support
from metaloop.tasks.episode import EpisodeBatch


def presentation_index(labels: Tensor) -> Tensor:
    """For ``labels [B, T]``, the 1-based count of each label up to and including position t."""
    onehot = torch.nn.functional.one_hot(labels).cumsum(dim=1)
    return onehot.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def accuracy_by_instance(logits: Tensor, labels: Tensor, instances=(1, 2, 3, 4, 5, 10)
                         ) -> dict[int, float]:
    """Accuracy of per-step predictions ``logits [B, T, ways]`` grouped by presentation index."""
    correct = logits.argmax(-1) == labels
    index = presentation_index(labels)
    out = {}
    for n in instances:
        mask = index == n
        if mask.any():
            out[n] = correct[mask].float().mean().item()
    return out


def accuracy_by_instance_ci(logits: Tensor, labels: Tensor, instances=(1, 2, 3, 4, 5, 10)
                            ) -> dict[int, tuple[float, float]]:
    """Like :func:`accuracy_by_instance` but per episode first, then mean ± 95 % CI (in %) over
    episodes, so the table can carry an interval like every other row. Episodes in which a
    presentation index never occurs are left out of that index's mean."""
    correct = (logits.argmax(-1) == labels).double()
    index = presentation_index(labels)
    out = {}
    for n in instances:
        mask = (index == n).double()
        present = mask.sum(1) > 0
        if present.any():
            per_episode = 100 * (correct * mask).sum(1)[present] / mask.sum(1)[present]
            out[n] = mean_ci95(per_episode)
    return out


@torch.no_grad()
def instance_logits(mann, batch: EpisodeBatch, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Run MANN over each episode's support set as one shuffled sequence (query sets unused):
    the per-step logits ``[B, T, ways]`` (each made before that step's label is shown) and the
    labels in the order shown."""
    was_training = mann.training
    mann.eval()
    try:
        x, y = shuffle_support(batch.support_x, batch.support_y, generator)
        features = mann.embedding(x.flatten(0, 1)).flatten(1).view(*y.shape, -1)
        logits = mann.read_sequence(features, y).support_logits
    finally:
        mann.train(was_training)
    return logits, y


def evaluate_instances(mann, batch: EpisodeBatch, generator: torch.Generator,
                       instances=(1, 2, 3, 4, 5, 10)) -> dict[int, float]:
    """Santoro's table for ``batch``: accuracy by presentation, pooled over its episodes."""
    return accuracy_by_instance(*instance_logits(mann, batch, generator), instances)
