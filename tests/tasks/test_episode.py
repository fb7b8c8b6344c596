import pytest
import torch

from metaloop.tasks.episode import Episode, EpisodeBatch


def make_episode(offset: float) -> Episode:
    return Episode(torch.full((4, 3), offset), torch.tensor([0, 0, 1, 1]), torch.full((2, 3), -offset),
                   torch.tensor([0, 1]), torch.tensor([7, 9]))


def test_stack_index_split_roundtrip():
    batch = EpisodeBatch.stack([make_episode(i) for i in range(5)])
    assert batch.support_x.shape == (5, 4, 3) and batch.classes.shape == (5, 2) and len(batch) == 5
    assert torch.equal(batch[3].query_x, torch.full((2, 3), -3.0))
    parts = batch.split(2)
    assert [len(p) for p in parts] == [3, 2]
    assert torch.equal(parts[1].support_x[0], batch.support_x[3])
    assert [float(e.support_x[0, 0]) for e in batch] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_to_converts_inputs_not_labels():
    ep = make_episode(1.0).to("cpu", torch.float64)
    assert ep.support_x.dtype == torch.float64 and ep.support_y.dtype == torch.int64
    assert ep.is_classification and ep.ways == 2
    reg = Episode(torch.zeros(3, 1), torch.zeros(3, 1), torch.zeros(2, 1), torch.zeros(2, 1))
    reg = reg.to("cpu", torch.float64)
    assert reg.support_y.dtype == torch.float64 and not reg.is_classification
    with pytest.raises(AttributeError, match="regression episode has no 'ways'"):
        _ = reg.ways
    batch = EpisodeBatch.stack([make_episode(0.0)]).to("cpu", torch.float64)
    assert batch.query_x.dtype == torch.float64 and batch.query_y.dtype == torch.int64


def test_stack_rejects_mixed_shapes():
    odd = Episode(torch.zeros(6, 3), torch.zeros(6, dtype=torch.long), torch.zeros(2, 3),
                  torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="must share shapes"):
        EpisodeBatch.stack([make_episode(0.0), odd])
    with pytest.raises(ValueError, match="empty list"):
        EpisodeBatch.stack([])
