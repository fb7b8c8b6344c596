import pytest
from torch import nn

from metaloop.algorithms.nearest_neighbour import NearestNeighbour
from metaloop.algorithms.scratch import FromScratch
from metaloop.baselines.tuning import grid_search
from metaloop.evaluate import evaluate
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler
from tests.conftest import make_class_dataset


def _linear(ways):
    return nn.Sequential(nn.Flatten(), nn.Linear(16, ways))


def test_grid_search_picks_the_best_meta_val_point_and_keeps_ties_first():
    ds = make_class_dataset(classes=6, per_class=6, shape=(1, 4, 4))
    val = EpisodeSet.generate(FewShotSampler(ds, 3, 2, 2), 4, seed=0)
    tuned = grid_search(lambda steps: FromScratch(_linear, steps=steps, lr=0.1), {"steps": [0, 20]}, val)
    scores = [r.mean for _, r in tuned.table]
    assert [p["steps"] for p, _ in tuned.table] == [0, 20]
    assert scores == [evaluate(FromScratch(_linear, steps=s, lr=0.1), val).mean for s in (0, 20)]
    assert tuned.best == {"steps": 0 if scores[0] >= scores[1] else 20}
    # temperature never changes a nearest-neighbour decision: a tie, so the first point wins
    tie = grid_search(lambda temperature: NearestNeighbour(temperature=temperature),
                      {"temperature": [2.0, 1.0]}, val)
    assert tie.best == {"temperature": 2.0}


def test_grid_search_rejects_empty_grids():
    with pytest.raises(ValueError, match="at least one"):
        grid_search(NearestNeighbour, {}, [])
    with pytest.raises(ValueError, match="empty"):
        grid_search(NearestNeighbour, {"temperature": []}, [])
