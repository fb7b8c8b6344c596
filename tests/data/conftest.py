"""Data-layer fixtures: tiny Omniglot / mini-ImageNet look-alikes built in tmp_path, and the real data.

The fake Omniglot zips use the official layout and 1-bit PNGs (True = white paper), so decoding,
polarity, resizing and splits are tested without the real files.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, shared_data_root

# (zip, alphabet, number of characters); includes the five Lake meta-val alphabets.
FAKE_OMNIGLOT = [
    ("images_background", "Korean", 2),
    ("images_background", "Armenian", 1),
    ("images_background", "Bengali", 1),
    ("images_background", "Early_Aramaic", 1),
    ("images_background", "Hebrew", 1),
    ("images_background", "Mkhedruli_(Georgian)", 1),
    ("images_evaluation", "Angelic", 2),
]
FAKE_DRAWINGS = 3


def fake_ink(char_id: int, drawing: int) -> np.ndarray:
    """A 105x105 bool ink mask (True = ink), different for every character and drawing, asymmetric."""
    ink = np.zeros((105, 105), dtype=bool)
    ink[5 + 3 * char_id: 20 + 3 * char_id, 10:60] = True  # a bar whose height depends on the char
    ink[70:100, 80 + drawing: 90 + drawing] = True  # a bottom-right block, moved per drawing
    return ink


def png_bytes(ink: np.ndarray) -> bytes:
    """Encode like the official files: mode '1', True = white paper, False = ink."""
    buf = io.BytesIO()
    Image.fromarray(~ink).convert("1").save(buf, format="PNG")
    return buf.getvalue()


def write_fake_omniglot(root: Path) -> dict[str, list[np.ndarray]]:
    """Write images_background.zip / images_evaluation.zip + Vinyals split files; return ink masks."""
    root.mkdir(parents=True, exist_ok=True)
    masks: dict[str, list[np.ndarray]] = {}
    char_id = 0
    zips = {z: zipfile.ZipFile(root / f"{z}.zip", "w") for z in ("images_background", "images_evaluation")}
    for z, alphabet, n_chars in FAKE_OMNIGLOT:
        for c in range(1, n_chars + 1):
            char_id += 1
            name = f"{alphabet}/character{c:02d}"
            masks[name] = []
            for d in range(1, FAKE_DRAWINGS + 1):
                ink = fake_ink(char_id, d)
                masks[name].append(ink)
                zips[z].writestr(f"{z}/{name}/{char_id:04d}_{d:02d}.png", png_bytes(ink))
    for zf in zips.values():
        zf.close()
    split_dir = root / "splits" / "vinyals"
    split_dir.mkdir(parents=True)
    assignment = {"train": ["Korean/character01", "Korean/character02", "Angelic/character01"],
                  "val": ["Hebrew/character01", "Armenian/character01"],
                  "test": ["Angelic/character02", "Bengali/character01"]}
    for split, chars in assignment.items():
        lines = [f"{c}/rot{a:03d}" for c in chars for a in (0, 90, 180, 270)]
        (split_dir / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return masks


@pytest.fixture
def fake_omniglot(tmp_path) -> tuple[Path, dict[str, list[np.ndarray]]]:
    root = tmp_path / "data" / "omniglot"
    return root, write_fake_omniglot(root)


def write_fake_mini_imagenet(root: Path, splits=("val",), classes: int = 2, per_class: int = 3) -> None:
    """Ravi-style CSVs for all splits and ``images_<split>.zip`` only for ``splits``."""
    rng = np.random.default_rng(0)
    (root / "splits" / "ravi").mkdir(parents=True, exist_ok=True)
    for s_ix, split in enumerate(("train", "val", "test")):
        rows = [(f"n0{s_ix}{c:07d}{i:08d}.jpg", f"n0{s_ix}{c:07d}")
                for c in range(classes) for i in range(per_class)]
        with open(root / "splits" / "ravi" / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["filename", "label"])
            w.writerows(rows)
        if split in splits:
            with zipfile.ZipFile(root / f"images_{split}.zip", "w", zipfile.ZIP_STORED) as zf:
                for filename, _ in rows:
                    buf = io.BytesIO()
                    pixels = rng.integers(0, 256, (84, 84, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
                    zf.writestr(f"images/{filename}", buf.getvalue())


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """No test writes to ~/.cache: the default cache folder points into tmp_path."""
    monkeypatch.setenv("METALOOP_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = shared_data_root()
    if root is None or not (root / "omniglot").is_dir():
        pytest.skip("real data absent: set METALOOP_DATA or place shared/data beside the repository")
    return root


@pytest.fixture(scope="session")
def session_cache() -> Path:
    """One cache for the whole test session (and across runs): <repo>/.cache/test-data, git-ignored.

    A cold decode of Omniglot takes a few seconds; later runs load the cached tensors.
    """
    path = REPO / ".cache" / "test-data"
    path.mkdir(parents=True, exist_ok=True)
    return path
