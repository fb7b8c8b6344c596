"""The decode cache: keyed by source checksums + parameters, atomic writes, corruption rebuilt."""

from __future__ import annotations

import json
import os

import pytest
import torch

from metaloop.data import cache
from metaloop.data.cache import cache_path, default_cache_dir, load_or_build, sha256_file


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src.zip"
    path.write_bytes(b"abc")
    return path


class Builder:
    def __init__(self, value: int = 7):
        self.calls = 0
        self.value = value

    def __call__(self):
        self.calls += 1
        return {"data": torch.full((4, 1, 2, 2), self.value, dtype=torch.uint8),
                "class_names": ["a", "b"]}


def test_sha256_known_value_and_memo(source, tmp_path):
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert sha256_file(source, tmp_path / "c") == digest
    memo_file = tmp_path / "c" / "checksums.json"
    memo = json.loads(memo_file.read_text())
    # Tamper with the memo: if the second call reads it instead of the file, we see the fake value.
    memo[str(source.resolve())]["sha256"] = "f" * 64
    memo_file.write_text(json.dumps(memo))
    assert sha256_file(source, tmp_path / "c") == "f" * 64
    # A changed file (new size / mtime) is hashed again.
    source.write_bytes(b"abcd")
    os.utime(source, ns=(1, 1))
    assert sha256_file(source, tmp_path / "c") == (
        "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589")


def test_corrupt_checksum_memo_is_ignored(source, tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "checksums.json").write_text("{not json")
    assert sha256_file(source, tmp_path / "c").startswith("ba7816bf")


def test_hit_miss_and_keying(source, tmp_path):
    build = Builder()
    first = load_or_build("toy", [source], {"size": 28}, build, tmp_path)
    again = load_or_build("toy", [source], {"size": 28}, build, tmp_path)
    assert build.calls == 1 and torch.equal(first["data"], again["data"])
    assert again["class_names"] == ["a", "b"]
    load_or_build("toy", [source], {"size": 105}, build, tmp_path)  # other parameters: miss
    assert build.calls == 2
    source.write_bytes(b"other bytes")  # other source contents: miss
    load_or_build("toy", [source], {"size": 28}, build, tmp_path)
    assert build.calls == 3
    assert len(list(tmp_path.glob("toy-*.pt"))) == 3


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_digest", "tampered"])
def test_corrupt_entry_is_rebuilt(source, tmp_path, damage):
    build = Builder()
    load_or_build("toy", [source], {"size": 28}, build, tmp_path)
    path = cache_path("toy", [source], {"size": 28}, tmp_path)
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong_digest":
        torch.save({"format": cache.FORMAT_VERSION, "payload": Builder(9)(), "digest": "0" * 64}, path)
    else:  # a valid file whose tensor changed after the digest was taken
        saved = torch.load(path, weights_only=True)
        saved["payload"]["data"][0, 0, 0, 0] = 99
        torch.save(saved, path)
    out = load_or_build("toy", [source], {"size": 28}, build, tmp_path)
    assert build.calls == 2
    assert torch.equal(out["data"], Builder()()["data"])
    # ... and the rebuilt entry is good again.
    load_or_build("toy", [source], {"size": 28}, build, tmp_path)
    assert build.calls == 2


def test_failed_write_leaves_no_partial_file(source, tmp_path, monkeypatch):
    def exploding_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(cache.torch, "save", exploding_save)
    out = load_or_build("toy", [source], {"size": 28}, Builder(), tmp_path)  # still returns data
    assert out["data"].shape == (4, 1, 2, 2)
    assert list(tmp_path.glob("toy-*")) == [] and list(tmp_path.glob(".toy-*")) == []


def test_interrupted_rewrite_keeps_the_old_entry(source, tmp_path, monkeypatch):
    build = Builder()
    load_or_build("toy", [source], {"size": 28}, build, tmp_path)
    path = cache_path("toy", [source], {"size": 28}, tmp_path)
    before = path.read_bytes()

    def interrupted(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.atomic_write(path, lambda f: cache.torch.save({}, f))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("METALOOP_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("METALOOP_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "metaloop")
