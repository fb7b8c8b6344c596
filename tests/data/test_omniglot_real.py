"""Exact counts and pixels on the real Omniglot (skipped when the data is absent).

The first run decodes all 32,460 PNGs (a few seconds per image size) into the session cache
<repo>/.cache/test-data; later runs load the cached tensors.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from metaloop.data.omniglot import alphabet_of, load_omniglot_characters, omniglot_alphabets
from metaloop.data.omniglot_splits import LAKE_VAL_ALPHABETS, load_omniglot

pytestmark = pytest.mark.data


def _chars(names):
    return {n.rsplit("/", 1)[0] for n in names}


def test_all_characters(real_data, session_cache):
    load_omniglot_characters(real_data, 28, cache_dir=session_cache)  # make sure it is cached
    start = time.perf_counter()
    ds = load_omniglot_characters(real_data, 28, cache_dir=session_cache)
    warm = time.perf_counter() - start
    assert warm < 5.0, f"warm load took {warm:.1f} s"
    assert ds.num_classes == 1623 and len(ds) == 32460 and ds.data.shape[1:] == (1, 28, 28)
    assert ds.class_sizes().tolist() == [20] * 1623
    assert len(omniglot_alphabets(ds)) == 50
    ink = ds.data.float().mean().item() / 255
    assert 0.05 < ink < 0.12  # about 8 % ink: ink = 255, not inverted


def test_105_matches_the_npz_arrays(real_data, session_cache):
    """Pixel-exact against the arrays the zips were rebuilt from (True = white, so ink = ~array)."""
    ds = load_omniglot_characters(real_data, 105, cache_dir=session_cache)
    # (class name, npz file, row = global character ID - first ID of that file)
    cases = [("Korean/character01", "images_background", 642),
             ("Arcadian/character26", "images_background", 25),
             ("Angelic/character01", "images_evaluation", 0),
             ("Tibetan/character14", "images_evaluation", 1569 - 965)]
    arrays = {}
    for npz in ("images_background", "images_evaluation"):
        with np.load(real_data / "omniglot" / "npz" / f"{npz}.npz") as f:
            arrays[npz] = f["images"]
    for name, npz, row in cases:
        want = (~arrays[npz][row]).astype(np.uint8) * 255
        got = ds.data[ds.indices_of(ds.class_names.index(name)), 0].numpy()
        assert np.array_equal(got, want), name


def test_vinyals_split(real_data, session_cache):
    splits = load_omniglot(real_data, 28, "vinyals", cache_dir=session_cache)
    parts = (splits.train, splits.val, splits.test)
    assert [p.num_classes for p in parts] == [4112, 688, 1692]
    assert [len(p) for p in parts] == [4112 * 20, 688 * 20, 1692 * 20]
    chars = [_chars(p.class_names) for p in parts]
    assert [len(c) for c in chars] == [1028, 172, 423]
    assert not (chars[0] & chars[1] or chars[0] & chars[2] or chars[1] & chars[2])
    assert {alphabet_of(n) for n in splits.val.class_names} == set(LAKE_VAL_ALPHABETS)
    assert [len({alphabet_of(n) for n in p.class_names}) for p in parts] == [33, 5, 13]
    t = splits.test
    r0 = t.data[t.indices_of(t.class_names.index("Gurmukhi/character42/rot000"))]
    r90 = t.data[t.indices_of(t.class_names.index("Gurmukhi/character42/rot090"))]
    assert torch.equal(r90, torch.rot90(r0, 1, dims=(-2, -1))) and not torch.equal(r90, r0)


def test_lake_split(real_data, session_cache):
    splits = load_omniglot(real_data, 28, "lake", cache_dir=session_cache)
    parts = (splits.train, splits.val, splits.test)
    assert [p.num_classes for p in parts] == [792, 172, 659]
    alphabets = [set(omniglot_alphabets(p)) for p in parts]
    assert [len(a) for a in alphabets] == [25, 5, 20]
    assert "Angelic" in alphabets[2] and "Korean" in alphabets[0]


def test_reptile_split_is_the_reptile_codes_character_split(real_data, session_cache, tmp_path):
    """Counts, disjointness, rotations on meta-train only, and the same order as Reptile's code
    (sorted listing of the merged alphabet folders, random.seed(0), random.shuffle) run on a copy
    of the folder tree."""
    import os
    import random

    from metaloop.data.omniglot_splits import reptile_character_order

    splits = load_omniglot(real_data / "omniglot", 28, split="reptile", cache_dir=session_cache)
    assert (splits.train.num_classes, splits.val.num_classes, splits.test.num_classes) == (4400, 100, 423)
    train = {n.rsplit("/", 1)[0] for n in splits.train.class_names}
    assert {n.rsplit("/", 1)[1] for n in splits.train.class_names} == {"rot000", "rot090", "rot180", "rot270"}
    val, test = set(splits.val.class_names), set(splits.test.class_names)
    assert len(train) == 1100 and not (train & val or train & test or val & test)
    assert len(train | val | test) == 1623
    assert len({alphabet_of(n) for n in test}) > 40  # characters from (almost) every alphabet
    # the reference: Reptile's read_dataset + split_dataset on a folder per character
    all_chars = load_omniglot_characters(real_data / "omniglot", 28, cache_dir=session_cache).class_names
    for name in all_chars:
        (tmp_path / name).mkdir(parents=True)
    listed = [
        f"{alphabet}/{char}"
        for alphabet in sorted(os.listdir(tmp_path))
        for char in sorted(os.listdir(tmp_path / alphabet))
        if char.startswith("character")
    ]
    random.seed(0)
    random.shuffle(listed)
    assert reptile_character_order(all_chars) == listed
    assert list(splits.test.class_names) == listed[1200:]
    assert list(splits.val.class_names) == listed[1100:1200]


def test_split_pairs_declared_disjoint_share_no_test_character(real_data, session_cache):
    """metaloop.engine.snapshot.DISJOINT_TEST lets weights of one split be scored on another's test
    set; that is only sound if none of those test characters was seen in training or validation."""
    from metaloop.engine.snapshot import DISJOINT_TEST

    def chars(ds):
        return {"/".join(n.split("/")[:2]) for n in ds.class_names}

    for dataset, trained, scored in DISJOINT_TEST:
        assert dataset == "omniglot"
        seen = load_omniglot(real_data / "omniglot", 28, split=trained, cache_dir=session_cache)
        test = load_omniglot(real_data / "omniglot", 28, split=scored, cache_dir=session_cache).test
        assert not (chars(seen.train) | chars(seen.val)) & chars(test), (trained, scored)
