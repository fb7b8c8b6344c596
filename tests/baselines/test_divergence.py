import pytest
import torch
from torch import nn

from metaloop.algorithms.finetune import FineTune
from metaloop.baselines.heads import fit_head


def test_a_diverging_fit_raises_a_clear_error():
    z = torch.tensor([[1e30, -1e30], [-1e30, 1e30]])
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit_head(z, torch.tensor([0, 1]), 2, steps=3, lr=1e10)
    algo = FineTune(nn.Flatten(), finetune_backbone=True, steps=3, lr=1e10)
    with pytest.raises(FloatingPointError, match="diverged"):
        algo.adapt(z.view(2, 1, 2), torch.tensor([0, 1]))
