"""mini-ImageNet from Ravi CSVs + per-split zips (generated fixture; real val split when present)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from metaloop.data.mini_imagenet import load_mini_imagenet, load_mini_imagenet_splits
from tests.data.conftest import write_fake_mini_imagenet


@pytest.fixture
def fake_mini(tmp_path):
    root = tmp_path / "mini_imagenet"
    write_fake_mini_imagenet(root, splits=("val",))
    return root


def test_val_split_decodes_in_csv_order(fake_mini, tmp_path):
    ds = load_mini_imagenet(fake_mini, "val", cache_dir=tmp_path / "c")
    assert ds.name == "mini_imagenet-val" and ds.data.dtype == torch.uint8
    assert ds.data.shape == (6, 3, 84, 84)
    assert ds.class_names == ("n010000000", "n010000001")
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 1]
    with zipfile.ZipFile(fake_mini / "images_val.zip") as zf:
        raw = zf.read("images/n01000000100000002.jpg")
    want = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(ds.data[5].numpy(), want)  # RGB channel-first, pixels untouched


def test_resize_option(fake_mini, tmp_path):
    ds = load_mini_imagenet(fake_mini, "val", image_size=32, cache_dir=tmp_path / "c")
    assert ds.data.shape == (6, 3, 32, 32)


def test_missing_split_zip_names_file_and_place(fake_mini, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_mini_imagenet(fake_mini, "train", cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert "images_train.zip missing" in msg and str(fake_mini / "images_train.zip") in msg
    assert "splits/ravi/train.csv" in msg
    with pytest.raises(FileNotFoundError, match="images_train.zip missing.*images_test.zip missing"):
        load_mini_imagenet_splits(fake_mini, cache_dir=tmp_path / "c")


def test_all_three_splits(tmp_path):
    root = tmp_path / "mini_imagenet"
    write_fake_mini_imagenet(root, splits=("train", "val", "test"))
    splits = load_mini_imagenet_splits(root, cache_dir=tmp_path / "c")
    assert [s.num_classes for s in (splits.train, splits.val, splits.test)] == [2, 2, 2]


def test_zip_not_matching_csv(fake_mini, tmp_path):
    with open(fake_mini / "splits" / "ravi" / "val.csv", "a") as f:
        f.write("n0999999900000001.jpg,n09999999\n")
    with pytest.raises(ValueError, match="lacks 1 of the 7 images.*n0999999900000001.jpg"):
        load_mini_imagenet(fake_mini, "val", cache_dir=tmp_path / "c")


def test_bad_csv_and_bad_split(fake_mini, tmp_path):
    (fake_mini / "splits" / "ravi" / "val.csv").write_text("name,class\na.jpg,x\n")
    with pytest.raises(ValueError, match="header 'filename,label'"):
        load_mini_imagenet(fake_mini, "val", cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="unknown mini-ImageNet split"):
        load_mini_imagenet(fake_mini, "validation", cache_dir=tmp_path / "c")


def test_unreadable_image_names_the_file(fake_mini, tmp_path):
    path = fake_mini / "images_val.zip"
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries["images/n01000000000000001.jpg"] = b"not a jpeg"
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in entries.items():
            zf.writestr(n, b)
    with pytest.raises(ValueError, match=r"cannot read image .*n01000000000000001\.jpg"):
        load_mini_imagenet(fake_mini, "val", cache_dir=tmp_path / "c")


@pytest.mark.data
def test_real_val_split(real_data, session_cache):
    ds = load_mini_imagenet(real_data, "val", cache_dir=session_cache)
    assert ds.data.shape == (9600, 3, 84, 84)
    assert ds.num_classes == 16 and ds.class_sizes().tolist() == [600] * 16
    assert ds.class_names[0] == "n01855672"
    assert 60 < ds.data.float().mean() < 200  # natural images, not blank
