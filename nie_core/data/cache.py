"""Decoded images stored as uncompressed ``.npy`` files and memory-mapped on later reads.

The report stores the training images "as binary files" to speed up training: decoding a
2K PNG costs tens of milliseconds, while a memory-mapped array costs nothing until a patch is
cut from it, and then only the pages of that patch are read.

Layout: ``<cache_dir>/<stem>.<path hash>.<tag>.<size>-<mtime_ns>.npy``, where the hash is of the
source's absolute path and ``size``/``mtime_ns`` come from ``os.stat`` of the source. A changed
source therefore has a different cache file name and is decoded again (the stale file is then
removed). Files are written to a temporary name in the same folder and moved into place with
``os.replace``, so processes sharing the cache (DDP workers on one machine, DataLoader workers)
never read a half-written file; at worst two of them decode the same image once each.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nie_core.data.images import read_image

__all__ = ["BinaryImageCache"]

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


class BinaryImageCache:
    """Decode-once cache of images as memory-mapped uint8 (H, W, 3) arrays.

    ``decoder`` turns a source path into an array (default ``read_image``). ``load_derived``
    caches arrays computed from a decoded image (a bicubic LR image, a blurred input) under a
    ``tag``, invalidated together with the source.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        decoder: Callable[[str], np.ndarray] = read_image,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.decoder = decoder

    def _version_prefix(self, source: str, tag: str) -> str:
        if not tag or _UNSAFE_CHARS.search(tag):
            raise ValueError(f"tag must be non-empty and use only [A-Za-z0-9_-], got {tag!r}")
        digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]
        stem = _UNSAFE_CHARS.sub("_", Path(source).stem)[:40]
        return f"{stem}.{digest}.{tag}."

    def cache_file(self, path: str | os.PathLike[str], tag: str = "image") -> Path:
        """The cache file that holds ``path`` (with ``tag``) in its current version."""
        source = os.path.abspath(os.fspath(path))
        stat = os.stat(source)
        prefix = self._version_prefix(source, tag)
        return self.cache_dir / f"{prefix}{stat.st_size}-{stat.st_mtime_ns}.npy"

    def load(self, path: str | os.PathLike[str]) -> np.ndarray:
        """The decoded image at ``path``: a read-only memory-mapped uint8 (H, W, 3) array."""
        return self.load_derived(path, "image", None)

    def load_derived(
        self,
        path: str | os.PathLike[str],
        tag: str,
        derive: Callable[[np.ndarray], np.ndarray] | None,
    ) -> np.ndarray:
        """``derive(decoded image)`` for the image at ``path``, cached under ``tag``.

        With ``derive=None`` the decoded image itself is cached. Returns a read-only
        memory-mapped array (or, if the source changed while it was being decoded, the fresh
        in-memory result, left uncached).
        """
        source = os.path.abspath(os.fspath(path))
        target = self.cache_file(source, tag)
        try:
            return np.load(target, mmap_mode="r")
        except FileNotFoundError:
            pass
        array = self.decoder(source)
        if derive is not None:
            array = derive(array)
        if self.cache_file(source, tag) != target:
            return array  # the source changed during decoding; the next call caches it
        self._write_atomically(target, array)
        self._remove_stale(source, tag, keep=target)
        try:
            return np.load(target, mmap_mode="r")
        except FileNotFoundError:  # removed as stale by a process that saw a newer source
            return array

    def _write_atomically(self, target: Path, array: np.ndarray) -> None:
        fd, temp_name = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
            os.replace(temp_name, target)
        except BaseException:
            if os.path.exists(temp_name):
                os.unlink(temp_name)
            raise

    def _remove_stale(self, source: str, tag: str, keep: Path) -> None:
        # Prefixes use only [A-Za-z0-9_.-], so they need no glob escaping.
        for entry in self.cache_dir.glob(f"{self._version_prefix(source, tag)}*.npy"):
            if entry != keep:
                try:
                    entry.unlink()
                except FileNotFoundError:
                    pass  # removed by another process
