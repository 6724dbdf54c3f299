"""Data loading for NIE: image I/O, degradations, paired transforms, the binary cache, and the
DIV2K, image-folder and AVA datasets (see docs/contract.md)."""

from __future__ import annotations

from nie_core.data.ava import AVA, parse_ava_txt
from nie_core.data.cache import BinaryImageCache
from nie_core.data.degradations import bicubic_downsample, gaussian_blur
from nie_core.data.div2k import DIV2K, ImageFolderSR
from nie_core.data.images import (
    ImageDecodeError,
    ImageTooLargeError,
    decode_image,
    read_image,
    save_image,
    to_tensor,
    to_uint8,
)
from nie_core.data.transforms import augment_pair, paired_random_crop


def __getattr__(name: str) -> object:
    # Imported lazily so that ``python -m nie_core.data.sample`` does not import the module twice.
    if name == "build_sample_data":
        from nie_core.data.sample import build_sample_data

        return build_sample_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AVA",
    "DIV2K",
    "BinaryImageCache",
    "ImageDecodeError",
    "ImageFolderSR",
    "ImageTooLargeError",
    "augment_pair",
    "bicubic_downsample",
    "build_sample_data",
    "decode_image",
    "gaussian_blur",
    "paired_random_crop",
    "parse_ava_txt",
    "read_image",
    "save_image",
    "to_tensor",
    "to_uint8",
]
