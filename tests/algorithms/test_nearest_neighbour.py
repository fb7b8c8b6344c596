import pytest
import torch
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.algorithms.nearest_neighbour import NearestNeighbour
from metaloop.evaluate import evaluate
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler
from tests.conftest import make_class_dataset


def _pts(rows):
    return torch.tensor(rows, dtype=torch.float32).view(len(rows), 1, 1, -1)


def test_registered():
    assert get_algorithm("nearest_neighbour") is NearestNeighbour


def test_exact_on_duplicated_support_images():
    ds = make_class_dataset(classes=6, per_class=5, shape=(1, 8, 8))
    sampler = FewShotSampler(ds, ways=5, shots=3, queries=0)
    nn_pixel = NearestNeighbour()
    for episode in EpisodeSet.generate(sampler, 4, seed=1):
        perm = torch.randperm(len(episode.support_x), generator=torch.Generator().manual_seed(0))
        query_x, query_y = episode.support_x[perm], episode.support_y[perm]
        logits = nn_pixel.predict(nn_pixel.adapt(episode.support_x, episode.support_y), query_x)
        assert torch.equal(logits.argmax(1), query_y)
        assert torch.all(logits.gather(1, query_y[:, None]) == 0)  # distance to its own copy is exactly 0
        assert torch.all(logits.topk(2, dim=1).values[:, 1] < 0)


def test_hand_computed_logits_example_and_centroid():
    support = _pts([[0, 0], [2, 0], [0, 3]])
    labels = torch.tensor([0, 0, 1])
    query = _pts([[1.5, 0], [0, 2]])
    ex = NearestNeighbour(rule="example")
    # class 0: nearest of (0,0),(2,0); class 1: (0,3)
    expected = -torch.tensor([[0.25, 2.25 + 9], [4.0, 1.0]])
    assert torch.allclose(ex.predict(ex.adapt(support, labels), query), expected)
    cen = NearestNeighbour(rule="centroid")  # class 0 centroid (1, 0)
    expected_c = -torch.tensor([[0.25, 2.25 + 9], [1 + 4.0, 1.0]])
    assert torch.allclose(cen.predict(cen.adapt(support, labels), query), expected_c)
    hot = NearestNeighbour(rule="centroid", temperature=2.0)
    assert torch.allclose(hot.predict(hot.adapt(support, labels), query), expected_c / 2)


def test_simpleshot_centres_and_normalises_backbone_features():
    backbone = nn.Flatten()
    mean = torch.tensor([1.0, 1.0])
    ss = NearestNeighbour.simpleshot(backbone, mean)
    z = ss.features(_pts([[3, 1], [1, -2]]))
    assert torch.allclose(z, torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    # after CL2N the centroid of two opposite unit vectors is 0: distance 1 from any unit query
    state = ss.adapt(_pts([[3, 1], [-1, 1]]), torch.tensor([0, 0]))
    assert torch.allclose(state[0], torch.zeros(1, 2))


def test_refuses_steps_and_bad_options():
    with pytest.raises(ValueError, match="without gradient steps"):
        NearestNeighbour().adapt(_pts([[0, 0]]), torch.tensor([0]), steps=3)
    with pytest.raises(ValueError, match="rule"):
        NearestNeighbour(rule="knn")
    with pytest.raises(ValueError, match="base_feature_mean"):
        NearestNeighbour(nn.Flatten(), transform="cl2n")


def test_evaluate_pixel_nn_beats_chance_on_clustered_data():
    g = torch.Generator().manual_seed(0)
    centres = torch.randint(0, 256, (8, 1, 6, 6), generator=g).float()
    data = (centres.repeat_interleave(10, 0) + 20 * torch.randn(80, 1, 6, 6, generator=g)).clamp(0, 255)
    from metaloop.data.base import ClassDataset

    names = [f"c{i}" for i in range(8)]
    ds = ClassDataset(data.to(torch.uint8), torch.arange(8).repeat_interleave(10), names)
    result = evaluate(NearestNeighbour(), EpisodeSet.generate(FewShotSampler(ds, 5, 1, 5), 20, seed=0))
    assert result.mean > 0.9
