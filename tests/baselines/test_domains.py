import pytest
import torch

from metaloop.baselines.domains import cross_domain_splits, domain_drop, to_common_format
from metaloop.data.base import ClassDataset, Splits
from tests.conftest import make_class_dataset


def test_rgb_to_grey_luma_and_area_resize():
    data = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    data[0, 0] = 255  # pure red
    data[0, :, :2, :2] = 0  # top-left 2x2 block black
    ds = ClassDataset(data, torch.tensor([0]), ["red"])
    out = to_common_format(ds, image_size=2, channels=1)
    # 0.299 * 255 = 76.245 → 76; the black block averages to 0
    assert out.data.shape == (1, 1, 2, 2)
    assert out.data[0, 0].tolist() == [[0, 76], [76, 76]]


def test_grey_to_rgb_upsize_and_invert():
    ds = ClassDataset(torch.full((2, 1, 2, 2), 200, dtype=torch.uint8), torch.tensor([0, 1]), ["a", "b"])
    out = to_common_format(ds, image_size=4, channels=3, invert=True)
    assert out.data.shape == (2, 3, 4, 4) and bool((out.data == 55).all())
    assert out.class_names == ds.class_names


def test_cross_domain_splits_take_test_from_target_and_stay_disjoint():
    a = make_class_dataset(classes=6, per_class=3, shape=(1, 8, 8))
    b = make_class_dataset(classes=6, per_class=3, shape=(3, 4, 4), seed=1)
    src = Splits(a.subset([0, 1]), a.subset([2, 3]), a.subset([4, 5]))
    tgt = Splits(b.subset([0, 1]), b.subset([2, 3]), b.subset([4, 5]))  # same class names as a
    s = cross_domain_splits(src, tgt, image_size=4, channels=1, source_name="omniglot",
                            target_name="mini")
    assert s.test.class_names == ("mini:class04", "mini:class05")
    assert s.train.class_names == ("omniglot:class00", "omniglot:class01")
    assert s.train.data.shape[1:] == s.test.data.shape[1:] == (1, 4, 4)
    with pytest.raises(ValueError, match="uint8"):
        to_common_format(ClassDataset(torch.zeros(1, 1, 2, 2), torch.tensor([0]), ["x"]), 2, 1)


def test_domain_drop():
    d = domain_drop(0.9, 0.6)
    assert d["drop"] == pytest.approx(0.3) and d["relative_drop"] == pytest.approx(1 / 3)
