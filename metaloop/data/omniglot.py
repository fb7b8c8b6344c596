"""Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015) read straight from the official zips.

``images_background.zip`` (30 alphabets, 964 characters) and ``images_evaluation.zip`` (20 alphabets,
659 characters), 20 drawings of 105x105 each: 1,623 characters, 32,460 images. Entries look like
``images_background/Korean/character01/0643_01.png``; nothing is extracted to disk.

Pixels: the PNGs are 1-bit with True = white paper. We store **ink = 255, paper = 0** (uint8), the
polarity most few-shot code uses after its ``1 - x``.

Resizing to 28x28 (the MAML / Prototypical Networks / Matching Networks size) uses Pillow's
**Lanczos** filter on the 8-bit grayscale image, as in Finn et al.'s MAML ``resize_images.py`` and
learn2learn (``Resize(28, interpolation=LANCZOS)``); it gives anti-aliased gray levels. Pass
``resample="box"`` for area averaging, or ``"nearest"`` to mimic Snell's loader (``Image.resize`` on
a mode-1 image, which Pillow always does with nearest neighbour). ``image_size=105`` keeps the
original pixels (binary 0 / 255).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from metaloop.data.base import ClassDataset
from metaloop.data.cache import load_or_build
from metaloop.data.images import as_size, check_resample, decode_image
from metaloop.data.root import resolve_data_root

BACKGROUND_ZIP = "images_background.zip"
EVALUATION_ZIP = "images_evaluation.zip"
ZIPS = (BACKGROUND_ZIP, EVALUATION_ZIP)
DOWNLOAD_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
NATIVE_SIZE = 105

_ENTRY = re.compile(r"^(images_background|images_evaluation)/([^/]+)/(character\d+)/([^/]+\.png)$")


def omniglot_zip(root: Path, filename: str) -> Path:
    """The path of one official zip, or a FileNotFoundError saying where it should be."""
    path = Path(root) / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"omniglot: {filename} missing (expected at {path}). Download it from "
            f"{DOWNLOAD_URL}{filename} and put it there, unextracted."
        )
    return path


def open_zip(path: Path, dataset: str) -> zipfile.ZipFile:
    """``zipfile.ZipFile`` with a clear error for a truncated or non-zip file."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(
            f"{dataset}: {path} is not a readable zip file ({e}); it is probably truncated or "
            "corrupt. Download it again."
        ) from e


def list_characters(zf: zipfile.ZipFile, zip_path: Path) -> dict[str, list[str]]:
    """``{"Alphabet/characterNN": [member names, sorted]}`` for one official zip."""
    chars: dict[str, list[str]] = {}
    for member in zf.namelist():
        if member.endswith("/") or member.startswith("__MACOSX/") or not member.endswith(".png"):
            continue
        m = _ENTRY.match(member)
        if m is None:
            raise ValueError(
                f"omniglot: unexpected entry {member!r} in {zip_path}; expected "
                "images_background|images_evaluation/<Alphabet>/characterNN/IIII_DD.png "
                "(the official layout)"
            )
        chars.setdefault(f"{m.group(2)}/{m.group(3)}", []).append(member)
    if not chars:
        raise ValueError(f"omniglot: {zip_path} holds no character images in the official layout")
    return {k: sorted(v) for k, v in chars.items()}


def _decode(root: Path, size: tuple[int, int] | None, resample: str) -> dict:
    """Decode every PNG of both zips; classes sorted by name, drawings by file name."""
    images: list[np.ndarray] = []
    targets: list[int] = []
    names: list[str] = []
    background: list[str] = []
    per_zip = []
    for filename in ZIPS:
        path = omniglot_zip(root, filename)
        zf = open_zip(path, "omniglot")
        per_zip.append((zf, path, list_characters(zf, path), filename == BACKGROUND_ZIP))
    everything = sorted(
        (name, zf, path, members, is_bg)
        for zf, path, chars, is_bg in per_zip
        for name, members in chars.items()
    )
    for c, (name, zf, path, members, is_bg) in enumerate(everything):
        names.append(name)
        if is_bg:
            background.append(name)
        for member in members:
            try:
                raw = zf.read(member)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ValueError(
                    f"omniglot: cannot read {member} from {path} ({e}); the zip is corrupt. "
                    "Download it again."
                ) from e
            images.append(decode_image(raw, f"{path}:{member}", 1, size, resample, invert=True))
            targets.append(c)
    for zf, *_ in per_zip:
        zf.close()
    return {
        "data": torch.from_numpy(np.stack(images)),
        "targets": torch.tensor(targets, dtype=torch.int64),
        "class_names": names,
        "background": background,
    }


def _load(
    root: str | os.PathLike | None,
    image_size: int,
    cache_dir: str | os.PathLike | None,
    resample: str,
) -> tuple[ClassDataset, frozenset[str]]:
    root = resolve_data_root(root, "omniglot")
    size = as_size(image_size)
    if size == (NATIVE_SIZE, NATIVE_SIZE):
        size, resample = None, "none"
    else:
        check_resample(resample)
    sources = [omniglot_zip(root, f) for f in ZIPS]
    params = {"size": "x".join(map(str, size or (NATIVE_SIZE,) * 2)), "resample": resample}
    payload = load_or_build(
        "omniglot", sources, params, lambda: _decode(root, size, resample), cache_dir
    )
    ds = ClassDataset(payload["data"], payload["targets"], payload["class_names"], name="omniglot")
    return ds, frozenset(payload["background"])


def load_omniglot_characters(
    root: str | os.PathLike | None = None,
    image_size: int = 28,
    cache_dir: str | os.PathLike | None = None,
    resample: str = "lanczos",
) -> ClassDataset:
    """All 1,623 characters, unrotated, as classes ``"<Alphabet>/characterNN"`` (sorted by name).

    image_size: 28 (resized with ``resample``) or 105 (original pixels); any size is accepted.
    The first call decodes the 32,460 PNGs and caches the result (see ``metaloop.data.cache``).
    """
    return _load(root, image_size, cache_dir, resample)[0]


def alphabet_of(class_name: str) -> str:
    """``"Korean/character01/rot090"`` → ``"Korean"``."""
    return class_name.split("/", 1)[0]


def omniglot_alphabets(dataset: ClassDataset | Iterable[str]) -> dict[str, list[int]]:
    """Class indices grouped by alphabet, e.g. ``{"Korean": [..], ...}`` (alphabets sorted).

    Lake et al.'s 20-way one-shot benchmark draws all 20 classes of an episode from one alphabet:
    ``dataset.subset(omniglot_alphabets(dataset)["Korean"])`` gives such a pool.
    """
    names = dataset.class_names if isinstance(dataset, ClassDataset) else list(dataset)
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(alphabet_of(n), []).append(i)
    return dict(sorted(groups.items()))
