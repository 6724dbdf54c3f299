"""``nie data sample|photos|ratings``: build the datasets (``nie_core.data``) and say where they are."""

from __future__ import annotations

import argparse
from typing import Any


def run_sample(args: argparse.Namespace) -> int:
    """``nie data sample DIR``: the bundled sample datasets (DIV2K and AVA layouts)."""
    from nie_core.data.sample import build_sample_data

    paths = build_sample_data(args.out_dir, seed=args.seed, force=args.force)
    print(f"sample data ready: DIV2K layout in {paths['div2k']}, AVA layout in {paths['ava']}")
    print("note: the AVA ratings of the sample set are synthetic (from controlled degradations)")
    return 0


def run_photos(args: argparse.Namespace) -> int:
    """``nie data photos DIR``: the real-photograph set in the DIV2K layout."""
    from nie_core.data.photos import build_photo_set

    summary = build_photo_set(
        args.out_dir, sources_dir=args.debs_dir, hr_long_side=args.hr_long_side,
        valid_fraction=args.valid_fraction, seed=args.seed, force=args.force,
    )  # fmt: skip
    print(
        f"photo set ready: {summary['n_train']} train + {summary['n_valid']} valid photographs "
        f"({summary['hr_pixels'] / 1e6:.1f} MP of HR) in the DIV2K layout in {summary['div2k']}; "
        f"sources and licences in {summary['manifest']}"
    )
    return 0


def parse_rated_outputs(spec: str) -> Any:
    """``NAME=MODEL:SCORE`` -> ``RatedOutputs``; ValueError naming the problem otherwise."""
    from nie_core.data.quality_ratings import RatedOutputs

    name, sep, rest = spec.partition("=")
    model, colon, score = rest.rpartition(":")
    try:
        value = float(score)
    except ValueError:
        value = float("nan")
    if not (sep and colon and name and model) or not 1.0 <= value <= 10.0:
        raise ValueError(f"--rate-outputs {spec!r}: expected NAME=MODEL:SCORE with SCORE in 1..10")
    return RatedOutputs(name, model, value)


def run_ratings(args: argparse.Namespace) -> int:
    """``nie data ratings``: synthetic quality ratings of photograph crops (AVA layout)."""
    from nie_core.data.quality_ratings import build_quality_ratings

    outputs = [parse_rated_outputs(spec) for spec in args.rate_outputs]
    paths = build_quality_ratings(
        args.photos, args.out_dir, crop=args.crop, crops_per_photo=args.crops_per_photo,
        seed=args.seed, force=args.force, levels=args.levels, outputs=outputs,
    )  # fmt: skip
    print(f"ratings ready: {paths['csv']} (validation rows in {paths['split_file']})")
    print("note: these ratings are SYNTHETIC (set by the degradation), not human votes")
    return 0
