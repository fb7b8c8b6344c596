import pytest
import torch

from metaloop.tasks.episode_set import EpisodeSet
from metaloop.tasks.regression import sinusoid_tasks
from metaloop.tasks.sampler import FewShotSampler
from tests.conftest import make_class_dataset


def test_index_episode_set_roundtrip(tmp_path, toy_dataset):
    sampler = FewShotSampler(toy_dataset, ways=3, shots=1, queries=2)
    episodes = EpisodeSet.generate(sampler, 5, seed=4)
    path = episodes.save(tmp_path / "eval.pt")
    loaded = EpisodeSet.load(path, sampler)
    assert len(loaded) == 5
    for a, b in zip(episodes, loaded, strict=True):
        assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    again = EpisodeSet.generate(sampler, 5, seed=4)
    assert torch.equal(again.indices, episodes.indices)
    assert len(episodes.head(2)) == 2 and torch.equal(episodes.head(2)[1].query_x, episodes[1].query_x)


def test_index_episode_set_refuses_other_data(tmp_path, toy_dataset):
    sampler = FewShotSampler(toy_dataset, ways=3, shots=1, queries=2)
    path = EpisodeSet.generate(sampler, 2, seed=0).save(tmp_path / "e.pt")
    other = FewShotSampler(make_class_dataset(classes=11), ways=3, shots=1, queries=2)
    with pytest.raises(ValueError, match="fingerprint mismatch"):
        EpisodeSet.load(path, other)
    with pytest.raises(ValueError, match="3-way 1-shot 2-query episodes but the sampler is 3-way 2-shot"):
        EpisodeSet.load(path, FewShotSampler(toy_dataset, ways=3, shots=2, queries=2))
    with pytest.raises(ValueError, match="pass the FewShotSampler"):
        EpisodeSet.load(path)
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable metaloop episode set"):
        EpisodeSet.load(tmp_path / "bad.pt", sampler)
    with pytest.raises(FileNotFoundError, match="EpisodeSet.generate"):
        EpisodeSet.load(tmp_path / "missing.pt", sampler)


def test_tensor_episode_set_roundtrip(tmp_path):
    tasks = sinusoid_tasks(shots=5, queries=10)
    episodes = EpisodeSet.generate(tasks, 7, seed=1)
    loaded = EpisodeSet.load(episodes.save(tmp_path / "sine.pt"))
    assert len(loaded) == 7 and torch.equal(loaded[6].query_y, episodes[6].query_y)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file
