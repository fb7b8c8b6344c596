import math

import pytest
import torch

from metaloop.curves.ranking import episode_ndcg, ndcg_at_k, ranking_ndcg
from metaloop.tasks.episode import Episode


def test_ndcg_hand_computed():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    rel = torch.tensor([0.0, 1.0, 0.0, 1.0])
    # DCG@3 = 1/log2(3); ideal DCG@3 = 1 + 1/log2(3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(scores, rel, 3) == pytest.approx(expected)
    # @4 adds the second relevant item at rank 4: 1/log2(5)
    expected4 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(scores, rel, 4) == pytest.approx(expected4)
    assert ndcg_at_k(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0]), 1) == 1.0
    # graded relevance: order 3, 1 against ideal 3, 2 (k=2)
    graded = ndcg_at_k(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([3.0, 1.0, 2.0]), 2)
    assert graded == pytest.approx((3 + 1 / math.log2(3)) / (3 + 2 / math.log2(3)))


def test_ties_are_pessimistic_and_no_relevant_is_nan():
    assert ndcg_at_k(torch.zeros(2), torch.tensor([1.0, 0.0]), 1) == 0.0
    assert math.isnan(ndcg_at_k(torch.zeros(3), torch.zeros(3), 2))
    with pytest.raises(ValueError, match="k"):
        ndcg_at_k(torch.zeros(3), torch.zeros(3), 0)


def test_episode_ndcg_perfect_and_reversed():
    targets = torch.tensor([0, 0, 1, 1])
    perfect = torch.nn.functional.one_hot(targets, 2).float()
    assert episode_ndcg(perfect, targets, 2) == 1.0
    assert episode_ndcg(-perfect, targets, 2) == 0.0


def test_ranking_ndcg_over_episodes():
    class Oracle(torch.nn.Module):
        task = "classification"

        def adapt(self, sx, sy):
            return None

        def predict(self, state, qx):
            return qx  # the query "images" are one-hot labels

    targets = torch.tensor([0, 1, 2, 0])
    e = Episode(torch.zeros(3, 3), torch.arange(3), torch.nn.functional.one_hot(targets, 3).float(), targets)
    mean, ci = ranking_ndcg(Oracle(), [e, e], k=3)
    assert mean == 1.0 and ci == 0.0
