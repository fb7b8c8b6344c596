"""Every model-based learner keeps the same promises: per-query independence, no query-label
leakage, a batched training path equal to adapt/predict, no gradient steps, state reset per episode."""

import pytest
import torch

from metaloop.algorithms import available
from tests.modelbased.tiny import batch, episode, make

NAMES = ["mann", "snail", "metanet", "hebbian"]


def test_all_registered():
    assert set(NAMES) <= set(available())


@pytest.mark.parametrize("name", NAMES)
def test_each_query_is_predicted_independently(name):
    model = make(name).eval()
    ep = episode(queries=3)
    state = model.adapt(ep.support_x, ep.support_y)
    together = model.predict(state, ep.query_x)
    assert together.shape == (9, 3)
    for i in range(len(ep.query_x)):
        alone = model.predict(state, ep.query_x[i:i + 1])
        assert torch.allclose(alone[0], together[i], atol=1e-12)
    # a different set of other queries changes nothing for query 0
    others = torch.cat([ep.query_x[:1], torch.randn_like(ep.query_x[1:])])
    assert torch.allclose(model.predict(state, others)[0], together[0], atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_batched_path_equals_adapt_predict_and_ignores_query_labels(name):
    model = make(name).eval()
    b = batch()
    logits = model.batch_logits(b)
    for i, ep in enumerate(b):
        reference = model.predict(model.adapt(ep.support_x, ep.support_y), ep.query_x)
        assert torch.allclose(logits[i], reference, atol=1e-10)
    scrambled = type(b)(b.support_x, b.support_y, b.query_x, b.query_y.flip(-1).roll(1, -1))
    assert torch.equal(model.batch_logits(scrambled), logits)
    loop = torch.stack([model.loss(model.predict(model.adapt(e.support_x, e.support_y), e.query_x),
                                   e.query_y) for e in b]).mean()
    if name != "mann":  # MANN's meta-loss adds the per-step support loss (Santoro et al. training)
        assert torch.allclose(model.meta_loss(b), loop)


@pytest.mark.parametrize("name", NAMES)
def test_support_labels_are_what_the_learner_reads(name):
    model = make(name).eval()
    ep = episode()
    state = model.adapt(ep.support_x, ep.support_y)
    relabelled = model.adapt(ep.support_x, (ep.support_y + 1) % 3)
    assert not torch.allclose(model.predict(state, ep.query_x), model.predict(relabelled, ep.query_x))


@pytest.mark.parametrize("name", NAMES)
def test_state_resets_between_episodes(name):
    model = make(name).eval()
    a, b = episode(seed=1), episode(seed=2)
    fresh = model.predict(model.adapt(b.support_x, b.support_y), b.query_x)
    state_a = model.adapt(a.support_x, a.support_y)
    before = model.predict(state_a, a.query_x)
    after_b = model.predict(model.adapt(b.support_x, b.support_y), b.query_x)
    assert torch.equal(fresh, after_b)
    assert torch.equal(model.predict(state_a, a.query_x), before)


@pytest.mark.parametrize("name", NAMES)
def test_meta_gradient_reaches_embedding_and_refuses_steps_and_bad_labels(name):
    model = make(name).train()
    loss = model.meta_loss(batch())
    loss.backward()
    grads = [p.grad for p in model.embedding.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    ep = episode()
    with pytest.raises(ValueError, match="without 'steps'"):
        model.adapt(ep.support_x, ep.support_y, steps=1)
    with pytest.raises(ValueError, match="ways=3"):
        model.adapt(ep.support_x, ep.support_y + 1)
