"""Frozen-embedding datasets keep example order, so fixed episodes address the same examples."""

import pytest
import torch
from torch import nn

from metaloop.data.base import ClassDataset
from metaloop.data.features import embed_dataset, feature_dim, same_episodes
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler


def _images(classes: int = 6, per_class: int = 4) -> ClassDataset:
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (classes * per_class, 1, 8, 8), generator=g, dtype=torch.uint8)
    targets = torch.arange(classes).repeat_interleave(per_class)
    return ClassDataset(data, targets, [f"c{i}" for i in range(classes)], name="tiny")


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(1)
        self.fc = nn.Linear(64, 3)

    def forward(self, x):
        return self.fc(self.norm(x).flatten(1))


def test_embedding_is_per_image_in_eval_mode_and_restores_training_mode():
    images, enc = _images(), Encoder()
    enc.norm.running_mean.fill_(0.3)
    enc.train()
    feats = embed_dataset(images, enc, batch_size=5)  # batches of 5: a batch-statistics bug would show
    assert enc.training and feats.data.shape == (24, 3) and feature_dim(feats) == 3
    enc.eval()
    with torch.no_grad():
        expected = enc(images.data.float() / 255)
    torch.testing.assert_close(feats.data, expected)
    assert feats.class_names == images.class_names and torch.equal(feats.targets, images.targets)


def test_same_episodes_reads_the_same_examples_from_the_features():
    images = _images()
    flat = ClassDataset(images.data.flatten(1).float() / 255, images.targets, images.class_names)
    episodes = EpisodeSet.generate(FewShotSampler(images, 3, 1, 2), 5, seed=3)
    moved = same_episodes(episodes, FewShotSampler(flat, 3, 1, 2))
    for a, b in zip(episodes, moved, strict=True):
        torch.testing.assert_close(a.support_x.flatten(1), b.support_x)
        torch.testing.assert_close(a.query_x.flatten(1), b.query_x)
        assert torch.equal(a.query_y, b.query_y)


def test_same_episodes_refuses_other_examples_or_shapes():
    images = _images()
    episodes = EpisodeSet.generate(FewShotSampler(images, 3, 1, 2), 2, seed=0)
    shuffled = ClassDataset(images.data, images.targets.flip(0), images.class_names)
    with pytest.raises(ValueError, match="same order"):
        same_episodes(episodes, FewShotSampler(shuffled, 3, 1, 2))
    with pytest.raises(ValueError, match="sampler is"):
        same_episodes(episodes, FewShotSampler(images, 3, 1, 1))
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        feature_dim(images)
