import pytest
import torch
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.protonet import ProtoNet
from metaloop.metric.distances import class_means, squared_euclidean
from metaloop.nets.conv4 import Conv4
from metaloop.tasks.episode import Episode, EpisodeBatch


def make_episode(g, ways=3, shots=2, queries=4, shape=(5,), dtype=torch.float64):
    sy = torch.arange(ways).repeat_interleave(shots)
    qy = torch.arange(ways).repeat_interleave(queries)
    perm = torch.randperm(len(sy), generator=g)
    sx = torch.randn(len(sy), *shape, generator=g, dtype=dtype)
    qx = torch.randn(len(qy), *shape, generator=g, dtype=dtype)
    return Episode(sx[perm], sy[perm], qx, qy)


def test_registered():
    assert get_algorithm("protonet") is ProtoNet


def test_logits_equal_hand_computed_negative_squared_distances():
    g = torch.Generator().manual_seed(0)
    ep = make_episode(g)
    model = ProtoNet(nn.Identity()).double()
    logits = model.predict(model.adapt(ep.support_x, ep.support_y), ep.query_x)
    expected = torch.empty(len(ep.query_y), 3, dtype=torch.float64)
    for k in range(3):
        proto = ep.support_x[ep.support_y == k].mean(0)
        for i, q in enumerate(ep.query_x):
            expected[i, k] = -sum((float(q[j]) - float(proto[j])) ** 2 for j in range(5))
    torch.testing.assert_close(logits, expected, rtol=1e-12, atol=1e-12)


def test_cosine_logits_scaled():
    g = torch.Generator().manual_seed(1)
    ep = make_episode(g)
    model = ProtoNet(nn.Identity(), distance="cosine", scale=10.0).double()
    logits = model.predict(model.adapt(ep.support_x, ep.support_y), ep.query_x)
    protos = torch.stack([ep.support_x[ep.support_y == k].mean(0) for k in range(3)])
    expected = 10 * torch.nn.functional.cosine_similarity(
        ep.query_x[:, None], protos[None], dim=-1
    )
    torch.testing.assert_close(logits, expected)


def test_loss_is_cross_entropy_of_softmax_over_negative_distances():
    g = torch.Generator().manual_seed(2)
    ep = make_episode(g)
    model = ProtoNet(nn.Identity()).double()
    loss = model.episode_loss(ep)
    d = squared_euclidean(ep.query_x, class_means(ep.support_x, ep.support_y, 3))
    p = torch.exp(-d) / torch.exp(-d).sum(1, keepdim=True)
    expected = -torch.log(p[torch.arange(len(ep.query_y)), ep.query_y]).mean()
    torch.testing.assert_close(loss, expected)


def test_batched_meta_loss_and_gradient_equal_per_task_loop():
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(0)
    eps = [make_episode(g, ways=2, shots=2, queries=3, shape=(1, 28, 28)) for _ in range(3)]
    batch = EpisodeBatch.stack(eps)
    model = ProtoNet(Conv4(norm="none")).double()
    fast = model.meta_loss(batch)
    grads_fast = torch.autograd.grad(fast, list(model.parameters()))
    ref = torch.stack([model.episode_loss(e) for e in eps]).mean()
    grads_ref = torch.autograd.grad(ref, list(model.parameters()))
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-12)
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_gradcheck_through_prototypes():
    g = torch.Generator().manual_seed(4)
    ep = make_episode(g, ways=2, shots=2, queries=2, shape=(3,))
    lin = nn.Linear(3, 2).double()
    model = ProtoNet(lin)

    def f(w):
        with torch.no_grad():
            lin.weight.copy_(w)
        lin.weight.requires_grad_(True)
        return model.episode_loss(ep)

    w = lin.weight.detach().clone().requires_grad_(True)
    loss = model.episode_loss(ep)
    (grad,) = torch.autograd.grad(loss, lin.weight)
    eps = 1e-6
    num = torch.zeros_like(w)
    for idx in range(w.numel()):
        d = torch.zeros_like(w).view(-1)
        d[idx] = eps
        num.view(-1)[idx] = (f(w + d.view_as(w)) - f(w - d.view_as(w))).item() / (2 * eps)
    torch.testing.assert_close(grad, num, rtol=1e-5, atol=1e-7)


def test_separated_clusters_are_classified_perfectly():
    g = torch.Generator().manual_seed(5)
    centres = torch.randn(4, 8, generator=g) * 10
    sy = torch.arange(4).repeat(3)
    qy = torch.arange(4).repeat(5)
    sx = centres[sy] + 0.1 * torch.randn(12, 8, generator=g)
    qx = centres[qy] + 0.1 * torch.randn(20, 8, generator=g)
    model = ProtoNet(nn.Identity())
    pred = model.predict(model.adapt(sx, sy), qx).argmax(1)
    assert torch.equal(pred, qy)


def test_refuses_steps_and_bad_labels():
    model = ProtoNet(nn.Identity())
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="without gradient steps"):
        model.adapt(x, torch.tensor([0, 0, 1, 1]), steps=3)
    with pytest.raises(ValueError, match="every class present"):
        model.adapt(x, torch.tensor([0, 0, 2, 2]))
    with pytest.raises(ValueError, match="integer"):
        model.adapt(x, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="unknown distance"):
        ProtoNet(nn.Identity(), distance="manhattan")


def test_default_backbone_is_batchnorm_conv4_and_works_on_images():
    model = ProtoNet()
    assert isinstance(model.backbone, Conv4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    model.eval()
    x = torch.rand(10, 1, 28, 28)
    y = torch.arange(5).repeat(2)
    logits = model.predict(model.adapt(x, y), torch.rand(7, 1, 28, 28))
    assert logits.shape == (7, 5) and bool((logits <= 0).all())


@pytest.mark.parametrize("name", ["protonet", "matching", "relation", "siamese"])
def test_embed_once_evaluation_equals_per_episode_evaluate(name):
    from metaloop.data.base import ClassDataset
    from metaloop.evaluate import evaluate
    from metaloop.metric.fast_eval import evaluate_embedded
    from metaloop.tasks.episode_set import EpisodeSet
    from metaloop.tasks.sampler import FewShotSampler

    torch.manual_seed(0)
    n_cls, per = 8, 4
    data = torch.randint(0, 256, (n_cls * per, 1, 28, 28), dtype=torch.uint8)
    ds = ClassDataset(data, torch.arange(n_cls).repeat_interleave(per), tuple(map(str, range(n_cls))))
    episodes = EpisodeSet.generate(FewShotSampler(ds, 3, 2, 2), 6, seed=0)
    kwargs = {
        "protonet": {}, "relation": {},
        "matching": {"fce": True, "embedding_dim": 64, "fce_steps": 2},
        "siamese": {"backbone": Conv4(norm="batch"), "embedding_dim": 64},
    }[name]
    algo = get_algorithm(name)(**kwargs)
    for m in algo.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    ref = evaluate(algo, episodes)
    fast = evaluate_embedded(algo, episodes, chunk=7)
    torch.testing.assert_close(fast.values, ref.values)
    assert fast.mean == pytest.approx(ref.mean) and fast.ci95 == pytest.approx(ref.ci95)
    assert fast.extra["nll"][0] == pytest.approx(ref.extra["nll"][0], rel=1e-4)


def test_embed_once_evaluation_refuses_task_batch_norm():
    from metaloop.metric.fast_eval import evaluate_embedded

    with pytest.raises(ValueError, match="task"):
        evaluate_embedded(ProtoNet(Conv4(norm="task")), None)


@pytest.mark.slow
@pytest.mark.data
def test_short_real_omniglot_training_clears_a_sane_floor():
    """300 episodes of 5-way 1-shot training → well above chance (20 %) on held-out characters."""
    from metaloop.data.omniglot_splits import load_omniglot
    from metaloop.metric.fast_eval import evaluate_embedded
    from metaloop.nets.fast_conv4 import FastConv4
    from metaloop.tasks.episode_set import EpisodeSet
    from metaloop.tasks.sampler import FewShotSampler

    try:
        splits = load_omniglot(image_size=28, split="vinyals")
    except (FileNotFoundError, ValueError) as e:
        pytest.skip(f"Omniglot not available: {e}")
    torch.manual_seed(0)
    algo = ProtoNet(FastConv4(Conv4(norm="batch")))
    opt = torch.optim.Adam(algo.parameters(), 1e-3)
    sampler = FewShotSampler(splits.train, 5, 1, 15)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss = algo.meta_loss(sampler.sample_batch(1, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = EpisodeSet.generate(FewShotSampler(splits.test, 5, 1, 15), 200, seed=0)
    result = evaluate_embedded(algo, test)
    assert result.mean > 0.85, result.summary()
