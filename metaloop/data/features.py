"""A class-indexed dataset of frozen embeddings, for two-stage learners.

Sequence learners (MANN, in-context transformers) spend thousands of iterations learning to bind a
label to an example before they learn anything about images; with a frozen, pretrained embedding
that phase costs a forward pass per example *once* instead of a conv forward and backward per
episode. ``embed_dataset`` keeps the example order and the class names, so index-based fixed
episode sets drawn from the image dataset address the same examples here (see
:func:`same_episodes`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaloop.data.base import ClassDataset
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler, to_float


@torch.no_grad()
def embed_dataset(dataset: ClassDataset, encoder: nn.Module, *, batch_size: int = 1024,
                  name: str | None = None) -> ClassDataset:
    """``dataset`` with every example replaced by ``encoder(example)`` (float32, ``[n, d]``).

    The encoder runs in eval mode (batch norm uses its running statistics, so an embedding depends
    on its own image only) and its mode is restored afterwards.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = encoder.training
    encoder.eval()
    try:
        device = next((p.device for p in encoder.parameters()), torch.device("cpu"))
        chunks = [encoder(to_float(dataset.data[i:i + batch_size]).to(device)).flatten(1).float().cpu()
                  for i in range(0, len(dataset.data), batch_size)]
    finally:
        encoder.train(was_training)
    features = torch.cat(chunks) if chunks else torch.empty(0, 0)
    return ClassDataset(features, dataset.targets, dataset.class_names,
                        name=name or f"{dataset.name}-features")


def same_episodes(episodes: EpisodeSet, sampler: FewShotSampler) -> EpisodeSet:
    """``episodes`` (index grids into an image dataset) read from ``sampler``'s dataset instead.

    Valid only when that dataset lists the same examples in the same order under the same class
    names, as :func:`embed_dataset` guarantees; checked by class names and example counts.
    """
    if episodes.indices is None:
        raise ValueError("only index-based episode sets can be re-read from another dataset")
    old, new = episodes.source.dataset, sampler.dataset
    if old.class_names != new.class_names or not torch.equal(old.targets, new.targets):
        raise ValueError(f"{new.name!r} does not list the examples of {old.name!r} in the same order")
    shape = (sampler.ways, sampler.shots, sampler.queries)
    src = episodes.source
    if shape != (src.ways, src.shots, src.queries):
        raise ValueError(f"sampler is {shape} (ways, shots, queries) but the episodes are "
                         f"{(src.ways, src.shots, src.queries)}")
    return EpisodeSet(indices=episodes.indices, classes=episodes.classes, source=sampler,
                      seed=episodes.seed)


def feature_dim(dataset: ClassDataset) -> int:
    """Length of one feature vector (what a learner on these features takes as input)."""
    data: Tensor = dataset.data
    if data.dim() != 2:
        raise ValueError(f"{dataset.name}: expected [n, d] features, got shape {tuple(data.shape)}")
    return int(data.shape[1])
