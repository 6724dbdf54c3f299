"""Super-resolution and deblurring pairs from DIV2K and from plain folders of HR images.

DIV2K is read exactly as distributed::

    root/DIV2K_train_HR/0001.png ...               root/DIV2K_valid_HR/0801.png ...
    root/DIV2K_train_LR_bicubic/X2/0001x2.png      (X3/0001x3.png, X4/0001x4.png)
    root/DIV2K_valid_LR_bicubic/X2/0801x2.png ...

When the ``X{s}`` folder of a scale is absent, LR images are made from the HR images by
``bicubic_downsample`` (HR cropped to a multiple of s, then Pillow bicubic). ``ImageFolderSR``
treats every image in a folder (Set5, Set14, B100, Urban100 style) as HR and always makes its LR
images that way.

Tasks:

- ``task="sr"``: input = LR image (H/s, W/s), target = HR image cropped to LR size times s.
- ``task="deblur"``: the report blurs the LR images with a Gaussian. With ``scale=1`` the input is
  ``gaussian_blur(HR)`` and the target the HR image (pure deblurring); with ``scale > 1`` the
  input is ``gaussian_blur(LR)`` and the target the HR image (joint deblurring and
  super-resolution). The blur is applied to the whole image before cropping, so patches carry no
  artificial border effects.

Training items are random aligned patches (LR ``patch_size`` square, HR ``patch_size * s``)
with random flips/rotations; ``full_image=True`` gives whole images (no crop, no augmentation)
for evaluation. Items are ``(input (3, h, w), target (3, h*s, w*s))`` float32 in [0, 1].
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from nie_core.data.cache import BinaryImageCache
from nie_core.data.degradations import bicubic_downsample, gaussian_blur
from nie_core.data.images import read_image, to_tensor
from nie_core.data.transforms import augment_pair, paired_random_crop, torch_seeded_rng

__all__ = ["DIV2K", "IMAGE_EXTENSIONS", "ImageFolderSR", "PairedSRDataset"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
TASKS = ("sr", "deblur")
# (hr_files, lr_files), as PairedSRDataset._find_images returns them
_FoundImages = tuple[list[Path], dict[int, list[Path | None]]]


def _normalise_scales(scale: int | Sequence[int], task: str) -> tuple[int, ...]:
    scales = (scale,) if isinstance(scale, int | np.integer) else tuple(scale)
    if not scales:
        raise ValueError("scale must be an integer or a non-empty sequence of integers")
    for s in scales:
        if not isinstance(s, int | np.integer) or isinstance(s, bool) or s < 1:
            raise ValueError(f"scale must be a positive integer, got {s!r}")
        if s == 1 and task == "sr":
            raise ValueError("scale 1 is only meaningful for task='deblur', got task='sr'")
    if len(set(scales)) != len(scales):
        raise ValueError(f"scales must be distinct, got {scales}")
    return tuple(int(s) for s in scales)


class PairedSRDataset(Dataset):
    """Shared machinery of ``DIV2K`` and ``ImageFolderSR``: see the module docstring.

    A subclass lists its images in :meth:`_find_images`: ``lr_files[s][i]`` is the distributed
    LR file of HR image i at scale s, or None to make it by bicubic downsampling.
    """

    def __init__(
        self,
        scale: int | Sequence[int],
        task: str,
        patch_size: int,
        augment: bool,
        repeat: int,
        cache_dir: str | os.PathLike[str] | None,
        blur_sigma: float,
        blur_kernel: int,
        full_image: bool,
    ) -> None:
        scales = _normalise_scales(scale, task)
        hr_files, lr_files = self._find_images(scales)
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        for name, value in (("patch_size", patch_size), ("repeat", repeat)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if task == "deblur":
            if blur_sigma <= 0:
                raise ValueError(f"blur_sigma must be > 0, got {blur_sigma}")
            if blur_kernel < 1 or blur_kernel % 2 == 0:
                raise ValueError(f"blur_kernel must be a positive odd integer, got {blur_kernel}")
        self.hr_files = hr_files
        self.lr_files = lr_files
        self.scales = scales
        self.task = task
        self.patch_size = int(patch_size)
        self.augment = bool(augment)
        self.repeat = int(repeat)
        self.blur_sigma = float(blur_sigma)
        self.blur_kernel = int(blur_kernel)
        self.full_image = bool(full_image)
        self.cache = BinaryImageCache(cache_dir) if cache_dir is not None else None

    def _find_images(self, scales: tuple[int, ...]) -> _FoundImages:
        """``(hr_files, lr_files)`` of the dataset at ``scales``; ValueError naming the path of
        anything missing."""
        raise NotImplementedError

    @property
    def scale(self) -> int | tuple[int, ...]:
        """The scale of this dataset, or the tuple of scales of a multi-scale one."""
        return self.scales[0] if len(self.scales) == 1 else self.scales

    @property
    def names(self) -> list[str]:
        """File stems of the HR images, in item order (e.g. ``"0801"``)."""
        return [path.stem for path in self.hr_files]

    def with_scale(self, scale: int) -> PairedSRDataset:
        """A view of the same images at one of this dataset's scales (for MDSR, which trains
        each batch at a single scale)."""
        if scale not in self.scales:
            raise ValueError(f"scale {scale} is not one of this dataset's scales {self.scales}")
        view = copy.copy(self)
        view.scales = (int(scale),)
        return view

    def __len__(self) -> int:
        return len(self.hr_files) * self.repeat

    # -- loading ------------------------------------------------------------------------------

    def _blur_tag(self) -> str:
        return f"blur-s{self.blur_sigma:g}-k{self.blur_kernel}".replace(".", "p")

    def _decode(
        self,
        path: Path,
        tag: str = "image",
        derive: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        if self.cache is not None:
            return self.cache.load_derived(path, tag, derive)
        image = read_image(path)
        return derive(image) if derive is not None else image

    def load_pair(self, index: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole input and target of image ``index`` as uint8 (h, w, 3) and (h*s, w*s, 3)."""
        hr_path = self.hr_files[index]
        lr_path = self.lr_files.get(scale, [None] * len(self.hr_files))[index]
        blur = self.task == "deblur"

        def blurred(img: np.ndarray) -> np.ndarray:
            return gaussian_blur(img, self.blur_sigma, self.blur_kernel)

        def downsampled(img: np.ndarray) -> np.ndarray:
            return bicubic_downsample(img, scale)

        hr = self._decode(hr_path)
        if scale == 1:
            lr = self._decode(hr_path, self._blur_tag(), blurred)
        elif lr_path is not None:
            lr = self._decode(lr_path, self._blur_tag(), blurred) if blur else self._decode(lr_path)
        elif blur:
            tag = f"x{scale}-{self._blur_tag()}"
            lr = self._decode(hr_path, tag, lambda img: blurred(downsampled(img)))
        else:
            lr = self._decode(hr_path, f"x{scale}", downsampled)

        lr_h, lr_w = lr.shape[:2]
        if hr.shape[0] < lr_h * scale or hr.shape[1] < lr_w * scale:
            raise ValueError(
                f"HR image {hr_path} of size {hr.shape[1]}x{hr.shape[0]} is smaller than its LR "
                f"image ({lr_w}x{lr_h}) times scale {scale}"
            )
        return lr, hr[: lr_h * scale, : lr_w * scale]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.scales) != 1:
            raise ValueError(
                f"this dataset has several scales {self.scales}; index a single-scale view "
                "from with_scale(s)"
            )
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        scale = self.scales[0]
        lr, hr = self.load_pair(index % len(self.hr_files), scale)
        if not self.full_image:
            rng = torch_seeded_rng()
            lr, hr = paired_random_crop(lr, hr, self.patch_size, scale, rng)
            if self.augment:
                lr, hr = augment_pair(lr, hr, rng)
        return to_tensor(lr), to_tensor(hr)


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} does not exist or is not a directory")


class DIV2K(PairedSRDataset):
    """DIV2K as distributed (see module docstring); ``split`` is "train" or "valid".

    ``scale`` is an int, or a tuple of ints for MDSR (then use ``with_scale``). A missing root,
    a missing or empty HR folder, or an LR folder lacking some image raise ``ValueError`` naming
    the path.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        scale: int | Sequence[int] = 2,
        task: str = "sr",
        patch_size: int = 48,
        augment: bool = True,
        repeat: int = 1,
        cache_dir: str | os.PathLike[str] | None = None,
        blur_sigma: float = 1.0,
        blur_kernel: int = 7,
        full_image: bool = False,
    ) -> None:
        if split not in ("train", "valid"):
            raise ValueError(f"split must be 'train' or 'valid', got {split!r}")
        self.root = Path(root)
        self.split = split
        super().__init__(
            scale, task, patch_size, augment, repeat, cache_dir, blur_sigma, blur_kernel, full_image
        )

    def _find_images(self, scales: tuple[int, ...]) -> _FoundImages:
        _require_dir(self.root, "DIV2K root")
        hr_dir = self.root / f"DIV2K_{self.split}_HR"
        _require_dir(hr_dir, "DIV2K HR folder")
        hr_files = sorted(p for p in hr_dir.iterdir() if p.suffix.lower() == ".png")
        if not hr_files:
            raise ValueError(f"DIV2K HR folder {str(hr_dir)!r} contains no .png images")

        lr_files: dict[int, list[Path | None]] = {}
        for s in scales:
            lr_dir = self.root / f"DIV2K_{self.split}_LR_bicubic" / f"X{s}"
            if s == 1 or not lr_dir.is_dir():
                lr_files[s] = [None] * len(hr_files)
                continue
            expected = [lr_dir / f"{hr.stem}x{s}.png" for hr in hr_files]
            missing = [path for path in expected if not path.is_file()]
            if missing:
                raise ValueError(
                    f"DIV2K LR folder {str(lr_dir)!r} lacks {len(missing)} of {len(expected)} "
                    f"images, e.g. {missing[0].name!r}"
                )
            lr_files[s] = list(expected)
        return hr_files, lr_files

    @property
    def generated_lr_scales(self) -> tuple[int, ...]:
        """Scales whose LR images are made by bicubic downsampling (no ``X{s}`` folder)."""
        return tuple(s for s in self.scales if all(p is None for p in self.lr_files[s]))


class ImageFolderSR(PairedSRDataset):
    """Every image in ``root`` (Set5, Set14, B100, Urban100 style) as HR; LR by bicubic
    downsampling. Defaults suit evaluation: whole images, no augmentation."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        scale: int | Sequence[int] = 2,
        task: str = "sr",
        patch_size: int = 48,
        augment: bool = False,
        repeat: int = 1,
        cache_dir: str | os.PathLike[str] | None = None,
        blur_sigma: float = 1.0,
        blur_kernel: int = 7,
        full_image: bool = True,
        recursive: bool = False,
    ) -> None:
        self.root = Path(root)
        self.recursive = bool(recursive)
        super().__init__(
            scale, task, patch_size, augment, repeat, cache_dir, blur_sigma, blur_kernel, full_image
        )

    def _find_images(self, scales: tuple[int, ...]) -> _FoundImages:
        _require_dir(self.root, "image folder")
        candidates = self.root.rglob("*") if self.recursive else self.root.iterdir()
        hr_files = sorted(
            p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not hr_files:
            raise ValueError(
                f"image folder {str(self.root)!r} contains no images with extensions "
                f"{IMAGE_EXTENSIONS}"
            )
        return hr_files, {s: [None] * len(hr_files) for s in scales}
