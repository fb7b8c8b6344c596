"""Omniglot loading on a tiny generated copy with the official zip layout and 1-bit PNGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from metaloop.data.omniglot import alphabet_of, load_omniglot_characters, omniglot_alphabets
from metaloop.data.omniglot_splits import load_omniglot
from metaloop.tasks.augment import rotate_classes
from tests.data.conftest import FAKE_DRAWINGS


def test_polarity_and_exact_pixels_at_105(fake_omniglot, tmp_path):
    root, masks = fake_omniglot
    ds = load_omniglot_characters(root, image_size=105, cache_dir=tmp_path / "c")
    assert ds.data.dtype == torch.uint8 and ds.data.shape[1:] == (1, 105, 105)
    assert ds.class_names == tuple(sorted(masks))  # classes sorted by name across both zips
    for c, name in enumerate(ds.class_names):
        got = ds.data[ds.indices_of(c), 0].numpy()
        want = np.stack(masks[name]).astype(np.uint8) * 255  # ink = 255, paper = 0
        assert np.array_equal(got, want), name
    assert len(ds) == len(masks) * FAKE_DRAWINGS


def test_resize_28_is_lanczos_of_the_inked_image(fake_omniglot, tmp_path):
    root, masks = fake_omniglot
    ds = load_omniglot_characters(root, image_size=28, cache_dir=tmp_path / "c")
    assert ds.data.shape[1:] == (1, 28, 28)
    c = ds.class_names.index("Korean/character01")
    got = ds.data[ds.indices_of(c)[0], 0].numpy()
    paper = Image.fromarray((~masks["Korean/character01"][0]).astype(np.uint8) * 255)
    want = 255 - np.asarray(paper.resize((28, 28), Image.Resampling.LANCZOS))
    assert np.array_equal(got, want)
    # By hand: the bottom-right ink block (rows 70-99, cols 81-90; x 28/105: rows 18.7-26.4,
    # cols 21.6-24) is near-solid ink inside, and paper more than a Lanczos-3 support (3 output
    # pixels) away from any ink stays exactly 0.
    assert got[19:25, 22:24].min() >= 250 and got[10:14, 0:6].max() == 0
    # Anti-aliased: intermediate gray levels exist on edges.
    assert ((got > 0) & (got < 255)).any()
    box = load_omniglot_characters(root, image_size=28, cache_dir=tmp_path / "c", resample="box")
    assert not torch.equal(box.data, ds.data)


def test_alphabets_mapping(fake_omniglot, tmp_path):
    root, _ = fake_omniglot
    ds = load_omniglot_characters(root, cache_dir=tmp_path / "c")
    groups = omniglot_alphabets(ds)
    assert list(groups) == sorted(groups)
    assert [ds.class_names[i] for i in groups["Korean"]] == ["Korean/character01", "Korean/character02"]
    assert alphabet_of("Korean/character01/rot090") == "Korean"
    assert sum(len(v) for v in groups.values()) == ds.num_classes


def test_vinyals_split_from_files(fake_omniglot, tmp_path):
    root, _ = fake_omniglot
    splits = load_omniglot(root.parent, split="vinyals", cache_dir=tmp_path / "c")
    assert (splits.train.num_classes, splits.val.num_classes, splits.test.num_classes) == (12, 8, 8)
    assert splits.train.class_names[:2] == ("Korean/character01/rot000", "Korean/character01/rot090")
    assert splits.val.name == "omniglot-vinyals-val"
    base = load_omniglot_characters(root, cache_dir=tmp_path / "c")
    b = base.data[base.indices_of(base.class_names.index("Angelic/character02"))]
    t = splits.test
    r270 = t.data[t.indices_of(t.class_names.index("Angelic/character02/rot270"))]
    assert torch.equal(r270, torch.rot90(b, 3, dims=(-2, -1)))


def test_lake_split(fake_omniglot, tmp_path):
    root, masks = fake_omniglot
    splits = load_omniglot(root, split="lake", cache_dir=tmp_path / "c")
    assert splits.train.class_names == ("Korean/character01", "Korean/character02")
    assert {alphabet_of(n) for n in splits.val.class_names} == {
        "Armenian", "Bengali", "Early_Aramaic", "Hebrew", "Mkhedruli_(Georgian)"}
    assert splits.test.class_names == ("Angelic/character01", "Angelic/character02")
    rotated = load_omniglot(root, split="lake", cache_dir=tmp_path / "c", rotations=True)
    assert rotated.train.num_classes == 8
    with pytest.raises(ValueError, match="rotated classes"):
        load_omniglot(root, split="vinyals", rotations=False, cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="unknown Omniglot split"):
        load_omniglot(root, split="random", cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="split='reptile' needs all 1,623 characters .* found 9"):
        load_omniglot(root, split="reptile", cache_dir=tmp_path / "c")


@pytest.mark.parametrize("content, message", [
    ("Korean/character01/rot000\nKorean/character01\n", r"line 2: 'Korean/character01' is not"),
    ("Korean/character01/rot045\n", r"line 1: .* is not"),
    ("Korean/character01/rot000\n\nKorean/character01/rot000\n", r"line 3: .* repeats line 1"),
    ("Korean/character09/rot000\n", r"names character 'Korean/character09', which is not"),
    ("\n\n", "lists no classes"),
])
def test_bad_split_files(fake_omniglot, tmp_path, content, message):
    root, _ = fake_omniglot
    (root / "splits" / "vinyals" / "val.txt").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_omniglot(root, cache_dir=tmp_path / "c")


def test_missing_split_file(fake_omniglot, tmp_path):
    root, _ = fake_omniglot
    (root / "splits" / "vinyals" / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"split file .*test.txt missing.*prototypical"):
        load_omniglot(root, cache_dir=tmp_path / "c")


def test_missing_zip_names_file_and_place(fake_omniglot, tmp_path):
    root, _ = fake_omniglot
    (root / "images_evaluation.zip").unlink()
    with pytest.raises(FileNotFoundError) as e:
        load_omniglot_characters(root, cache_dir=tmp_path / "c")
    assert "images_evaluation.zip missing" in str(e.value)
    assert str(root / "images_evaluation.zip") in str(e.value)


@pytest.mark.parametrize("damage", ["truncate", "not_a_zip"])
def test_corrupt_zip_is_a_clear_error(fake_omniglot, tmp_path, damage):
    root, _ = fake_omniglot
    path = root / "images_background.zip"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"<html>404</html>")
    with pytest.raises(ValueError, match="not a readable zip file.*Download it again"):
        load_omniglot_characters(root, cache_dir=tmp_path / "c")


def test_unexpected_layout_is_reported(tmp_path):
    import zipfile

    root = tmp_path / "omniglot"
    root.mkdir()
    for z in ("images_background", "images_evaluation"):
        with zipfile.ZipFile(root / f"{z}.zip", "w") as zf:
            zf.writestr(f"{z}/Korean/0643_01.png", b"")
    with pytest.raises(ValueError, match="unexpected entry .*official layout"):
        load_omniglot_characters(root, cache_dir=tmp_path / "c")


def test_second_load_hits_the_cache(fake_omniglot, tmp_path, monkeypatch):
    root, _ = fake_omniglot
    first = load_omniglot_characters(root, cache_dir=tmp_path / "c")
    import metaloop.data.omniglot as om

    monkeypatch.setattr(om, "_decode", lambda *a: pytest.fail("decoded again despite the cache"))
    second = load_omniglot_characters(root, cache_dir=tmp_path / "c")
    assert torch.equal(first.data, second.data) and first.class_names == second.class_names


def test_vinyals_split_equals_rotate_classes(fake_omniglot, tmp_path):
    """The split loader's one-gather path gives exactly rotate_classes + subset_by_names."""
    root, _ = fake_omniglot
    (root / "splits" / "vinyals" / "val.txt").write_text(
        "Hebrew/character01/rot270\nArmenian/character01/rot000\nHebrew/character01/rot090\n")
    splits = load_omniglot(root, cache_dir=tmp_path / "c")
    base = load_omniglot_characters(root, cache_dir=tmp_path / "c")
    names = ["Hebrew/character01/rot270", "Armenian/character01/rot000", "Hebrew/character01/rot090"]
    ref = rotate_classes(base.subset_by_names(["Hebrew/character01", "Armenian/character01"]))
    ref = ref.subset_by_names(names)
    assert splits.val.class_names == ref.class_names
    for c in range(3):
        assert torch.equal(splits.val.data[splits.val.indices_of(c)], ref.data[ref.indices_of(c)])
