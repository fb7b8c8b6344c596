"""generalisation_gap: one trained learner scored on episodes of each split's own classes."""

import pytest
import torch

from benchmarks import generalisation_gap
from metaloop.config import build, load_config
from metaloop.engine.snapshot import Snapshot, save_snapshot
from tests.data.conftest import write_fake_omniglot

OVERRIDES = ["tasks.queries=2", "evaluation.queries=2", "tasks.augment={shift: 1}"]


def test_each_split_is_scored_on_its_own_classes(tmp_path, monkeypatch):
    root = tmp_path / "omniglot"
    write_fake_omniglot(root)
    overrides = [f"tasks.root={root}", *OVERRIDES]
    config = load_config("hebbian_omniglot_5w1s", overrides)
    learner = build.build_algorithm(config, build.build_model(config))
    save_snapshot(tmp_path / "w.pt", Snapshot(learner=learner.state_dict(), data={"dataset": "omniglot",
                                                                                    "split": "vinyals"}))
    seen = []
    real_evaluate = generalisation_gap.evaluate

    def spy(algo, episodes):
        seen.append(episodes)
        assert not algo.training  # scored as every table row is
        return real_evaluate(algo, episodes)

    monkeypatch.setattr(generalisation_gap, "evaluate", spy)
    results = generalisation_gap.gaps("hebbian_omniglot_5w1s", tmp_path / "w.pt", 3, 5, overrides)
    assert list(results) == ["train", "val", "test"] and all(r.episodes == 3 for r in results.values())
    sources = build.build_tasks(config)
    datasets = [sources.train.source.dataset, sources.val.dataset, sources.test.dataset]
    for episodes, dataset in zip(seen, datasets, strict=True):
        assert episodes.source.dataset.class_names == dataset.class_names
        assert episodes.classes.shape == (3, 5)  # 3 episodes, 5-way
        # no augmentation: every support and query image is one of the split's stored images
        stored = dataset.data.float().div(255).flatten(1)
        for episode in episodes:
            assert episode.support_x.shape[0] == 5  # 1-shot
            for image in torch.cat([episode.support_x, episode.query_x]).flatten(1):
                assert (stored == image).all(1).any()
    assert set(sources.train.source.dataset.class_names).isdisjoint(sources.test.dataset.class_names)


def test_weights_of_another_split_are_refused(tmp_path):
    root = tmp_path / "omniglot"
    write_fake_omniglot(root)
    save_snapshot(tmp_path / "w.pt", Snapshot(learner={}, data={"dataset": "omniglot", "split": "reptile"}))
    with pytest.raises(ValueError, match="trained on omniglot split .reptile."):
        generalisation_gap.gaps("hebbian_omniglot_5w1s", tmp_path / "w.pt", 2, 0, [f"tasks.root={root}"])
