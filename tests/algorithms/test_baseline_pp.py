import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.baseline_pp import BaselinePlusPlus
from metaloop.baselines.heads import CosineClassifier


def test_cosine_head_logits_are_scaled_cosines():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 6, generator=g)
    y = torch.arange(5).repeat(2)
    algo = BaselinePlusPlus(nn.Identity(), steps=5, lr=0.1)
    net, head = algo.adapt(x, y)
    assert isinstance(head, CosineClassifier) and head.scale == 2.0  # Chen et al.'s scale for 5 ways
    q = torch.randn(7, 6, generator=g)
    expected = 2.0 * F.cosine_similarity(q[:, None, :], head.weight[None, :, :], dim=-1)
    logits = algo.predict((net, head), q)
    assert torch.allclose(logits, expected, atol=1e-6)
    assert logits.abs().max() <= 2.0 + 1e-6


def test_registered_and_rejects_linear_head():
    assert get_algorithm("baseline_pp") is BaselinePlusPlus
    with pytest.raises(ValueError, match="cosine"):
        BaselinePlusPlus(nn.Identity(), head="linear")
    assert BaselinePlusPlus(nn.Identity(), scale=5.0).scale == 5.0
