"""Your own images as a few-shot dataset: one folder per class (or a zip of such folders).

```
my_data/                     my_data.zip
  cat/ 001.jpg 002.jpg ...     cat/001.jpg ...            (or my_data/cat/001.jpg ...)
  dog/ ...                     dog/...
```

Every class folder becomes a class named after the folder (sorted by name); images are loaded into
one uint8 ``[n, C, H, W]`` tensor. Files whose extension is not an image extension (README, .DS_Store)
are ignored; an image that cannot be decoded is an error naming the file. Nothing is cached: the
images are decoded on every call (fine for the few thousand images such sets usually have).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from metaloop.data.base import ClassDataset
from metaloop.data.images import as_size, check_resample, decode_image
from metaloop.data.omniglot import open_zip

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _is_image(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def _from_dir(path: Path) -> dict[str, list[tuple[str, Callable[[], bytes]]]]:
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = [p.name for p in path.iterdir() if p.is_file() and _is_image(p.name)]
        hint = f" (found {len(loose)} loose images: move them into class folders)" if loose else ""
        raise ValueError(f"image folder {path} has no class folders{hint}; expected {path}/<class>/<image>")
    out = {}
    for c in classes:
        files = sorted(f for f in c.iterdir() if f.is_file() and _is_image(f.name))
        out[c.name] = [(str(f), f.read_bytes) for f in files]
    return out


def _from_zip(path: Path) -> dict[str, list[tuple[str, Callable[[], bytes]]]]:
    with open_zip(path, "image folder") as zf:
        return _zip_entries(path, zf)


def _zip_entries(path: Path, zf: zipfile.ZipFile) -> dict[str, list[tuple[str, Callable[[], bytes]]]]:
    names = [n for n in zf.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
    parts = [PurePosixPath(n).parts for n in names]
    tops = {p[0] for p in parts if len(p) > 1}
    strip = 1 if len(tops) == 1 and all(len(p) >= 3 for p in parts if _is_image(p[-1])) else 0
    out: dict[str, list] = {}
    for n, p in zip(names, parts, strict=True):
        p = p[strip:]
        if len(p) != 2:
            if _is_image(n):
                raise ValueError(f"image zip {path}: entry {n!r} is not <class>/<image>; "
                                 "put every image in exactly one class folder")
            continue
        out.setdefault(p[0], [])
        if _is_image(p[1]):
            data = _read_member(zf, path, n)
            out[p[0]].append((f"{path}:{n}", lambda data=data: data))
    # Keep empty folders too, so they are reported below.
    for n in zf.namelist():
        p = PurePosixPath(n).parts[strip:]
        if n.endswith("/") and len(p) == 1:
            out.setdefault(p[0], [])
    if not out:
        raise ValueError(f"image zip {path} has no class folders; expected <class>/<image> entries")
    return {c: sorted(v, key=lambda item: item[0]) for c, v in sorted(out.items())}


def _read_member(zf: zipfile.ZipFile, path: Path, member: str) -> bytes:
    try:
        return zf.read(member)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"cannot read {member} from {path} ({e}); the zip is corrupt") from e


def load_image_folder(
    path: str | os.PathLike,
    image_size: int | tuple[int, int] | None = None,
    channels: int = 3,
    invert: bool = False,
    resample: str = "lanczos",
    name: str | None = None,
) -> ClassDataset:
    """Load ``path/<class>/<image>`` (a folder or a ``.zip``) as a ClassDataset.

    image_size: resize every image to this (int or (height, width)); None keeps the stored size,
    which must then be the same for all images. channels: 1 (grayscale) or 3 (RGB).
    invert: store ``255 - pixels`` (for dark-on-light drawings, to match ink = 255).
    """
    path = Path(path).expanduser()
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    check_resample(resample)
    size = as_size(image_size)
    if not path.exists():
        raise FileNotFoundError(f"image folder {path} does not exist")
    files = _from_zip(path) if path.is_file() else _from_dir(path)
    empty = [c for c, v in files.items() if not v]
    if empty:
        raise ValueError(
            f"class folder {empty[0]!r} in {path} holds no images ({len(empty)} empty class folders); "
            f"add images with one of the extensions {', '.join(IMAGE_EXTENSIONS)} or remove the folder"
        )
    images: list[np.ndarray] = []
    targets: list[int] = []
    first: tuple[str, tuple[int, ...]] | None = None
    for c, entries in enumerate(files.values()):
        for source, read in entries:
            arr = decode_image(read(), source, channels, size, resample, invert)
            if first is None:
                first = (source, arr.shape)
            elif arr.shape != first[1]:
                raise ValueError(
                    f"image {source} is {arr.shape[2]}x{arr.shape[1]} but {first[0]} is "
                    f"{first[1][2]}x{first[1][1]}; pass image_size=... to resize all images"
                )
            images.append(arr)
            targets.append(c)
    return ClassDataset(
        data=torch.from_numpy(np.stack(images)),
        targets=torch.tensor(targets, dtype=torch.int64),
        class_names=tuple(files),
        name=name or path.stem,
    )
