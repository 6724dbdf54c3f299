from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from nie_core.data.cache import BinaryImageCache
from nie_core.data.images import read_image


def write_png(path, seed: int, shape=(12, 10)) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


class CountingDecoder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: str) -> np.ndarray:
        self.calls.append(path)
        return read_image(path)


def test_decodes_once_then_memory_maps(tmp_path):
    source = tmp_path / "0001.png"
    pixels = write_png(source, seed=0)
    decoder = CountingDecoder()
    cache = BinaryImageCache(tmp_path / "cache", decoder=decoder)

    first = cache.load(source)
    second = cache.load(source)
    assert isinstance(second, np.memmap) and not second.flags.writeable
    np.testing.assert_array_equal(first, pixels)
    np.testing.assert_array_equal(second, pixels)
    assert len(decoder.calls) == 1
    # A new cache object on the same folder (another worker) reuses the file.
    other = BinaryImageCache(tmp_path / "cache", decoder=decoder)
    np.testing.assert_array_equal(other.load(source), pixels)
    assert len(decoder.calls) == 1
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".npy"]  # no temp files left


def test_rebuilt_when_source_changes(tmp_path):
    source = tmp_path / "img.png"
    write_png(source, seed=1)
    decoder = CountingDecoder()
    cache = BinaryImageCache(tmp_path / "cache", decoder=decoder)
    cache.load(source)

    # Same size, new content and a new mtime.
    replacement = write_png(tmp_path / "other.png", seed=2)
    os.replace(tmp_path / "other.png", source)
    stat = os.stat(source)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    np.testing.assert_array_equal(cache.load(source), replacement)
    assert len(decoder.calls) == 2
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # the stale version is removed

    # Only the mtime changes: still rebuilt.
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    cache.load(source)
    assert len(decoder.calls) == 3


def test_same_name_in_other_folders_and_derived_tags_are_separate(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pixels_a = write_png(tmp_path / "a" / "x.png", seed=3)
    pixels_b = write_png(tmp_path / "b" / "x.png", seed=4)
    cache = BinaryImageCache(tmp_path / "cache")
    np.testing.assert_array_equal(cache.load(tmp_path / "a" / "x.png"), pixels_a)
    np.testing.assert_array_equal(cache.load(tmp_path / "b" / "x.png"), pixels_b)

    halved = cache.load_derived(tmp_path / "a" / "x.png", "half", lambda img: img[::2, ::2])
    np.testing.assert_array_equal(halved, pixels_a[::2, ::2])
    np.testing.assert_array_equal(cache.load(tmp_path / "a" / "x.png"), pixels_a)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3


def test_concurrent_loads_agree(tmp_path):
    sources = [tmp_path / f"{i}.png" for i in range(4)]
    expected = [write_png(path, seed=10 + i, shape=(64, 48)) for i, path in enumerate(sources)]
    cache = BinaryImageCache(tmp_path / "cache")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: np.array(cache.load(sources[i % 4])), range(16)))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[i % 4])
    assert len(list((tmp_path / "cache").iterdir())) == 4
