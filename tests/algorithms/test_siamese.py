import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.siamese import SiameseNet
from metaloop.data.base import ClassDataset
from metaloop.metric.pairs import PairSampler, random_affine
from metaloop.nets.koch import KochNet
from metaloop.tasks.episode import Episode, EpisodeBatch


def small():
    torch.manual_seed(0)
    return SiameseNet(nn.Linear(5, 4), embedding_dim=4).double()


def test_registered():
    assert get_algorithm("siamese") is SiameseNet


def test_pair_logit_is_weighted_l1_and_symmetric():
    model = small()
    x1 = torch.randn(3, 5, dtype=torch.float64)
    x2 = torch.randn(3, 5, dtype=torch.float64)
    h1, h2 = model.embed(x1), model.embed(x2)
    alpha, b = model.alpha.weight[0], model.alpha.bias[0]
    expected = torch.stack([(alpha * (h1[i] - h2[i]).abs()).sum() + b for i in range(3)])
    torch.testing.assert_close(model.verify(x1, x2), expected)
    torch.testing.assert_close(model.verify(x2, x1), model.verify(x1, x2))
    torch.testing.assert_close(model.pair_logits(h1, h2), model.pair_logits(h2, h1).t())


def test_one_shot_rule_takes_best_support_image_per_class():
    model = small()
    sx = torch.randn(4, 5, dtype=torch.float64)
    sy = torch.tensor([0, 1, 0, 1])
    qx = torch.randn(3, 5, dtype=torch.float64)
    logits = model.predict(model.adapt(sx, sy), qx)
    v = torch.stack([model.verify(qx, sx[j].expand(3, 5)) for j in range(4)], 1)
    expected = torch.stack([torch.maximum(v[:, 0], v[:, 2]), torch.maximum(v[:, 1], v[:, 3])], 1)
    torch.testing.assert_close(logits, expected)


def test_meta_loss_is_balanced_verification_bce():
    model = small()
    sx, sy = torch.randn(3, 5, dtype=torch.float64), torch.tensor([0, 1, 2])
    qx, qy = torch.randn(2, 5, dtype=torch.float64), torch.tensor([2, 0])
    loss = model.meta_loss(EpisodeBatch.stack([Episode(sx, sy, qx, qy)]))
    terms = []
    for i in range(2):
        for j in range(3):
            z = model.verify(qx[i : i + 1], sx[j : j + 1])[0]
            same = float(qy[i] == sy[j])
            terms.append(-(2 * same * F.logsigmoid(z) + (1 - same) * F.logsigmoid(-z)))
    torch.testing.assert_close(loss, torch.stack(terms).mean())


def test_verification_training_separates_same_from_different():
    torch.manual_seed(0)
    centres = torch.randn(6, 5) * 3
    model = SiameseNet(nn.Sequential(nn.Linear(5, 16), nn.Sigmoid()), embedding_dim=16)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(200):
        c1 = torch.randint(6, (32,))
        same = torch.rand(32) < 0.5
        c2 = torch.where(same, c1, (c1 + torch.randint(1, 6, (32,))) % 6)
        x1 = centres[c1] + 0.3 * torch.randn(32, 5)
        x2 = centres[c2] + 0.3 * torch.randn(32, 5)
        loss = model.verification_loss(x1, x2, same.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    sx, sy = centres, torch.arange(6)
    qy = torch.arange(6).repeat(5)
    qx = centres[qy] + 0.3 * torch.randn(30, 5)
    acc = (model.predict(model.adapt(sx, sy), qx).argmax(1) == qy).float().mean()
    assert acc > 0.9


def test_koch_net_shapes():
    net = KochNet(width=0.125, embedding_dim=32)
    out = net(torch.rand(2, 1, 105, 105))
    assert out.shape == (2, 32) and bool(((out > 0) & (out < 1)).all())
    assert KochNet().head.in_features == 9216
    with pytest.raises(ValueError, match="too small"):
        KochNet(image_size=28)


def tagged_dataset(classes=5, per_class=4):
    # pixel (0,0) = class, pixel (0,1) = drawing index: lets us read pairs back
    n = classes * per_class
    data = torch.zeros(n, 1, 6, 6, dtype=torch.uint8)
    targets = torch.arange(classes).repeat_interleave(per_class)
    data[:, 0, 0, 0] = targets.to(torch.uint8)
    data[:, 0, 0, 1] = torch.arange(n).to(torch.uint8)
    return ClassDataset(data, targets, tuple(f"a/c{i}" for i in range(classes)))


def test_pair_sampler_is_balanced_and_labels_are_right():
    sampler = PairSampler(tagged_dataset(), distort=False)
    x1, x2, same = sampler.sample(64, torch.Generator().manual_seed(0))
    c1, c2 = (x1[:, 0, 0, 0] * 255).round(), (x2[:, 0, 0, 0] * 255).round()
    i1, i2 = (x1[:, 0, 0, 1] * 255).round(), (x2[:, 0, 0, 1] * 255).round()
    assert same.sum() == 32
    assert torch.equal(c1 == c2, same.bool())
    assert bool((i1 != i2).all())  # a positive pair is two different drawings


def test_random_affine_keeps_shape_and_mostly_keeps_ink():
    x = torch.zeros(50, 1, 105, 105)
    x[:, :, 40:65, 40:65] = 1.0
    y = random_affine(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    ratio = y.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert bool(((ratio > 0.55) & (ratio < 1.6)).all())
    assert not torch.allclose(y, x)


def test_pair_sampler_refuses_tiny_datasets():
    data = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    ds = ClassDataset(data, torch.tensor([0, 1, 1]), ("a", "b"))
    with pytest.raises(ValueError, match=">= 2 examples"):
        PairSampler(ds)


def test_within_alphabet_sampler_draws_every_class_from_one_alphabet():
    from metaloop.metric.oneshot import WithinAlphabetSampler

    names = tuple(f"{a}/character{i:02d}" for a in ("A", "B", "C") for i in range(6)) + ("D/c1",)
    n = len(names)
    data = torch.zeros(n * 3, 1, 4, 4, dtype=torch.uint8)
    ds = ClassDataset(data, torch.arange(n).repeat_interleave(3), names)
    sampler = WithinAlphabetSampler(ds, ways=5, shots=1, queries=1)
    assert sampler.alphabet_names == ["A", "B", "C"]  # D has too few classes
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(30):
        ep = sampler.sample(g)
        alphabets = {names[int(c)].split("/")[0] for c in ep.classes}
        assert len(alphabets) == 1 and len(set(ep.classes.tolist())) == 5
        seen |= alphabets
    assert seen == {"A", "B", "C"}
    with pytest.raises(ValueError, match="no alphabet"):
        WithinAlphabetSampler(ds, ways=7)
