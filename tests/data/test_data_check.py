"""check_dataset: one-line verdicts for good, incomplete and damaged data; never a traceback."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from metaloop.data import check
from metaloop.data import mini_imagenet as mi
from metaloop.data.check import check_dataset
from tests.data.conftest import write_fake_mini_imagenet


@pytest.fixture
def small_omniglot(fake_omniglot, monkeypatch):
    """The fake Omniglot with the expected counts scaled down to its size."""
    monkeypatch.setattr(check, "OMNIGLOT_EXPECTED", {
        "images_background.zip": (6, 7, 21), "images_evaluation.zip": (1, 2, 6)})
    monkeypatch.setattr(check, "VINYALS_EXPECTED", {"train": 12, "val": 8, "test": 8})
    monkeypatch.setattr(check, "DRAWINGS_PER_CHARACTER", 3)
    return fake_omniglot[0]


def _write_sums(root, names):
    lines = [f"{hashlib.sha256((root / n).read_bytes()).hexdigest()}  {n}" for n in names]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_ok_verdict(small_omniglot):
    _write_sums(small_omniglot, ["images_background.zip", "images_evaluation.zip"])
    ok, verdict, details = check_dataset("omniglot", small_omniglot)
    assert ok, verdict
    assert verdict.startswith("omniglot: OK — 9 characters, 27 images, checksums match (2 files)")
    assert "Vinyals split 12/8/8" in verdict
    assert any("6 alphabets, 7 characters, 21 images" in d for d in details)


def test_wrong_counts_fail(fake_omniglot):
    ok, verdict, _ = check_dataset("omniglot", fake_omniglot[0])
    assert not ok
    assert ("images_background.zip holds 6 alphabets / 7 characters / 21 images, "
            "expected 30 / 964 / 19280") in verdict


def test_missing_zip(small_omniglot):
    (small_omniglot / "images_evaluation.zip").unlink()
    ok, verdict, _ = check_dataset("omniglot", small_omniglot)
    assert not ok
    assert verdict.startswith("omniglot: FAILED — images_evaluation.zip missing (expected at ")
    assert str(small_omniglot / "images_evaluation.zip") in verdict


@pytest.mark.parametrize("damage", ["truncate", "not_a_zip"])
def test_damaged_zip(small_omniglot, damage):
    path = small_omniglot / "images_background.zip"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 3] if damage == "truncate" else b"PK\x03\x04oops")
    ok, verdict, _ = check_dataset("omniglot", small_omniglot)
    assert not ok and "images_background.zip is not a readable zip" in verdict


def test_crc_failure(small_omniglot):
    path = small_omniglot / "images_background.zip"
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[0]
    blob = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    blob[start + 5] ^= 0xFF  # flip a byte inside the first entry's data
    path.write_bytes(bytes(blob))
    ok, verdict, _ = check_dataset("omniglot", small_omniglot)
    assert not ok and ("CRC" in verdict or "not a readable zip" in verdict), verdict


def test_checksum_mismatch(small_omniglot):
    (small_omniglot / "SHA256SUMS").write_text("0" * 64 + "  images_background.zip\n")
    ok, verdict, _ = check_dataset("omniglot", small_omniglot)
    assert not ok and "images_background.zip checksum mismatch" in verdict


def test_bad_split_file(small_omniglot):
    (small_omniglot / "splits" / "vinyals" / "test.txt").write_text("Korean/character01\n")
    ok, verdict, _ = check_dataset("omniglot", small_omniglot)
    assert not ok and "test.txt, line 1" in verdict


def test_nothing_there_and_unknown_name(tmp_path):
    ok, verdict, _ = check_dataset("omniglot", tmp_path / "nowhere")
    assert not ok and verdict.startswith("omniglot: FAILED — omniglot data not found")
    with pytest.raises(ValueError, match="unknown dataset"):
        check_dataset("cifar", tmp_path)


@pytest.fixture
def small_mini(tmp_path, monkeypatch):
    monkeypatch.setattr(mi, "EXPECTED_CLASSES", {"train": 2, "val": 2, "test": 2})
    monkeypatch.setattr(mi, "IMAGES_PER_CLASS", 3)
    root = tmp_path / "mini_imagenet"
    write_fake_mini_imagenet(root, splits=("val",))
    return root


def test_mini_partial(small_mini):
    ok, verdict, details = check_dataset("mini-imagenet", small_mini)
    assert ok
    assert verdict.startswith("mini_imagenet: PARTIAL — val (2 classes x 3) OK")
    assert f"train, test images missing (expected at {small_mini / 'images_train.zip'}" in verdict


def test_mini_truncated_zip(small_mini):
    path = small_mini / "images_val.zip"
    path.write_bytes(path.read_bytes()[:100])
    ok, verdict, _ = check_dataset("mini_imagenet", small_mini)
    assert not ok and "images_val.zip is not a readable zip" in verdict


@pytest.mark.data
def test_real_data_verdicts(real_data):
    ok, verdict, _ = check_dataset("omniglot", real_data)
    assert ok, verdict
    assert verdict.startswith("omniglot: OK — 1623 characters, 32460 images, checksums match")
    assert "Vinyals split 4112/688/1692" in verdict
    ok, verdict, _ = check_dataset("mini_imagenet", real_data)
    assert ok and verdict.startswith("mini_imagenet: PARTIAL — val (16 classes x 600) OK"), verdict
