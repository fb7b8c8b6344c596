"""Hebbian fast weights (Miconi et al. 2018): the trace by hand, its closed form, equivariance."""

import pytest
import torch

from metaloop.algorithms.hebbian import hebbian_trace, hebbian_trace_batched
from tests.modelbased.tiny import episode, make


def test_trace_follows_the_decaying_hebbian_rule_by_hand():
    z = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    eta = torch.tensor(0.25, dtype=torch.float64)
    # step 1: 0.25 * y0 z0^T ; step 2: 0.75 * that + 0.25 * y1 z1^T
    expected = torch.tensor([[0.75 * 0.25 * 1, 0.75 * 0.25 * 2], [0.25 * 3, 0.25 * -1]], dtype=torch.float64)
    assert torch.allclose(hebbian_trace(z, y, eta), expected)
    assert torch.allclose(hebbian_trace_batched(z[None], y[None], eta)[0], expected)


def test_fast_weights_change_within_an_episode():
    model = make("hebbian").eval()
    ep = episode()
    traces = [model.adapt(ep.support_x[:k], ep.support_y[:k]).trace for k in range(1, 7)]
    for earlier, later in zip(traces, traces[1:], strict=False):
        assert not torch.allclose(earlier, later)
    # row c of the trace only moves when an example of class c is shown
    assert torch.equal(traces[0][1:], torch.zeros_like(traces[0][1:]))


def test_plastic_layer_is_label_equivariant_at_initialisation():
    """With zero slow weights and uniform plasticity, relabelling the support permutes the logits."""
    model = make("hebbian").eval()
    ep = episode()
    perm = torch.tensor([2, 0, 1])
    logits = model.predict(model.adapt(ep.support_x, ep.support_y), ep.query_x)
    permuted = model.predict(model.adapt(ep.support_x, perm[ep.support_y]), ep.query_x)
    assert torch.allclose(permuted[:, perm], logits)


def test_eta_and_alpha_receive_meta_gradients():
    from tests.modelbased.tiny import batch

    model = make("hebbian").train()
    model.meta_loss(batch()).backward()
    assert model.eta_logit.grad.abs() > 0 and model.alpha.grad.abs().sum() > 0


@pytest.mark.slow  # a short training run (~10 s idle, minutes on a loaded machine)
def test_meta_training_learns_one_shot_on_gaussian_classes():
    """A few hundred steps on fresh random classes must beat chance (1/3) by far."""
    torch.manual_seed(0)
    model = make("hebbian", dtype=torch.float32).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    from metaloop.tasks.episode import EpisodeBatch

    for step in range(150):
        b = EpisodeBatch.stack([episode(seed=1000 + 8 * step + i, dtype=torch.float32) for i in range(8)])
        opt.zero_grad()
        model.meta_loss(b).backward()
        opt.step()
    model.eval()
    correct = total = 0
    for s in range(50):
        ep = episode(seed=s, dtype=torch.float32)
        pred = model.predict(model.adapt(ep.support_x, ep.support_y), ep.query_x).argmax(-1)
        correct += (pred == ep.query_y).sum().item()
        total += len(pred)
    assert correct / total > 0.8
