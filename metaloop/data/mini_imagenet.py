"""mini-ImageNet (Vinyals et al. 2016) with the Ravi & Larochelle (ICLR 2017) class split.

100 ImageNet classes x 600 images, 84x84 RGB JPEG; 64 meta-train / 16 meta-val / 20 meta-test
classes listed in ``<root>/splits/ravi/{train,val,test}.csv`` (``filename,label`` rows). The images of
each split are read straight from ``<root>/images_<split>.zip`` (entries ``images/<filename>``, the
layout of Ravi's ``images/`` folder), decoded once and cached as uint8 ``[n, 3, 84, 84]``.
Class names are WordNet ids (``n01855672``), in the order they first appear in the CSV.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from metaloop.data.base import ClassDataset, Splits
from metaloop.data.cache import load_or_build
from metaloop.data.images import as_size, check_resample, decode_image
from metaloop.data.omniglot import open_zip
from metaloop.data.root import resolve_data_root

SPLIT_NAMES = ("train", "val", "test")
EXPECTED_CLASSES = {"train": 64, "val": 16, "test": 20}
IMAGES_PER_CLASS = 600
NATIVE_SIZE = 84


def _check_split(split: str) -> None:
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown mini-ImageNet split {split!r}; use one of {SPLIT_NAMES}")


def split_csv(root: Path, split: str) -> Path:
    return Path(root) / "splits" / "ravi" / f"{split}.csv"


def split_zip(root: Path, split: str) -> Path:
    return Path(root) / f"images_{split}.zip"


def read_split_csv(path: Path) -> list[tuple[str, str]]:
    """``[(filename, wnid), ...]`` from a Ravi split CSV, validated."""
    if not path.is_file():
        raise FileNotFoundError(
            f"mini_imagenet: split file {path} missing. The Ravi & Larochelle split CSVs are at "
            "github.com/twitter/meta-learning-lstm (data/miniImagenet) and "
            f"github.com/jakesnell/prototypical-networks; put train.csv, val.csv, test.csv in {path.parent}"
        )
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["filename", "label"]:
        raise ValueError(f"mini_imagenet: {path} must start with the header 'filename,label'")
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(f"mini_imagenet: {path}, line {lineno}: expected 'filename,label', got {row}")
        out.append((row[0].strip(), row[1].strip()))
    if not out:
        raise ValueError(f"mini_imagenet: {path} lists no images")
    return out


def missing_zip_message(root: Path, split: str, n_images: int | None = None) -> str:
    count = f"the {n_images:,} " if n_images else "the "
    return (
        f"mini_imagenet: images_{split}.zip missing (expected at {split_zip(root, split)}). "
        f"Put there a zip holding {count}meta-{split} JPEGs as images/<filename> for every row of "
        f"splits/ravi/{split}.csv (zip Ravi's images/ folder restricted to that split)."
    )


def _member_map(zf: zipfile.ZipFile) -> dict[str, str]:
    return {m.rsplit("/", 1)[-1]: m for m in zf.namelist() if not m.endswith("/")}


def _decode(root: Path, split: str, size: tuple[int, int] | None, resample: str) -> dict:
    rows = read_split_csv(split_csv(root, split))
    path = split_zip(root, split)
    with open_zip(path, "mini_imagenet") as zf:
        members = _member_map(zf)
        missing = [f for f, _ in rows if f not in members]
        if missing:
            raise ValueError(
                f"mini_imagenet: {path} lacks {len(missing)} of the {len(rows)} images listed in "
                f"{split_csv(root, split)} (first: {missing[0]!r}); the zip does not match the split"
            )
        class_names = list(dict.fromkeys(label for _, label in rows))
        index = {c: i for i, c in enumerate(class_names)}
        images = []
        for filename, _ in rows:
            try:
                raw = zf.read(members[filename])
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ValueError(f"mini_imagenet: cannot read {filename} from {path} ({e}); "
                                 "the zip is corrupt. Rebuild or download it again.") from e
            images.append(decode_image(raw, f"{path}:{members[filename]}", 3, size, resample))
    return {
        "data": torch.from_numpy(np.stack(images)),
        "targets": torch.tensor([index[label] for _, label in rows], dtype=torch.int64),
        "class_names": class_names,
    }


def load_mini_imagenet(
    root: str | os.PathLike | None = None,
    split: str = "val",
    image_size: int = NATIVE_SIZE,
    cache_dir: str | os.PathLike | None = None,
    resample: str = "lanczos",
) -> ClassDataset:
    """One Ravi split as a ClassDataset named ``mini_imagenet-<split>`` (uint8 ``[n, 3, H, W]``).

    image_size: 84 keeps the stored pixels; other sizes resize with ``resample``.
    """
    _check_split(split)
    root = resolve_data_root(root, "mini_imagenet")
    csv_path = split_csv(root, split)
    n_rows = len(read_split_csv(csv_path))
    zip_path = split_zip(root, split)
    if not zip_path.is_file():
        raise FileNotFoundError(missing_zip_message(root, split, n_rows))
    size = as_size(image_size)
    if size == (NATIVE_SIZE, NATIVE_SIZE):
        size, resample = None, "none"
    else:
        check_resample(resample)
    params = {"split": split, "size": "x".join(map(str, size or (NATIVE_SIZE,) * 2)),
              "resample": resample}
    payload = load_or_build(
        "mini_imagenet", [zip_path, csv_path], params,
        lambda: _decode(root, split, size, resample), cache_dir,
    )
    return ClassDataset(payload["data"], payload["targets"], payload["class_names"],
                        name=f"mini_imagenet-{split}")


def load_mini_imagenet_splits(
    root: str | os.PathLike | None = None,
    image_size: int = NATIVE_SIZE,
    cache_dir: str | os.PathLike | None = None,
    resample: str = "lanczos",
) -> Splits:
    """All three Ravi splits; needs ``images_train.zip``, ``images_val.zip`` and ``images_test.zip``."""
    root = resolve_data_root(root, "mini_imagenet")
    missing = [s for s in SPLIT_NAMES if not split_zip(root, s).is_file()]
    if missing:
        raise FileNotFoundError(
            "mini_imagenet: the full split needs all three image zips; "
            + "; ".join(f"images_{s}.zip missing (expected at {split_zip(root, s)})" for s in missing)
            + ". Each zip holds images/<filename> for every row of splits/ravi/<split>.csv."
        )
    parts = [load_mini_imagenet(root, s, image_size, cache_dir, resample) for s in SPLIT_NAMES]
    return Splits(*parts)
