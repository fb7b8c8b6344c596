"""The two standard Omniglot class splits.

* ``"vinyals"`` (Vinyals et al. 2016, as published with Snell et al.'s Prototypical Networks and used
  by torchmeta): 1,028 / 172 / 423 characters, each in 4 rotations as separate classes, read from
  ``<root>/splits/vinyals/{train,val,test}.txt`` → 4,112 / 688 / 1,692 classes.
* ``"lake"`` (Lake et al. 2015): meta-train on the background alphabets, meta-test on the 20
  evaluation alphabets (659 characters). Lake et al. define no validation set; we hold out five
  background alphabets, the same five that form the Vinyals meta-val (Armenian, Bengali,
  Early_Aramaic, Hebrew, Mkhedruli_(Georgian): 172 characters), leaving 25 alphabets / 792 characters
  for meta-training. Whole alphabets are held out, so the within-alphabet protocol works on every
  split. No rotations unless ``rotations=True``.
* ``"reptile"`` (the character split of MAML and Reptile, Finn et al. 2017 Sec. 5.2 and Nichol et al.
  2018): 1,200 characters drawn from all 50 alphabets for meta-training, the other 423 for
  meta-test, so test characters come from alphabets seen in training, an easier protocol than the
  two above. MAML's code shuffles an unsorted directory listing, so its split cannot be rebuilt;
  Reptile's code sorts alphabets and characters, then shuffles with Python's ``random.seed(0)``,
  which is what this does: the 423 test characters are exactly Reptile's. Of the 1,200, the last
  100 are held out for meta-val (as MAML's 1,100 / 100), leaving 1,100. Meta-train characters get
  the four rotations as classes (4,400 classes); meta-val and meta-test are not rotated, as in
  Reptile's code.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import torch

from metaloop.data.base import ClassDataset, Splits
from metaloop.data.omniglot import _load
from metaloop.data.root import resolve_data_root

SPLITS = ("vinyals", "lake", "reptile")
#: Reptile's split: ``random.seed(REPTILE_SEED)``, the first 1,200 shuffled characters train
REPTILE_SEED, REPTILE_TRAIN, REPTILE_VAL = 0, 1100, 100
LAKE_VAL_ALPHABETS = ("Armenian", "Bengali", "Early_Aramaic", "Hebrew", "Mkhedruli_(Georgian)")
_LINE = re.compile(r"^([^/\s]+/character\d+)/rot(\d{3})$")


def read_split_file(path: Path) -> list[tuple[str, int]]:
    """``[("Korean/character01", 90), ...]`` from a Vinyals split file, validated line by line."""
    if not path.is_file():
        raise FileNotFoundError(
            f"omniglot: split file {path} missing. The Vinyals split files come with Prototypical "
            "Networks (github.com/jakesnell/prototypical-networks, data/omniglot/splits/vinyals/); "
            f"put train.txt, val.txt and test.txt in {path.parent}"
        )
    out: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        m = _LINE.match(line)
        if m is None or int(m.group(2)) not in (0, 90, 180, 270):
            raise ValueError(
                f"omniglot: {path}, line {lineno}: {line!r} is not "
                "'<Alphabet>/characterNN/rot000|rot090|rot180|rot270'"
            )
        if line in seen:
            raise ValueError(
                f"omniglot: {path}, line {lineno}: {line!r} repeats line {seen[line]}; "
                "each class may appear once"
            )
        seen[line] = lineno
        out.append((m.group(1), int(m.group(2))))
    if not out:
        raise ValueError(f"omniglot: split file {path} lists no classes")
    return out


def _rotated(base: ClassDataset, wanted: list[tuple[str, int]], path: Path, name: str) -> ClassDataset:
    """The classes of one split file, in file order, built with one gather.

    Same result as ``rotate_classes(base.subset_by_names(chars)).subset_by_names(names)`` (the test
    suite checks this) without the intermediate copies: loading a split is on every run's path.
    """
    lookup = {n: i for i, n in enumerate(base.class_names)}
    for char, _ in wanted:
        if char not in lookup:
            raise ValueError(
                f"omniglot: {path} names character {char!r}, which is not in the Omniglot zips; "
                "the split file does not match this data"
            )
    rows = [base.indices_of(lookup[char]) for char, _ in wanted]
    sizes = torch.tensor([len(r) for r in rows])
    data = base.data[torch.cat(rows)]
    quarter_turns = torch.repeat_interleave(torch.tensor([a // 90 for _, a in wanted]), sizes)
    for k in (1, 2, 3):  # counter-clockwise, as in metaloop.tasks.augment.rotate_classes
        mask = quarter_turns == k
        if mask.any():
            data[mask] = torch.rot90(data[mask], k, dims=(-2, -1))
    return ClassDataset(
        data=data,
        targets=torch.repeat_interleave(torch.arange(len(wanted)), sizes),
        class_names=tuple(f"{char}/rot{a:03d}" for char, a in wanted),
        name=name,
    )


def load_omniglot(
    root: str | os.PathLike | None = None,
    image_size: int = 28,
    split: str = "vinyals",
    cache_dir: str | os.PathLike | None = None,
    resample: str = "lanczos",
    rotations: bool | None = None,
) -> Splits:
    """Class-disjoint meta-train / meta-val / meta-test Omniglot datasets.

    split: ``"vinyals"`` (rotated classes from the split files; ``rotations`` must be None or True),
    ``"lake"`` (background / evaluation alphabets; ``rotations=True`` adds rotated classes) or
    ``"reptile"`` (1,100 / 100 / 423 shuffled characters; meta-train rotated unless
    ``rotations=False``).
    Dataset names are ``omniglot-<split>-<train|val|test>``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown Omniglot split {split!r}; use one of {SPLITS}")
    root = resolve_data_root(root, "omniglot")
    if split == "vinyals":
        if rotations is False:
            raise ValueError(
                "split='vinyals' is defined on rotated classes (rot000..rot270); use split='lake' "
                "for unrotated characters"
            )
        files = {s: root / "splits" / "vinyals" / f"{s}.txt" for s in ("train", "val", "test")}
        wanted = {s: read_split_file(p) for s, p in files.items()}  # fail fast, before decoding
        base, _ = _load(root, image_size, cache_dir, resample)
        parts = {s: _rotated(base, wanted[s], files[s], f"omniglot-vinyals-{s}") for s in files}
        return Splits(parts["train"], parts["val"], parts["test"])

    base, background = _load(root, image_size, cache_dir, resample)
    if split == "reptile":
        return _reptile_splits(base, rotations)
    missing = [a for a in LAKE_VAL_ALPHABETS if not any(
        n.startswith(a + "/") for n in background)]
    if missing:
        raise ValueError(f"omniglot: background alphabets {missing} not found in {root}")
    groups: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, n in enumerate(base.class_names):
        if n not in background:
            groups["test"].append(i)
        elif n.split("/", 1)[0] in LAKE_VAL_ALPHABETS:
            groups["val"].append(i)
        else:
            groups["train"].append(i)
    from metaloop.tasks.augment import rotate_classes

    parts = {}
    for s, ix in groups.items():
        ds = base.subset(ix, name=f"omniglot-lake-{s}")
        parts[s] = rotate_classes(ds) if rotations else ds
    return Splits(parts["train"], parts["val"], parts["test"])


def reptile_character_order(class_names) -> list[str]:
    """All characters in the order Reptile's ``split_dataset`` leaves them: sorted by alphabet, then
    by character folder (its ``read_dataset``), then ``random.seed(0); random.shuffle``."""
    order = sorted(class_names, key=lambda n: tuple(n.split("/", 1)))
    random.Random(REPTILE_SEED).shuffle(order)
    return order


def _reptile_splits(base: ClassDataset, rotations: bool | None) -> Splits:
    from metaloop.tasks.augment import rotate_classes

    if len(base.class_names) != 1623:
        raise ValueError(
            "omniglot: split='reptile' needs all 1,623 characters of images_background.zip and "
            f"images_evaluation.zip, found {len(base.class_names)}"
        )
    order = reptile_character_order(base.class_names)
    end_val = REPTILE_TRAIN + REPTILE_VAL
    names = {"train": order[:REPTILE_TRAIN], "val": order[REPTILE_TRAIN:end_val], "test": order[end_val:]}
    parts = {s: base.subset_by_names(n, name=f"omniglot-reptile-{s}") for s, n in names.items()}
    if rotations is not False:
        parts["train"] = rotate_classes(parts["train"], name="omniglot-reptile-train")
    return Splits(parts["train"], parts["val"], parts["test"])
