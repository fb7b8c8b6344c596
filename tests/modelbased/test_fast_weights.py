"""Meta Networks' gradient preprocessing, per-example gradients and contrastive loss."""

import math

import torch
import torch.nn.functional as F

from metaloop.modelbased.fast_weights import (
    contrastive_loss,
    per_example_gradients,
    preprocess_gradients,
)


def test_gradient_preprocessing_by_hand():
    g = torch.tensor([1.0, -math.exp(-5), 1e-6, 0.0], dtype=torch.float64)
    out = preprocess_gradients(g, p=10.0)
    expected = torch.tensor([[0, 1], [-0.5, -1], [-1, math.exp(10) * 1e-6], [-1, 0]], dtype=torch.float64)
    assert torch.allclose(out, expected)


def test_per_example_gradients_equal_one_backward_per_example():
    torch.manual_seed(0)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (5,))

    def summed(ws):
        logits = torch.einsum("nci,ni->nc", ws[0], x)
        return F.cross_entropy(logits, y, reduction="sum")

    (grads,) = per_example_gradients(summed, [w], (5,), create_graph=True)
    for i in range(5):
        (ref,) = torch.autograd.grad(F.cross_entropy(x[i:i + 1] @ w.T, y[i:i + 1]), w)
        assert torch.allclose(grads[i], ref)
    # create_graph keeps them differentiable w.r.t. the weights (Meta Networks trains through them)
    assert grads.requires_grad


def test_contrastive_loss_by_hand():
    e = torch.tensor([[[0.0, 0.0], [0.3, 0.4], [3.0, 4.0]]], dtype=torch.float64)
    labels = torch.tensor([[0, 0, 1]])
    # pairs (ordered, i != j): (0,1) same d=.5 → .25; (0,2) diff d=5 → 0; (1,2) diff d=4.5 → 0
    assert torch.allclose(contrastive_loss(e, labels, margin=1.0), torch.tensor([2 * 0.25 / 6],
                                                                                 dtype=torch.float64))
    labels = torch.tensor([[0, 1, 2]])  # all different: only (0,1) is within the margin: (1-.5)^2
    assert torch.allclose(contrastive_loss(e, labels, margin=1.0), torch.tensor([2 * 0.25 / 6],
                                                                                 dtype=torch.float64))
    assert torch.allclose(contrastive_loss(e, labels, margin=2.0), torch.tensor([2 * 2.25 / 6],
                                                                                 dtype=torch.float64))
