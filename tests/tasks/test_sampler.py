import pytest
import torch
from torch.utils.data import DataLoader

from metaloop.data.base import ClassDataset, Splits
from metaloop.tasks.episode import EpisodeBatch
from metaloop.tasks.sampler import FewShotSampler, collate_episode
from metaloop.tasks.seeding import EpisodeStream, derive_seed
from tests.conftest import make_class_dataset


def first_pixels(x):
    """(class, example) codes written by make_class_dataset, recovered from float images."""
    flat = (x.reshape(len(x), -1)[:, :2] * 255).round().long()
    return flat[:, 0], flat[:, 1]


def test_episode_shapes_and_label_remapping(toy_dataset):
    sampler = FewShotSampler(toy_dataset, ways=5, shots=2, queries=3)
    ep = sampler.sample(torch.Generator().manual_seed(0))
    assert ep.support_x.shape == (10, 1, 4, 4) and ep.query_x.shape == (15, 1, 4, 4)
    assert ep.support_x.dtype == torch.float32 and 0 <= ep.support_x.min() and ep.support_x.max() <= 1
    assert ep.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert ep.query_y.tolist() == [c for c in range(5) for _ in range(3)]
    # label i means original class classes[i], in support and query alike
    sup_cls, sup_ex = first_pixels(ep.support_x)
    qry_cls, qry_ex = first_pixels(ep.query_x)
    assert torch.equal(sup_cls, ep.classes[ep.support_y])
    assert torch.equal(qry_cls, ep.classes[ep.query_y])
    assert len(set(ep.classes.tolist())) == 5
    # support and query examples of a class are distinct
    for label in range(5):
        s = set(sup_ex[ep.support_y == label].tolist())
        q = set(qry_ex[ep.query_y == label].tolist())
        assert len(s) == 2 and len(q) == 3 and not s & q


def test_labels_are_permuted_across_episodes(toy_dataset):
    sampler = FewShotSampler(toy_dataset, ways=5, shots=1, queries=1)
    g = torch.Generator().manual_seed(1)
    orders = {tuple(sampler.sample(g).classes.tolist()) for _ in range(30)}
    assert len(orders) > 25  # class→label mapping is random per episode, not sorted


def test_sampling_is_deterministic_by_seed(toy_dataset):
    sampler = FewShotSampler(toy_dataset, ways=3, shots=2, queries=2)
    a = sampler.sample_batch(4, torch.Generator().manual_seed(7))
    b = sampler.sample_batch(4, torch.Generator().manual_seed(7))
    c = sampler.sample_batch(4, torch.Generator().manual_seed(8))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.classes, b.classes)
    assert not torch.equal(a.classes, c.classes)


def test_sample_batch_equals_stacked_samples(toy_dataset):
    sampler = FewShotSampler(toy_dataset, ways=4, shots=2, queries=3)
    batch = sampler.sample_batch(3, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    stacked = EpisodeBatch.stack([sampler.sample(g) for _ in range(3)])
    for name in ("support_x", "support_y", "query_x", "query_y", "classes"):
        assert torch.equal(getattr(batch, name), getattr(stacked, name)), name


def test_dataloader_batch_sampler_matches_in_memory_path(toy_dataset):
    sampler = FewShotSampler(toy_dataset, ways=3, shots=2, queries=1)
    loader = DataLoader(toy_dataset, batch_sampler=sampler.batch_sampler(episodes=6, seed=5),
                        collate_fn=collate_episode(shots=2))
    workers = DataLoader(toy_dataset, batch_sampler=sampler.batch_sampler(episodes=6, seed=5),
                         collate_fn=collate_episode(shots=2), num_workers=2)
    eps, eps_w = list(loader), list(workers)
    assert len(eps) == 6
    for a, b in zip(eps, eps_w, strict=True):
        assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    for ep in eps:
        cls, _ = first_pixels(ep.support_x)
        assert torch.equal(cls, ep.classes[ep.support_y])
        assert ep.support_y.tolist() == [0, 0, 1, 1, 2, 2]


def test_stream_workers_draw_distinct_reproducible_episodes():
    data = make_class_dataset(classes=50, per_class=10)
    sampler = FewShotSampler(data, ways=5, shots=1, queries=1)

    def run():
        loader = DataLoader(EpisodeStream(sampler, seed=11, length=40), batch_size=None, num_workers=2)
        return [tuple(ep.classes.tolist()) + tuple(first_pixels(ep.support_x)[1].tolist())
                for ep in loader]

    first, second = run(), run()
    assert len(first) == 40
    assert first == second  # reproducible with workers
    assert len(set(first)) == 40  # no episode repeated across the two workers


def test_derive_seed_separates_streams():
    seeds = {derive_seed(0, 1), derive_seed(1, 0), derive_seed(0, 0, 1), derive_seed(0, 1, 0)}
    assert len(seeds) == 4
    assert derive_seed(3, 2, 1) == derive_seed(3, 2, 1)


def test_bad_inputs_name_the_fix(toy_dataset):
    with pytest.raises(ValueError, match=r"20-way episodes need 20 classes but toy has only 10"):
        FewShotSampler(toy_dataset, ways=20, shots=1, queries=1)
    too_many = r"shots \+ queries = 9 .* lower shots/queries so shots \+ queries <= 8"
    with pytest.raises(ValueError, match=too_many):
        FewShotSampler(toy_dataset, ways=5, shots=4, queries=5)
    empty = ClassDataset(torch.zeros(0, 1, 4, 4, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), (),
                         name="val")
    with pytest.raises(ValueError, match=r"val: the split is empty"):
        FewShotSampler(empty, ways=5, shots=1, queries=1)
    with pytest.raises(TypeError, match=r"ways must be an int"):
        FewShotSampler(toy_dataset, ways=5.0, shots=1, queries=1)
    with pytest.raises(TypeError, match=r"targets must be an integer tensor"):
        ClassDataset(torch.zeros(2, 3), torch.zeros(2), ("a",))
    with pytest.raises(TypeError, match=r"data must be uint8 images or a float tensor"):
        FewShotSampler(ClassDataset(torch.zeros(4, 2, dtype=torch.int32), torch.tensor([0, 0, 1, 1]),
                                    ("a", "b")), ways=2, shots=1, queries=1)
    with pytest.raises(ValueError, match=r"must be >= 1"):
        FewShotSampler(toy_dataset, ways=0, shots=1, queries=1)


def test_splits_must_be_class_disjoint(toy_dataset):
    a = toy_dataset.subset([0, 1, 2])
    b = toy_dataset.subset([3, 4])
    c = toy_dataset.subset([2, 5])
    Splits(a, b, toy_dataset.subset([5, 6]))
    with pytest.raises(ValueError, match=r"meta-train and meta-test share 1 classes \(e.g. 'class02'\)"):
        Splits(a, b, c)


def test_subset_renumbers_and_keeps_examples(toy_dataset):
    sub = toy_dataset.subset([7, 2])
    assert sub.class_names == ("class07", "class02")
    assert sub.class_sizes().tolist() == [8, 8]
    assert torch.equal(sub.data[sub.indices_of(0)], toy_dataset.data[toy_dataset.indices_of(7)])
    assert sub.fingerprint() != toy_dataset.fingerprint()
