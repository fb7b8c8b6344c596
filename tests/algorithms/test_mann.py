"""MANN (Santoro et al. 2016): the label arrives one step late, per-instance accuracy bookkeeping."""

import pytest
import torch

from metaloop.modelbased.instance_protocol import (
    accuracy_by_instance,
    accuracy_by_instance_ci,
    presentation_index,
)
from tests.modelbased.tiny import episode, make


def test_prediction_at_step_t_sees_labels_before_t_only():
    model = make("mann").eval()
    ep = episode()
    base = model.adapt(ep.support_x, ep.support_y).support_logits[0]
    for k in range(len(ep.support_y)):
        y = ep.support_y.clone()
        y[k] = (y[k] + 1) % 3
        changed = model.adapt(ep.support_x, y).support_logits[0]
        assert torch.equal(changed[: k + 1], base[: k + 1]), f"step {k} saw its own label"
        if k + 1 < len(y):
            assert not torch.allclose(changed[k + 1], base[k + 1])


def test_last_support_label_is_shown_with_the_query():
    model = make("mann").eval()
    ep = episode()
    state = model.adapt(ep.support_x, ep.support_y)
    assert torch.equal(state.pending_label[0], torch.nn.functional.one_hot(ep.support_y[-1], 3).double())
    y = ep.support_y.clone()
    y[-1] = (y[-1] + 1) % 3
    other = model.adapt(ep.support_x, y)
    assert not torch.allclose(model.predict(state, ep.query_x), model.predict(other, ep.query_x))


def test_memory_is_written_while_reading_the_support_set():
    model = make("mann").eval()
    ep = episode()
    empty = model.initial_state(1, ep.support_x)
    state = model.adapt(ep.support_x, ep.support_y)
    assert not torch.allclose(state.memory.memory, empty.memory.memory)
    # every step writes to `heads` least-used slots, so usage spreads over the memory
    assert (state.memory.usage > 0).sum() >= model.memory.heads


def test_presentation_index_and_accuracy_by_instance_by_hand():
    labels = torch.tensor([[2, 0, 2, 2, 0]])
    assert presentation_index(labels).tolist() == [[1, 1, 2, 3, 2]]
    logits = torch.zeros(1, 5, 3)
    logits[0, torch.arange(5), torch.tensor([1, 0, 2, 0, 0])] = 1.0  # right at t=1,2,4
    acc = accuracy_by_instance(logits, labels, instances=(1, 2, 3, 10))
    assert acc == {1: 0.5, 2: 1.0, 3: 0.0}


def test_accuracy_by_instance_ci_averages_episodes_and_skips_missing_indices():
    labels = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 1]])
    # predictions: episode 0 right at positions 0, 2; episode 1 right at position 1 only
    predicted = torch.tensor([[0, 0, 0, 0], [1, 0, 1, 0]])
    logits = torch.nn.functional.one_hot(predicted, 2).float()
    acc = accuracy_by_instance_ci(logits, labels, instances=(1, 2, 3, 4))
    # index 1: ep0 positions 0,1 -> 1/2; ep1 positions 0,3 -> 0/2 -> mean 25 %
    assert acc[1][0] == pytest.approx(25.0)
    # index 2: ep0 positions 2,3 -> 1/2 = 50 %; ep1 position 1 -> 100 % -> mean 75 %
    assert acc[2][0] == pytest.approx(75.0)
    # index 3 occurs only in episode 1 (position 2, wrong) -> 0 %, one episode -> CI 0
    assert acc[3] == (0.0, 0.0)
    assert 4 not in acc


def _read_weights_on_a_stored_row(strength: float | None) -> float:
    """Read weight that a key equal to memory row 7 puts on row 7, nothing written this step."""
    from metaloop.modelbased.memory import LRUMemory

    memory = LRUMemory(slots=128, dim=40, heads=1)
    state = memory.initial_state(1)
    state.memory = torch.randn(1, 128, 40, generator=torch.Generator().manual_seed(0))
    state.least_used = torch.zeros(1, 128)  # with no read weights either, the write is empty
    key = state.memory[:, 7:8].clone()
    beta = None if strength is None else torch.full((1, 1), strength)
    _, new = memory.step(state, key, torch.zeros(1, 1), beta)
    return float(new.read_weights[0, 0, 7])


def test_initial_key_strength_lets_a_matching_slot_dominate_the_read():
    from metaloop.algorithms.mann import MANN

    model = MANN(5, torch.nn.Flatten(), input_shape=(6,), key_strength=True, initial_key_strength=10.0)
    with torch.no_grad():
        model.strength.weight.zero_()
    beta = 1 + torch.nn.functional.softplus(model.strength(torch.randn(3, model.controller.hidden_size)))
    torch.testing.assert_close(beta, torch.full((3, 4), 10.0))
    default = 1 + torch.nn.functional.softplus(MANN(5, torch.nn.Flatten(), input_shape=(6,),
                                                    key_strength=True).strength.bias).mean().detach()
    # eq. 3's plain cosine softmax (or PyTorch's default beta ~ 1.7) spreads the read over 128 slots
    assert _read_weights_on_a_stored_row(None) < 0.05
    assert _read_weights_on_a_stored_row(float(default)) < 0.1
    assert _read_weights_on_a_stored_row(10.0) > 0.5


def test_initial_key_strength_and_embedding_reject_bad_values():
    from metaloop.algorithms.mann import MANN

    flat = {"embedding": torch.nn.Flatten(), "input_shape": (6,)}
    with pytest.raises(ValueError, match="needs key_strength=True"):
        MANN(5, initial_key_strength=10.0, **flat)
    with pytest.raises(ValueError, match="must be > 1"):
        MANN(5, key_strength=True, initial_key_strength=1.0, **flat)
    with pytest.raises(ValueError, match="'conv4', 'conv4_standardized'"):
        MANN(5, "resnet")


def test_standardized_embedding_feeds_the_controller_standardized_features():
    from metaloop.algorithms.mann import MANN

    torch.manual_seed(0)
    model = MANN(5, "conv4_standardized", controller=8, slots=8, memory_dim=4, heads=2)
    x = torch.rand(20, 1, 28, 28)
    model.train()
    with torch.no_grad():
        z = model.embedding(x)
        raw = model.embedding[0](x)
    assert float(raw.min()) >= 0  # ReLU-pooled Conv-4 features share a large positive component
    torch.testing.assert_close(z.mean(0), torch.zeros(64), atol=1e-4, rtol=0)
    assert 0.9 < float(z.std(0).mean()) < 1.1
    model.eval()  # running statistics: each image embedded alone
    torch.testing.assert_close(model.embedding(x[:1]), model.embedding(x)[:1])


def test_widened_state_keeps_the_old_ways_logits_and_starts_new_labels_at_zero():
    small, wide = make("mann", ways=3).eval(), make("mann", ways=5).eval()
    with torch.no_grad():  # a non-trivial "trained" state, so a misplaced column would show
        for p in small.parameters():
            p.add_(0.3 * torch.randn_like(p))
    wide.load_state_dict(wide.widen_state(small.state_dict()))
    ep = episode()  # labels 0..2 only: the old ways
    old, new = small.adapt(ep.support_x, ep.support_y), wide.adapt(ep.support_x, ep.support_y)
    torch.testing.assert_close(new.support_logits[..., :3], old.support_logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(wide.predict(new, ep.query_x)[..., :3], small.predict(old, ep.query_x),
                               rtol=1e-12, atol=1e-12)
    new_ways = wide.predict(new, ep.query_x)[..., 3:]
    assert torch.equal(new_ways, torch.zeros_like(new_ways))


def test_widen_state_refuses_more_ways_and_another_embedding():
    small, wide = make("mann", ways=3), make("mann", ways=5)
    with pytest.raises(ValueError, match="fewer ways"):
        small.widen_state(wide.state_dict())
    state = small.state_dict()
    state["controller.weight_ih"] = state["controller.weight_ih"][:, 1:]
    with pytest.raises(ValueError, match="does not fit"):
        wide.widen_state(state)
