import pytest
import torch
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.finetune import FineTune
from metaloop.baselines.heads import fit_head


def _clusters(ways=4, per=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ways, 8, generator=g) * 3
    x = centres.repeat_interleave(per, 0) + 0.2 * torch.randn(ways * per, 8, generator=g)
    return x, torch.arange(ways).repeat_interleave(per)


def _backbone():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 6)).eval()


def test_registered():
    assert get_algorithm("finetune") is FineTune


def test_frozen_backbone_head_matches_fit_head_on_features():
    x, y = _clusters()
    backbone = _backbone()
    algo = FineTune(backbone, steps=20, lr=0.1, seed=4)
    net, head = algo.adapt(x, y)
    assert net is None
    with torch.no_grad():
        ref = fit_head(backbone(x), y, 4, steps=20, lr=0.1, seed=4)
        assert torch.allclose(algo.predict((net, head), x), ref(backbone(x)))
    assert all(p.grad is None for p in backbone.parameters())


def test_whole_network_finetuning_adapts_a_copy_and_fits():
    x, y = _clusters()
    backbone = _backbone()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    algo = FineTune(backbone, finetune_backbone=True, steps=40, lr=0.1)
    net, head = algo.adapt(x, y)
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    assert not torch.equal(net[0].weight, backbone[0].weight)
    assert torch.equal(net[1].running_mean, backbone[1].running_mean)  # BN statistics kept
    assert (algo.predict((net, head), x).argmax(1) == y).all()


def test_steps_zero_is_an_untrained_head():
    x, y = _clusters()
    algo = FineTune(_backbone(), steps=5)
    _, h0 = algo.adapt(x, y, steps=0)
    _, h50 = algo.adapt(x, y)
    assert not torch.equal(h0.weight, h50.weight)


def test_bad_arguments():
    with pytest.raises(TypeError, match="backbone"):
        FineTune("conv4")
    with pytest.raises(ValueError, match="head"):
        FineTune(_backbone(), head="svm")
