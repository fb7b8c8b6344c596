"""``metaloop data check NAME``: is the data on disk complete and intact? One line says so.

Checks, without decoding every image: files present; zips readable with valid CRCs (a truncated or
non-zip file is reported, not raised); sha256 against the folder's ``SHA256SUMS`` when present;
counts against the published ones (Omniglot: 30 + 20 alphabets, 964 + 659 characters, 20 drawings
each, 32,460 images; Vinyals split 4,112 / 688 / 1,692 rotated classes; mini-ImageNet: 64 / 16 / 20
classes of 600 images, per split present or missing).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections import Counter
from pathlib import Path

from metaloop.data import mini_imagenet as mi
from metaloop.data.omniglot import BACKGROUND_ZIP, EVALUATION_ZIP, list_characters, open_zip
from metaloop.data.omniglot_splits import read_split_file
from metaloop.data.root import canonical_name, resolve_data_root

OMNIGLOT_EXPECTED = {BACKGROUND_ZIP: (30, 964, 19280), EVALUATION_ZIP: (20, 659, 13180)}
VINYALS_EXPECTED = {"train": 4112, "val": 688, "test": 1692}
DRAWINGS_PER_CHARACTER = 20
DATASETS = ("omniglot", "mini_imagenet")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checksums(root: Path, problems: list[str], details: list[str]) -> str:
    """Verify SHA256SUMS; returns a short summary for the verdict."""
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        details.append("SHA256SUMS: absent, checksums not verified")
        return "no SHA256SUMS to verify against"
    good, missing = 0, []
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        digest, rel = parts[0].lower(), parts[1].lstrip("*")
        path = root / rel
        if not path.is_file():
            missing.append(rel)
        elif _sha256(path) != digest:
            problems.append(f"{rel} checksum mismatch (corrupt or a different file)")
        else:
            good += 1
    details.append(f"SHA256SUMS: {good} match, {len(missing)} listed files absent"
                   + (f" ({', '.join(missing)})" if missing else ""))
    return f"checksums match ({good} files)"


def _readable_zip(path: Path, dataset: str, problems: list[str]) -> zipfile.ZipFile | None:
    if not path.is_file():
        problems.append(f"{path.name} missing (expected at {path})")
        return None
    try:
        zf = open_zip(path, dataset)
        bad = zf.testzip()
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as e:
        cause = e.__cause__ if isinstance(e, ValueError) and e.__cause__ else e
        problems.append(f"{path.name} is not a readable zip ({cause}): truncated or corrupt; "
                        "download it again")
        return None
    if bad is not None:
        problems.append(f"{path.name}: entry {bad} fails its CRC check (corrupt); download it again")
        zf.close()
        return None
    return zf


def _check_omniglot(root: Path) -> tuple[bool, str, list[str]]:
    problems: list[str] = []
    details: list[str] = []
    characters: set[str] = set()
    n_images = 0
    for filename, (n_alpha, n_char, n_img) in OMNIGLOT_EXPECTED.items():
        zf = _readable_zip(root / filename, "omniglot", problems)
        if zf is None:
            continue
        with zf:
            try:
                chars = list_characters(zf, root / filename)
            except ValueError as e:
                problems.append(str(e))
                continue
        alphabets = {c.split("/")[0] for c in chars}
        images = sum(len(v) for v in chars.values())
        short = [c for c, v in chars.items() if len(v) != DRAWINGS_PER_CHARACTER]
        details.append(f"{filename}: {len(alphabets)} alphabets, {len(chars)} characters, "
                       f"{images} images")
        if (len(alphabets), len(chars), images) != (n_alpha, n_char, n_img) or short:
            problems.append(f"{filename} holds {len(alphabets)} alphabets / {len(chars)} characters "
                            f"/ {images} images, expected {n_alpha} / {n_char} / {n_img}"
                            + (f" ({short[0]} has {len(chars[short[0]])} drawings, "
                               f"not {DRAWINGS_PER_CHARACTER})"
                               if short else ""))
        characters |= set(chars)
        n_images += images
    sums = _checksums(root, problems, details)
    split_dir = root / "splits" / "vinyals"
    split_note = ""
    if not split_dir.is_dir():
        details.append(f"Vinyals split files absent ({split_dir}): split='vinyals' unavailable")
        split_note = "; no Vinyals split files (split='vinyals' unavailable)"
    elif characters and not problems:
        seen: dict[str, str] = {}
        counts = {}
        for s, expected in VINYALS_EXPECTED.items():
            try:
                rows = read_split_file(split_dir / f"{s}.txt")
            except (ValueError, FileNotFoundError) as e:
                problems.append(str(e))
                continue
            counts[s] = len(rows)
            unknown = [c for c, _ in rows if c not in characters]
            if unknown:
                problems.append(f"splits/vinyals/{s}.txt names {len(unknown)} unknown characters "
                                f"(first {unknown[0]!r})")
            if len(rows) != expected:
                problems.append(f"splits/vinyals/{s}.txt has {len(rows)} classes, expected {expected}")
            for c, _ in rows:
                if seen.setdefault(c, s) != s:
                    problems.append(f"character {c} is in both {seen[c]} and {s} split files")
                    break
        details.append("Vinyals split: " + " / ".join(f"{s} {n}" for s, n in counts.items())
                       + " rotated classes")
        split_note = ", Vinyals split " + "/".join(str(n) for n in counts.values())
    if problems:
        return False, "omniglot: FAILED — " + "; ".join(problems), details
    return True, (f"omniglot: OK — {len(characters)} characters, {n_images} images, {sums}"
                  f"{split_note} ({root})"), details


def _check_mini_imagenet(root: Path) -> tuple[bool, str, list[str]]:
    problems: list[str] = []
    details: list[str] = []
    good, missing = [], []
    for split in mi.SPLIT_NAMES:
        try:
            rows = mi.read_split_csv(mi.split_csv(root, split))
        except (ValueError, FileNotFoundError) as e:
            problems.append(str(e))
            continue
        per_class = Counter(label for _, label in rows)
        want = mi.EXPECTED_CLASSES[split]
        if len(per_class) != want or set(per_class.values()) != {mi.IMAGES_PER_CLASS}:
            problems.append(f"splits/ravi/{split}.csv: {len(per_class)} classes, sizes "
                            f"{sorted(set(per_class.values()))}; expected {want} x {mi.IMAGES_PER_CLASS}")
        zpath = mi.split_zip(root, split)
        if not zpath.is_file():
            missing.append(split)
            details.append(f"{split}: images missing (expected at {zpath})")
            continue
        zf = _readable_zip(zpath, "mini_imagenet", problems)
        if zf is None:
            continue
        with zf:
            names = {m.rsplit("/", 1)[-1] for m in zf.namelist()}
        absent = [f for f, _ in rows if f not in names]
        if absent:
            problems.append(f"{zpath.name} lacks {len(absent)} of {len(rows)} images of "
                            f"{split}.csv (first {absent[0]!r})")
            continue
        good.append(split)
        details.append(f"{split}: {len(per_class)} classes x {mi.IMAGES_PER_CLASS} images present")
    sums = _checksums(root, problems, details)
    if problems or not good:
        why = problems or ["no split has its images (" + ", ".join(
            f"images_{s}.zip" for s in missing) + f" expected in {root})"]
        return False, "mini_imagenet: FAILED — " + "; ".join(why), details
    summary = ", ".join(
        f"{s} ({mi.EXPECTED_CLASSES[s]} classes x {mi.IMAGES_PER_CLASS})" for s in good)
    if missing:
        where = ", ".join(str(mi.split_zip(root, s)) for s in missing)
        return True, (f"mini_imagenet: PARTIAL — {summary} OK, {sums}; "
                      f"{', '.join(missing)} images missing (expected at {where})"), details
    return True, f"mini_imagenet: OK — {summary}, {sums} ({root})", details


def check_dataset(name: str, root: str | os.PathLike | None = None) -> tuple[bool, str, list[str]]:
    """(ok, one-line verdict, detail lines) for ``"omniglot"`` or ``"mini_imagenet"``.

    Never raises for bad data: a missing, truncated or corrupt file is reported in the verdict.
    ``ok`` is True for a usable dataset (for mini-ImageNet: at least one complete split, the
    verdict saying PARTIAL when some split's images are missing).
    """
    name = canonical_name(name)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; checkable datasets: {', '.join(DATASETS)}")
    try:
        folder = resolve_data_root(root, name)
    except FileNotFoundError as e:
        return False, f"{name}: FAILED — {e}", [str(e)]
    try:
        return _check_omniglot(folder) if name == "omniglot" else _check_mini_imagenet(folder)
    except OSError as e:  # unreadable folder, permission denied, ...
        return False, f"{name}: FAILED — {e}", [str(e)]
