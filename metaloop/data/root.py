"""Where the datasets live on disk: one rule, used by every loader and by ``metaloop data check``.

Order: the ``--root`` flag, then the ``METALOOP_DATA`` environment variable, then ``../shared/data``
relative to the working directory. Each may name the folder that *holds* ``omniglot/`` and
``mini_imagenet/``, or the dataset folder itself.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "METALOOP_DATA"
FLAG = "--root"

# Files whose presence says "this folder is that dataset" (any one is enough).
_MARKERS = {
    "omniglot": ("images_background.zip", "images_evaluation.zip", "splits/vinyals"),
    "mini_imagenet": (
        "images_train.zip", "images_val.zip", "images_test.zip", "splits/ravi", "images",
    ),
}
_ALIASES = {"mini-imagenet": "mini_imagenet", "miniimagenet": "mini_imagenet"}


def canonical_name(dataset: str) -> str:
    """``"mini-imagenet"`` → ``"mini_imagenet"``; unknown names are returned unchanged."""
    key = dataset.strip().lower()
    return _ALIASES.get(key, key)


def _looks_like(folder: Path, dataset: str) -> bool:
    if not folder.is_dir():
        return False
    if folder.name.lower() in (dataset, *[a for a, c in _ALIASES.items() if c == dataset]):
        return True
    return any((folder / m).exists() for m in _MARKERS.get(dataset, ()))


def _dataset_dir(base: Path, dataset: str) -> Path | None:
    """``base/<dataset>`` if present, else ``base`` itself when it looks like the dataset."""
    for name in (dataset, *[a for a, c in _ALIASES.items() if c == dataset]):
        if (base / name).is_dir():
            return base / name
    if _looks_like(base, dataset):
        return base
    return None


def resolve_data_root(flag: str | os.PathLike | None, dataset: str) -> Path:
    """The folder of ``dataset`` (e.g. ``.../data/omniglot``).

    A flag or environment variable that is set but does not lead to the dataset is an error rather
    than silently falling through to the next source: a typo should not load other data.
    """
    dataset = canonical_name(dataset)
    sources: list[tuple[str, Path]] = []
    if flag is not None and str(flag) != "":
        sources.append((f"{FLAG} {flag}", Path(flag).expanduser()))
    elif os.environ.get(ENV_VAR):
        sources.append((f"{ENV_VAR}={os.environ[ENV_VAR]}", Path(os.environ[ENV_VAR]).expanduser()))
    if sources:
        what, base = sources[0]
        found = _dataset_dir(base, dataset)
        if found is None:
            reason = "does not exist" if not base.exists() else (
                f"holds neither a {dataset}/ folder nor the {dataset} files"
            )
            raise FileNotFoundError(
                f"{dataset} data not found: {what} → {base} {reason}. Point {FLAG} (or {ENV_VAR}) "
                f"at a folder containing {dataset}/, or at the {dataset} folder itself."
            )
        return found.resolve()
    default = Path.cwd() / ".." / "shared" / "data"
    found = _dataset_dir(default, dataset) if default.is_dir() else None
    if found is not None:
        return found.resolve()
    raise FileNotFoundError(
        f"{dataset} data not found: no {FLAG} given, {ENV_VAR} is not set, and {default.resolve()} "
        f"has no {dataset}/ folder. Pass {FLAG} DIR or set {ENV_VAR}=DIR, where DIR contains "
        f"{dataset}/ (or is the {dataset} folder itself)."
    )
