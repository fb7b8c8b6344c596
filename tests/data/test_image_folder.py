"""load_image_folder: one folder per class, from a directory or a zip, with clear errors."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from metaloop.data.folder import load_image_folder


def _write(path, value, size=(10, 8), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0]) + ((3,) if mode == "RGB" else ()), value, dtype=np.uint8)
    arr[0, 0] = 0 if value else 255  # an asymmetric pixel to check orientation
    Image.fromarray(arr, mode).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "pets"
    _write(root / "dog" / "b.png", 100)
    _write(root / "dog" / "a.png", 50)
    _write(root / "cat" / "1.png", 200)
    (root / "cat" / "README.txt").write_text("ignored")
    return root


def test_classes_sorted_and_pixels_kept(folder):
    ds = load_image_folder(folder, channels=1)
    assert ds.class_names == ("cat", "dog") and ds.name == "pets"
    assert ds.data.shape == (3, 1, 8, 10)
    assert ds.targets.tolist() == [0, 1, 1]
    assert [int(x) for x in ds.data[:, 0, 1, 1]] == [200, 50, 100]  # files sorted within a class
    assert int(ds.data[1, 0, 0, 0]) == 0 and int(ds.data[1, 0, 0, 1]) == 50


def test_channels_resize_invert(folder):
    rgb = load_image_folder(folder, image_size=4, channels=3)
    assert rgb.data.shape == (3, 3, 4, 4)
    inv = load_image_folder(folder, channels=1, invert=True)
    assert int(inv.data[0, 0, 1, 1]) == 55
    with pytest.raises(ValueError, match="channels must be 1"):
        load_image_folder(folder, channels=2)


def test_zip_with_top_folder(folder, tmp_path):
    path = tmp_path / "pets.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"pets/{f.relative_to(folder)}")
    from_zip = load_image_folder(path, channels=1)
    from_dir = load_image_folder(folder, channels=1)
    assert from_zip.class_names == from_dir.class_names
    assert (from_zip.data == from_dir.data).all()


def test_empty_class_folder(folder):
    (folder / "bird").mkdir()
    with pytest.raises(ValueError, match="class folder 'bird' .* holds no images"):
        load_image_folder(folder)


def test_unreadable_image_names_the_file(folder):
    (folder / "dog" / "c.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match=r"cannot read image .*dog/c\.jpg"):
        load_image_folder(folder)


def test_mixed_sizes_need_image_size(folder):
    _write(folder / "cat" / "2.png", 10, size=(12, 12))
    with pytest.raises(ValueError, match="pass image_size"):
        load_image_folder(folder)
    assert load_image_folder(folder, image_size=(6, 5)).data.shape == (4, 3, 6, 5)


def test_no_class_folders(tmp_path):
    _write(tmp_path / "flat" / "x.png", 1)
    with pytest.raises(ValueError, match="no class folders.*1 loose images"):
        load_image_folder(tmp_path / "flat")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
