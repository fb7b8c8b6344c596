import pytest
import torch
import torch.nn.functional as F

from metaloop.baselines.features import FeatureTransform, base_feature_mean
from metaloop.baselines.heads import CosineClassifier, chen_scale, fit_head, make_head
from tests.conftest import make_class_dataset


def test_cosine_logits_hand_computed():
    head = CosineClassifier(2, 2, scale=2.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    # z = (3, 4): cos with (1, 0) is 0.6, with (0, 1) is 0.8
    assert torch.allclose(head(torch.tensor([[3.0, 4.0]])), torch.tensor([[1.2, 1.6]]))
    # invariant to the feature's norm
    assert torch.allclose(head(torch.tensor([[30.0, 40.0]])), torch.tensor([[1.2, 1.6]]))


def test_chen_scale_and_default():
    assert chen_scale(5) == 2.0 and chen_scale(200) == 2.0 and chen_scale(4112) == 10.0
    assert CosineClassifier(4, 5).scale == 2.0
    with pytest.raises(ValueError, match="head"):
        make_head("mlp", 4, 5)


def test_fit_head_one_step_is_sgd_with_weight_decay():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1])
    init = fit_head(z, y, 2, steps=0, seed=3)
    after = fit_head(z, y, 2, steps=1, lr=0.5, weight_decay=0.1, seed=3)
    w, b = init.weight.detach().clone().requires_grad_(), init.bias.detach().clone().requires_grad_()
    F.cross_entropy(z @ w.T + b, y).backward()
    # first SGD step with momentum: buffer = grad + wd·param, so param -= lr·(grad + wd·param)
    assert torch.allclose(after.weight, w - 0.5 * (w.grad + 0.1 * w))
    assert torch.allclose(after.bias, b - 0.5 * (b.grad + 0.1 * b))


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_fit_head_separates_and_is_deterministic(kind):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 16, generator=g) * 3
    z = centres.repeat_interleave(4, 0) + 0.3 * torch.randn(20, 16, generator=g)
    y = torch.arange(5).repeat_interleave(4)
    a = fit_head(z, y, 5, kind=kind, steps=60, lr=0.2, batch_size=4, seed=1)
    b = fit_head(z, y, 5, kind=kind, steps=60, lr=0.2, batch_size=4, seed=1)
    assert torch.equal(a(z), b(z))
    assert (a(z).argmax(1) == y).all()


def test_feature_transform_cl2n_and_base_mean():
    ds = make_class_dataset(classes=3, per_class=2, shape=(1, 1, 2))
    mean = base_feature_mean(torch.nn.Flatten(), ds, batch_size=4)
    assert torch.allclose(mean, ds.data.float().div(255).view(6, 2).mean(0))
    t = FeatureTransform("cl2n", torch.tensor([1.0, 1.0]))
    assert torch.allclose(t(torch.tensor([[4.0, 5.0]])), torch.tensor([[0.6, 0.8]]))
    assert torch.allclose(FeatureTransform("l2n")(torch.tensor([[3.0, 4.0]])), torch.tensor([[0.6, 0.8]]))
    with pytest.raises(ValueError, match="unknown feature transform"):
        FeatureTransform("zca")
