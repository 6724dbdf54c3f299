"""The AVA aesthetic-rating dataset (Murray et al., CVPR 2012), as used to train NIMA.

Read exactly as distributed::

    root/AVA.txt            one image per line, 15 space-separated integers:
                            index, image id, votes for scores 1..10, semantic tag 1,
                            semantic tag 2, challenge id
    root/images/<id>.jpg

or from a generic CSV (``csv=``) with a header row ``path,<ten count columns>`` whose paths are
relative to the CSV's folder.

Splits: with ``split_file`` (a text file of image ids, one per line, such as AVA's
``aesthetics_image_lists/generic_test.jpgl``; for a CSV, the paths as written in the CSV) the
listed images form the "val" split and all others "train". Without one, a seeded permutation of
all rated images puts ``val_fraction`` of them in "val" (the report's 80/20 split); the split does
not depend on which image files happen to be present.

Images listed but missing on disk are dropped when the dataset is built and counted in a single
warning (together with rows that have no votes). Images that exist but cannot be decoded are
replaced, when loaded, by the next readable item, so an epoch never stops on a corrupt file; the
first one triggers a single warning and ``num_unreadable`` counts them (per process).

Items: ``(image (3, crop, crop) float32 in [0, 1], votes (10,) float32 summing to 1)``. Training:
resize to ``resize`` x ``resize`` (aspect ratio not kept), random ``crop`` square, random
horizontal flip (NIMA, Talebi & Milanfar 2018). Evaluation (``augment=False``): resize, centre
crop.
"""

from __future__ import annotations

import csv as csv_module
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from nie_core.data.images import ImageDecodeError, read_image, to_tensor
from nie_core.data.transforms import (
    center_crop,
    random_crop,
    random_hflip,
    resize,
    torch_seeded_rng,
)

__all__ = ["AVA", "AVAEntry", "RatedImage", "parse_ava_txt", "parse_ratings_csv", "read_id_list"]

NUM_SCORES = 10


@dataclass(frozen=True)
class AVAEntry:
    """One line of AVA.txt. ``votes[i]`` is the number of votes for score i + 1."""

    index: int
    image_id: str
    votes: tuple[int, ...]
    semantic_tags: tuple[int, int]
    challenge_id: int

    @property
    def mean_score(self) -> float:
        """Mean rating sum_i i * n_i / sum_i n_i, in [1, 10] (NaN without votes)."""
        total = sum(self.votes)
        if total == 0:
            return float("nan")
        return sum((i + 1) * n for i, n in enumerate(self.votes)) / total


@dataclass(frozen=True)
class RatedImage:
    """An image file with its vote counts; ``key`` is what a split file lists."""

    key: str
    path: Path
    votes: tuple[int, ...]


def parse_ava_txt(path: str | os.PathLike[str]) -> list[AVAEntry]:
    """Parse AVA.txt (15 integers a line, see module docstring); blank lines are skipped.

    A line with another number of fields or a non-integer raises ``ValueError`` naming the file
    and line number.
    """
    entries = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 15:
                raise ValueError(
                    f"{path}:{line_number}: expected 15 space-separated integers, got "
                    f"{len(fields)} fields"
                )
            try:
                numbers = [int(field) for field in fields]
            except ValueError as err:
                raise ValueError(f"{path}:{line_number}: non-integer field ({err})") from None
            if any(n < 0 for n in numbers[2:12]):
                raise ValueError(f"{path}:{line_number}: negative vote count")
            entries.append(
                AVAEntry(
                    index=numbers[0],
                    image_id=fields[1],
                    votes=tuple(numbers[2:12]),
                    semantic_tags=(numbers[12], numbers[13]),
                    challenge_id=numbers[14],
                )
            )
    return entries


def parse_ratings_csv(path: str | os.PathLike[str]) -> list[RatedImage]:
    """Parse a CSV with header ``path,<ten vote-count columns>``; image paths are relative to
    the CSV's folder (absolute paths are kept). Malformed rows raise ``ValueError``."""
    path = Path(path)
    images = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv_module.reader(handle)
        header = next(reader, None)
        if header is None or len(header) != 1 + NUM_SCORES or header[0].strip().lower() != "path":
            raise ValueError(
                f"{path}: header must be 'path' followed by {NUM_SCORES} vote-count columns, "
                f"got {header}"
            )
        for row_number, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 1 + NUM_SCORES:
                raise ValueError(
                    f"{path}:{row_number}: expected {1 + NUM_SCORES} columns, got {len(row)}"
                )
            try:
                votes = tuple(int(float(cell)) for cell in row[1:])
            except ValueError as err:
                raise ValueError(f"{path}:{row_number}: bad vote count ({err})") from None
            if any(n < 0 for n in votes):
                raise ValueError(f"{path}:{row_number}: negative vote count")
            key = row[0].strip()
            images.append(RatedImage(key=key, path=path.parent / key, votes=votes))
    return images


def read_id_list(path: str | os.PathLike[str]) -> set[str]:
    """The non-blank lines of a split file (e.g. AVA's ``generic_test.jpgl``), stripped."""
    with open(path, encoding="utf-8") as handle:
        return {line.strip() for line in handle if line.strip()}


def _seeded_val_keys(keys: list[str], val_fraction: float, seed: int) -> set[str]:
    order = np.random.default_rng(seed).permutation(len(keys))
    n_val = round(len(keys) * val_fraction)
    if len(keys) >= 2:
        n_val = min(max(n_val, 1), len(keys) - 1)  # both splits non-empty
    return {keys[i] for i in order[:n_val]}


class AVA(Dataset):
    """AVA images with their vote distributions; see the module docstring.

    ``split`` is "train" or "val". A missing root, AVA.txt, CSV or images folder, or a split
    without any present image, raise ``ValueError`` naming the path.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        split_file: str | os.PathLike[str] | None = None,
        val_fraction: float = 0.2,
        seed: int = 0,
        resize: int = 256,
        crop: int = 224,
        augment: bool = True,
        csv: str | os.PathLike[str] | None = None,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not 1 <= crop <= resize:
            raise ValueError(f"crop must be in 1..resize={resize}, got {crop}")
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"AVA root {str(root)!r} does not exist or is not a directory")

        if csv is not None:
            list_file = root / csv  # an absolute csv path replaces root
            if not list_file.is_file():
                raise ValueError(f"AVA ratings CSV {str(list_file)!r} does not exist")
            rated = parse_ratings_csv(list_file)
        else:
            list_file = root / "AVA.txt"
            images_dir = root / "images"
            if not list_file.is_file():
                raise ValueError(f"AVA list {str(list_file)!r} does not exist")
            if not images_dir.is_dir():
                raise ValueError(f"AVA images folder {str(images_dir)!r} does not exist")
            rated = [
                RatedImage(key=e.image_id, path=images_dir / f"{e.image_id}.jpg", votes=e.votes)
                for e in parse_ava_txt(list_file)
            ]
        if not rated:
            raise ValueError(f"AVA list {str(list_file)!r} contains no images")

        if split_file is not None:
            split_path = root / split_file
            if not split_path.is_file():
                raise ValueError(f"AVA split file {str(split_path)!r} does not exist")
            val_keys = read_id_list(split_path)
            if not val_keys & {image.key for image in rated}:
                raise ValueError(
                    f"AVA split file {str(split_path)!r} lists none of the images in "
                    f"{str(list_file)!r}"
                )
        else:
            if not 0.0 < val_fraction < 1.0:
                raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
            val_keys = _seeded_val_keys([image.key for image in rated], val_fraction, seed)

        in_split = [image for image in rated if (image.key in val_keys) == (split == "val")]
        without_votes = [image for image in in_split if sum(image.votes) == 0]
        voted = [image for image in in_split if sum(image.votes) > 0]
        self.images = [image for image in voted if os.path.exists(image.path)]
        num_missing = len(voted) - len(self.images)
        if num_missing or without_votes:
            warnings.warn(
                f"AVA {split}: skipped {num_missing} missing image file(s) and "
                f"{len(without_votes)} image(s) without votes out of {len(in_split)} listed in "
                f"{list_file}",
                stacklevel=2,
            )
        if not self.images:
            raise ValueError(f"AVA {split} split of {str(list_file)!r} has no image present")

        self.root = root
        self.split = split
        self.resize = int(resize)
        self.crop = int(crop)
        self.augment = bool(augment)
        self._unreadable: set[int] = set()

    @property
    def num_unreadable(self) -> int:
        """How many images failed to decode so far in this process."""
        return len(self._unreadable)

    @property
    def mean_scores(self) -> np.ndarray:
        """Mean rating of each item, (N,) float64 in [1, 10]."""
        votes = np.array([image.votes for image in self.images], dtype=np.float64)
        return votes @ np.arange(1, NUM_SCORES + 1) / votes.sum(axis=1)

    def __len__(self) -> int:
        return len(self.images)

    def _load(self, image: RatedImage) -> torch.Tensor:
        pixels = read_image(image.path, draft_size=(self.resize, self.resize))
        pixels = resize(pixels, self.resize)
        if self.augment:
            rng = torch_seeded_rng()
            pixels = random_hflip(random_crop(pixels, self.crop, rng), rng)
        else:
            pixels = center_crop(pixels, self.crop)
        return to_tensor(pixels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        for offset in range(len(self)):
            candidate = (index + offset) % len(self)
            if candidate in self._unreadable:
                continue
            image = self.images[candidate]
            try:
                pixels = self._load(image)
            except (ImageDecodeError, OSError) as err:
                if not self._unreadable:
                    warnings.warn(
                        f"AVA: cannot read {image.path} ({err}); it and any further unreadable "
                        "images are replaced by the next readable item (see num_unreadable)",
                        stacklevel=2,
                    )
                self._unreadable.add(candidate)
                continue
            votes = torch.tensor(image.votes, dtype=torch.float32)
            return pixels, votes / votes.sum()
        raise ValueError(f"AVA {self.split}: none of the {len(self)} images can be read")
