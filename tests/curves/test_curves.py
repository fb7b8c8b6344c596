import pytest
from torch import nn

from metaloop.algorithms.nearest_neighbour import NearestNeighbour
from metaloop.algorithms.scratch import FromScratch
from metaloop.curves.adaptation import steps_curve
from metaloop.curves.curve import Curve
from metaloop.curves.efficiency import shots_curve
from metaloop.curves.plots import plot_curve
from metaloop.evaluate import evaluate
from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.sampler import FewShotSampler
from tests.conftest import make_class_dataset


def _linear(ways):
    return nn.Sequential(nn.Flatten(), nn.Linear(16, ways))


def test_shots_curve_scores_every_method_on_the_same_episodes(tmp_path):
    ds = make_class_dataset(classes=6, per_class=8, shape=(1, 4, 4))
    methods = {"nn": NearestNeighbour(), "nn-copy": NearestNeighbour(),
               "centroid": NearestNeighbour(rule="centroid")}
    curve = shots_curve(methods, ds, ways=3, shots=(1, 2, 5), queries=3, episodes=6, seed=2)
    assert curve.x == [1, 2, 5]
    for a, b in zip(curve.methods["nn"], curve.methods["nn-copy"], strict=True):
        assert a["mean"] == b["mean"] and a["ci95"] == b["ci95"]
    # K = 1: nearest example and nearest centroid are the same rule
    assert curve.methods["nn"][0]["mean"] == curve.methods["centroid"][0]["mean"]
    # the point at K = 2 is evaluate() on the episode set drawn with that seed
    ref = evaluate(NearestNeighbour(), EpisodeSet.generate(FewShotSampler(ds, 3, 2, 3), 6, seed=2))
    assert curve.methods["nn"][1]["mean"] == ref.mean
    curve.save(tmp_path / "c.json")
    assert Curve.load(tmp_path / "c.json").methods == curve.methods
    assert "| nn |" in curve.table()
    assert plot_curve(curve, tmp_path / "c.png").stat().st_size > 1000


def test_shots_curve_refuses_too_many_shots():
    ds = make_class_dataset(classes=6, per_class=8, shape=(1, 4, 4))
    with pytest.raises(ValueError, match="lower the largest K"):
        shots_curve({"nn": NearestNeighbour()}, ds, ways=3, shots=(1, 20), queries=3)


def test_steps_curve_gradient_methods_and_flat_references(tmp_path):
    ds = make_class_dataset(classes=6, per_class=6, shape=(1, 4, 4))
    episodes = EpisodeSet.generate(FewShotSampler(ds, 3, 2, 2), 4, seed=0)
    scratch = FromScratch(_linear, steps=5, lr=0.1)
    curve = steps_curve({"scratch": scratch, "nn": NearestNeighbour()}, episodes, steps=(0, 1, 3))
    assert curve.meta["reference"] == ["nn"]
    nn_values = {r["mean"] for r in curve.methods["nn"]}
    assert len(nn_values) == 1
    for s, r in zip((0, 1, 3), curve.methods["scratch"], strict=True):
        assert r["mean"] == evaluate(scratch, episodes, steps=s).mean
    assert plot_curve(curve, tmp_path / "s.png").stat().st_size > 1000
    assert curve.methods["scratch"][0]["episodes"] == 4
