"""rotate_classes: each quarter turn a new class, counter-clockwise like PIL's Image.rotate.
random_shift / ShiftedTasks: each meta-training image translated by its own offset, edges repeated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from metaloop.data.base import ClassDataset
from metaloop.tasks.augment import ShiftedTasks, augmentation, random_shift, rotate_classes
from metaloop.tasks.sampler import FewShotSampler

GRID = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=torch.uint8)


def _dataset() -> ClassDataset:
    data = torch.stack([GRID, GRID + 10, GRID + 20])[:, None]  # 3 examples, [3, 1, 3, 3]
    return ClassDataset(data, torch.tensor([0, 1, 0]), ("A/character01", "B/character07"), name="t")


def test_quarter_turns_are_counter_clockwise_by_hand():
    rot = rotate_classes(_dataset())
    assert rot.class_names == (
        "A/character01/rot000", "A/character01/rot090", "A/character01/rot180", "A/character01/rot270",
        "B/character07/rot000", "B/character07/rot090", "B/character07/rot180", "B/character07/rot270",
    )
    first = {c: rot.data[rot.indices_of(c)[0], 0].tolist() for c in range(4)}
    assert first[0] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert first[1] == [[3, 6, 9], [2, 5, 8], [1, 4, 7]]  # top-right corner moves to top-left
    assert first[2] == [[9, 8, 7], [6, 5, 4], [3, 2, 1]]
    assert first[3] == [[7, 4, 1], [8, 5, 2], [9, 6, 3]]


def test_matches_pil_rotate_used_by_prototypical_networks():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1, 1, 7, 7), dtype=np.uint8)
    ds = ClassDataset(torch.from_numpy(img), torch.tensor([0]), ("x",))
    rot = rotate_classes(ds)
    for c, angle in enumerate((0, 90, 180, 270)):
        pil = np.asarray(Image.fromarray(img[0, 0]).rotate(angle))
        assert np.array_equal(rot.data[rot.indices_of(c)[0], 0].numpy(), pil), angle


def test_examples_and_counts_follow_their_class():
    base = _dataset()
    rot = rotate_classes(base, angles=(0, 180))
    assert rot.num_classes == 4 and len(rot) == 6
    assert rot.class_sizes().tolist() == [2, 2, 1, 1]
    # Class B/character07/rot180 holds exactly the 180-degree turn of B's one example.
    b180 = rot.data[rot.indices_of(3)]
    assert torch.equal(b180[0], torch.rot90(base.data[1], 2, dims=(-2, -1)))
    assert rot.data.dtype == torch.uint8


@pytest.mark.parametrize("angles, message", [((45,), "not one of 0, 90"), ((), "empty"),
                                              ((90, 90), "repeated")])
def test_bad_angles(angles, message):
    with pytest.raises(ValueError, match=message):
        rotate_classes(_dataset(), angles=angles)


def test_non_square_images_refuse_quarter_turns():
    ds = ClassDataset(torch.zeros(2, 1, 3, 4, dtype=torch.uint8), torch.tensor([0, 0]), ("x",))
    with pytest.raises(ValueError, match="non-square"):
        rotate_classes(ds)
    assert rotate_classes(ds, angles=(0, 180)).num_classes == 2


def _offsets(n: int, max_shift: int, seed: int) -> torch.Tensor:
    """The (row, column) crop offsets random_shift draws first from a fresh generator."""
    return torch.randint(0, 2 * max_shift + 1, (2, n), generator=torch.Generator().manual_seed(seed))


def test_random_shift_moves_each_image_by_its_own_offset_by_hand():
    images = torch.zeros(40, 1, 7, 7)
    images[:, 0, 3, 3] = 1.0  # one lit pixel in the middle of each image
    shifted = random_shift(images, 2, torch.Generator().manual_seed(4))
    rows, cols = _offsets(40, 2, 4)
    for i in range(40):
        lit = torch.nonzero(shifted[i, 0]).tolist()
        # a crop at offset o of the 2-pixel padded image moves the content by 2 - o
        assert lit == [[3 + 2 - rows[i].item(), 3 + 2 - cols[i].item()]]
    assert len({tuple(p) for p in torch.stack([rows, cols], 1).tolist()}) > 10  # offsets differ per image
    assert shifted.sum().item() == 40.0


def test_random_shift_repeats_the_edges_into_the_border():
    ramp = torch.arange(5.0).repeat(5, 1)[None, None]  # columns 0..4
    out = random_shift(ramp.expand(30, 1, 5, 5), 2, torch.Generator().manual_seed(0))
    rows, cols = _offsets(30, 2, 0)
    for i in range(30):
        move = 2 - cols[i].item()
        expected = (torch.arange(5.0) - move).clamp(0, 4)  # content moved right by `move`, edge repeated
        assert torch.equal(out[i, 0], expected.repeat(5, 1)), (i, move)


def test_random_shift_keeps_leading_dims_and_is_reproducible():
    images = torch.rand(3, 4, 2, 6, 6)
    a = random_shift(images, 1, torch.Generator().manual_seed(1))
    b = random_shift(images, 1, torch.Generator().manual_seed(1))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, images)
    assert random_shift(images, 0) is images


@pytest.mark.parametrize("shift, message", [(-1, "max_shift must be an int >= 0"),
                                            (1.5, "max_shift must be an int >= 0"),
                                            (6, "max_shift 6 would move 6x6 images off the frame")])
def test_random_shift_refuses_bad_shifts(shift, message):
    with pytest.raises(ValueError, match=message):
        random_shift(torch.zeros(1, 1, 6, 6), shift)


def test_shifted_tasks_augment_images_only_and_follow_the_stream_generator():
    from tests.conftest import make_class_dataset

    sampler = FewShotSampler(make_class_dataset(8, 6, (1, 9, 9), seed=0), 3, 2, 2)
    tasks = ShiftedTasks(sampler, 2)
    plain = sampler.sample_batch(4, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    shifted = tasks.sample_batch(4, g)
    assert torch.equal(shifted.support_y, plain.support_y) and torch.equal(shifted.classes, plain.classes)
    assert shifted.query_x.shape == plain.query_x.shape and not torch.equal(shifted.query_x, plain.query_x)
    # the offsets are drawn from the stream generator after the episodes: replay them by hand
    replay = torch.Generator().manual_seed(7)
    sampler.sample_batch(4, replay)
    assert torch.equal(shifted.support_x, random_shift(plain.support_x, 2, replay))
    assert torch.equal(shifted.query_x, random_shift(plain.query_x, 2, replay))
    assert torch.equal(g.get_state(), replay.get_state())
    assert tasks.sample(torch.Generator()).support_x.shape == (6, 1, 9, 9)


def test_augmentation_spec_is_checked():
    source = object()
    assert augmentation({})(source) is source and augmentation({"shift": 0})(source) is source
    assert augmentation({"shift": 2})(source).max_shift == 2
    with pytest.raises(ValueError, match="unknown augmentation 'flip'; the one available is shift"):
        augmentation({"flip": True})
    with pytest.raises(ValueError, match="shift must be an int >= 1"):
        augmentation({"shift": True})
