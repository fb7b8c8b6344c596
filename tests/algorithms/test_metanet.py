"""Meta Networks (Munkhdalai & Yu 2017): fast weights come from per-example loss gradients."""

import pytest
import torch
import torch.nn.functional as F

from metaloop.tasks.episode import EpisodeBatch
from tests.modelbased.tiny import episode, make


def test_memory_holds_d_of_each_support_examples_own_gradient():
    model = make("metanet").eval()
    ep = episode()
    state = model.adapt(ep.support_x, ep.support_y)
    z = model.embedding(ep.support_x).detach()
    for i in range(len(z)):
        h = F.relu(z[i:i + 1] @ model.W1.T)
        loss = F.cross_entropy(h @ model.W2.T + model.b2, ep.support_y[i:i + 1])
        g1, g2 = torch.autograd.grad(loss, [model.W1, model.W2])
        assert torch.allclose(state.memory[0][0, i], model.example_generator(g1))
        assert torch.allclose(state.memory[1][0, i], model.example_generator(g2))


def test_task_fast_weights_come_from_the_contrastive_gradient():
    from metaloop.modelbased.fast_weights import contrastive_loss

    model = make("metanet").eval()
    ep = episode()
    state = model.adapt(ep.support_x, ep.support_y)
    z = model.embedding(ep.support_x).detach()
    loss = contrastive_loss(F.relu(z @ model.Q.T)[None], ep.support_y[None], model.margin).sum()
    (grad,) = torch.autograd.grad(loss, model.Q)
    assert torch.allclose(state.task_fast[0], model.task_generator(grad))


def test_adapt_works_under_no_grad_and_eval_state_is_detached():
    model = make("metanet").eval()
    ep = episode()
    with torch.no_grad():
        state = model.adapt(ep.support_x, ep.support_y)
    assert not state.memory[0].requires_grad
    model.train()
    state = model.adapt(ep.support_x, ep.support_y)
    assert state.memory[0].requires_grad  # differentiable (second order) in train mode


@pytest.mark.slow  # a short training run (~10 s idle, minutes on a loaded machine)
def test_meta_training_learns_one_shot_on_gaussian_classes():
    torch.manual_seed(0)
    model = make("metanet", dtype=torch.float32).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
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
    assert correct / total > 0.8, correct / total
