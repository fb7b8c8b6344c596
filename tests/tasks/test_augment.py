"""rotate_classes: each quarter turn a new class, counter-clockwise like PIL's Image.rotate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from metaloop.data.base import ClassDataset
from metaloop.tasks.augment import rotate_classes

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
