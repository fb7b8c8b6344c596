import pytest
import torch

from metaloop import metrics
from metaloop.algorithms.nearest_neighbour import NearestNeighbour
from metaloop.curves.plots import plot_reliability
from metaloop.curves.reliability import collect_predictions, reliability_diagram
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler
from tests.conftest import make_class_dataset


def test_diagram_matches_metrics_and_hand_values():
    # two examples: confident right (p≈0.88 → bin 13 of 15), unsure wrong (p=0.5 → bin 7)
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    targets = torch.tensor([0, 1])
    d = reliability_diagram(logits, targets, bins=15)
    assert d.count.sum() == 2 and d.count[13] == 1 and d.count[7] == 1
    p = torch.tensor([2.0, 0.0]).softmax(0)[0].item()
    assert d.accuracy[13] == 1.0 and d.confidence[13] == pytest.approx(p)
    assert d.accuracy[7] == 0.0  # argmax of a tie is class 0, the wrong one
    assert d.ece == pytest.approx(0.5 * (1 - p) + 0.5 * 0.5)
    assert d.ece == metrics.expected_calibration_error(logits, targets, 15)


def test_collect_predictions_and_plot(tmp_path):
    ds = make_class_dataset(classes=6, per_class=6, shape=(1, 4, 4))
    episodes = EpisodeSet.generate(FewShotSampler(ds, 3, 1, 2), 5, seed=0)
    logits, targets = collect_predictions(NearestNeighbour(temperature=100.0), episodes)
    assert logits.shape == (30, 3) and targets.shape == (30,)
    assert torch.equal(targets, torch.cat([e.query_y for e in episodes]))
    path = plot_reliability({"nn": reliability_diagram(logits, targets)}, tmp_path / "r.png")
    assert path.stat().st_size > 1000
