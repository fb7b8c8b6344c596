"""Decode once, load fast: datasets cached as uint8 tensors, keyed by what they were built from.

A cache entry's key is a hash of (format version, dataset kind, sha256 of every source file, decode
parameters such as image size and resampling filter). Change any of them and a new entry is built;
nothing is ever served stale. Files are written to a temp file in the cache folder and moved into
place with ``os.replace`` (atomic on POSIX and Windows), so a crash or a concurrent writer can never
leave a half-written entry under the final name. Each entry also stores a sha256 of its tensors'
bytes; an entry that fails to load or to verify is rebuilt.

Hashing a 9 MB zip costs ~20 ms, but the checksums are themselves memoised by (path, size, mtime)
in ``checksums.json`` so a warm load reads no source file at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from metaloop.io import atomic_write

ENV_VAR = "METALOOP_CACHE"
FORMAT_VERSION = 1
_CHECKSUMS = "checksums.json"

log = logging.getLogger(__name__)


def default_cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else ``$METALOOP_CACHE``, else ``~/.cache/metaloop``."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "metaloop"


def sha256_file(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """sha256 of a file, memoised in ``<cache_dir>/checksums.json`` by (absolute path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns]
    memo_path = default_cache_dir(cache_dir) / _CHECKSUMS
    try:
        memo = json.loads(memo_path.read_text())
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}
    hit = memo.get(str(path))
    if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    memo[str(path)] = {"stamp": stamp, "sha256": digest}
    try:
        atomic_write(memo_path, lambda f: f.write(json.dumps(memo, indent=0).encode()))
    except OSError as e:  # a read-only cache folder only costs speed
        log.warning("could not record checksum in %s: %s", memo_path, e)
    return digest


def _tensor_digest(payload: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for key in sorted(payload):
        value = payload[key]
        if isinstance(value, torch.Tensor):
            t = value.detach().contiguous().cpu()
            h.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
            h.update(memoryview(t.view(torch.uint8).reshape(-1).numpy()))
        else:
            h.update(f"{key}={json.dumps(value, sort_keys=True)};".encode())
    return h.hexdigest()


def cache_key(kind: str, source_sha256: Sequence[str], params: dict[str, Any]) -> str:
    blob = json.dumps(
        {"v": FORMAT_VERSION, "kind": kind, "sources": list(source_sha256), "params": params},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_path(
    kind: str,
    sources: Sequence[str | os.PathLike],
    params: dict[str, Any],
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Where the entry for these sources and parameters lives (it may not exist yet)."""
    shas = [sha256_file(s, cache_dir) for s in sources]
    tag = "-".join(str(v) for v in params.values())
    tag = "".join(c if c.isalnum() or c in "-_" else "_" for c in tag)
    return default_cache_dir(cache_dir) / f"{kind}-{tag}-{cache_key(kind, shas, params)}.pt"


def _read(path: Path) -> dict[str, Any] | None:
    """The stored payload, or None when the file is missing, unreadable or fails verification."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        ok = (
            isinstance(blob, dict)
            and blob.get("format") == FORMAT_VERSION
            and isinstance(blob.get("payload"), dict)
            and blob.get("digest") == _tensor_digest(blob["payload"])
        )
    except Exception as e:  # truncated zip, bad pickle, wrong types: all mean "rebuild"
        log.warning("cache entry %s is unreadable (%s: %s); rebuilding it", path, type(e).__name__, e)
        return None
    if not ok:
        log.warning("cache entry %s failed verification; rebuilding it", path)
        return None
    return blob["payload"]


def load_or_build(
    kind: str,
    sources: Sequence[str | os.PathLike],
    params: dict[str, Any],
    build: Callable[[], dict[str, Any]],
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """``build()``'s payload (a dict of tensors, strings and lists), from the cache when possible.

    ``params`` must hold every decode parameter that changes the result (image size, filter, ...).
    """
    path = cache_path(kind, sources, params, cache_dir)
    payload = _read(path)
    if payload is not None:
        return payload
    payload = build()
    blob = {"format": FORMAT_VERSION, "payload": payload, "digest": _tensor_digest(payload)}
    try:
        atomic_write(path, lambda f: torch.save(blob, f))
    except OSError as e:
        log.warning("could not write cache entry %s (%s); continuing without cache", path, e)
    return payload
