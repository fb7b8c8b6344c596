"""Image bytes → uint8 ``[C, H, W]`` arrays with Pillow: the one decoder all loaders share."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

RESAMPLING = {
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


def check_resample(resample: str) -> str:
    if resample not in RESAMPLING:
        raise ValueError(f"unknown resample filter {resample!r}; use one of {sorted(RESAMPLING)}")
    return resample


def as_size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``28`` → ``(28, 28)`` (height, width); None means keep the stored size."""
    if image_size is None:
        return None
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    h, w = (int(v) for v in image_size)
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return h, w


def decode_image(
    data: bytes,
    source: str,
    channels: int,
    size: tuple[int, int] | None = None,
    resample: str = "lanczos",
    invert: bool = False,
) -> np.ndarray:
    """Decode one image file's bytes.

    channels: 1 (grayscale, Pillow mode ``L``) or 3 (RGB). size: (height, width) to resize to, or
    None. invert: return ``255 - pixels`` (Omniglot stores white paper, dark ink; we store ink = 255).
    ``source`` names the file in error messages.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), RESAMPLING[resample])
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(
            f"cannot read image {source}: {type(e).__name__}: {e}. "
            "Replace or remove this file (it is not a readable image)."
        ) from e
    arr = arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    if invert:
        arr = 255 - arr
    return np.ascontiguousarray(arr)
