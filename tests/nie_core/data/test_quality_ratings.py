from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from nie_core.data.ava import AVA
from nie_core.data.images import read_image, save_image
from nie_core.data.quality_ratings import (
    QUALITY_LEVELS,
    QualityLevel,
    build_quality_ratings,
    degrade,
    expected_votes,
)


def _photo_set(root: Path) -> Path:
    """A tiny DIV2K-layout set: two train and one validation 'photo' with texture."""
    rng = np.random.default_rng(0)
    div2k = root / "DIV2K"
    for split, ids in (("train", ("0001", "0002")), ("valid", ("0801",))):
        for image_id in ids:
            base = rng.integers(0, 256, size=(24, 24, 3)).astype(np.uint8)
            image = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))  # 192 x 192, sharp edges
            save_image(div2k / f"DIV2K_{split}_HR" / f"{image_id}.png", image)
    return div2k


def test_expected_votes_follow_the_mean_score() -> None:
    for mean in (3.4, 5.4, 7.0):
        votes = np.array(expected_votes(mean))
        assert votes.shape == (10,) and votes.min() >= 0 and votes.sum() > 900
        assert abs((votes * np.arange(1, 11)).sum() / votes.sum() - mean) < 0.1


def test_levels_rank_clean_above_every_degradation() -> None:
    clean = next(level for level in QUALITY_LEVELS if level.kind == "clean")
    assert all(level.mean_score < clean.mean_score for level in QUALITY_LEVELS if level != clean)
    bicubic = [level.mean_score for level in QUALITY_LEVELS if level.kind == "bicubic"]
    assert bicubic == sorted(bicubic, reverse=True)  # x2 > x3 > x4


def test_bicubic_degradation_blurs_and_keeps_the_size() -> None:
    rng = np.random.default_rng(0)
    image = np.kron(rng.integers(0, 256, (12, 12, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    x2 = degrade(image, QualityLevel("b2", "bicubic", 2, 5.0), rng)
    x4 = degrade(image, QualityLevel("b4", "bicubic", 4, 3.0), rng)
    assert x2.shape == x4.shape == image.shape and x2.dtype == np.uint8
    error = [np.abs(v.astype(float) - image).mean() for v in (x2, x4)]
    assert 0 < error[0] < error[1]
    with pytest.raises(ValueError, match="multiple of scale 3"):
        degrade(image[:46], QualityLevel("b3", "bicubic", 3, 4.0), rng)
    with pytest.raises(ValueError, match="unknown degradation kind"):
        degrade(image, QualityLevel("x", "sepia", 1, 4.0), rng)


def test_build_writes_a_split_by_photograph_that_the_ava_loader_reads(tmp_path: Path) -> None:
    div2k = _photo_set(tmp_path)
    paths = build_quality_ratings(div2k, tmp_path / "quality", crop=96, crops_per_photo=2)
    with open(paths["csv"], newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "path" and len(rows[0]) == 11
    assert len(rows) - 1 == 3 * 2 * len(QUALITY_LEVELS)
    valid = Path(paths["split_file"]).read_text().split()
    assert len(valid) == 2 * len(QUALITY_LEVELS) and all(
        v.startswith("images/0801_") for v in valid
    )
    assert read_image(tmp_path / "quality" / valid[0]).shape == (96, 96, 3)

    kw = dict(csv=paths["csv"], split_file=paths["split_file"], resize=96, crop=64)
    train = AVA(tmp_path / "quality", split="train", augment=True, **kw)
    val = AVA(tmp_path / "quality", split="val", augment=False, **kw)
    assert len(train) == 2 * 2 * len(QUALITY_LEVELS) and len(val) == len(valid)
    image, votes = val[0]
    assert tuple(image.shape) == (3, 64, 64) and abs(float(votes.sum()) - 1.0) < 1e-5

    # Idempotent: a second call writes nothing; force rewrites.
    before = Path(paths["csv"]).stat().st_mtime_ns
    build_quality_ratings(div2k, tmp_path / "quality", crop=96, crops_per_photo=2)
    assert Path(paths["csv"]).stat().st_mtime_ns == before
    build_quality_ratings(div2k, tmp_path / "quality", crop=96, crops_per_photo=2, force=True)
    assert Path(paths["csv"]).stat().st_mtime_ns != before


def test_build_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of 12"):
        build_quality_ratings(tmp_path, tmp_path / "q", crop=100)
    with pytest.raises(ValueError, match="DIV2K-layout"):
        build_quality_ratings(tmp_path, tmp_path / "q")


def test_enhancer_outputs_join_the_ratings_for_scorer_hardening(tmp_path: Path) -> None:
    """The hardening source: an enhancer's x2 outputs of each crop, rated as given."""
    from nie_core.data.quality_ratings import RatedOutputs

    div2k = _photo_set(tmp_path)
    gamed = RatedOutputs("gamed", "zoo:edsr_baseline-x2@nie-photos", 4.4)
    paths = build_quality_ratings(div2k, tmp_path / "hard", crop=96, crops_per_photo=1,
                                  levels=["clean"], outputs=[gamed])  # fmt: skip
    rows = list(csv.reader(Path(paths["csv"]).open()))[1:]
    assert [r[0] for r in rows] == [f"images/{i}_0_{k}.png" for i in ("0001", "0002", "0801")
                                    for k in ("clean", "gamed")]  # fmt: skip
    by_level = {r[0].rsplit("_", 1)[1]: [int(c) for c in r[1:]] for r in rows}
    assert by_level["gamed.png"] == expected_votes(4.4)
    clean = read_image(tmp_path / "hard" / rows[0][0])
    output = read_image(tmp_path / "hard" / rows[1][0])
    assert output.shape == clean.shape and not np.array_equal(output, clean)
    assert np.abs(output.astype(float) - clean).mean() < 40  # an x2 reconstruction of it
    with pytest.raises(ValueError, match="unknown quality levels"):
        build_quality_ratings(div2k, tmp_path / "x", crop=96, levels=["nope"])
    with pytest.raises(ValueError, match="distinct"):
        build_quality_ratings(div2k, tmp_path / "x", crop=96, levels=["clean"],
                              outputs=[RatedOutputs("clean", gamed.model, 4.0)])  # fmt: skip


def test_rate_outputs_option_is_parsed_and_checked() -> None:
    from nie_cli.data import parse_rated_outputs

    rated = parse_rated_outputs("gamed=runs/x/best:4.4")
    assert (rated.name, rated.model, rated.mean_score) == ("gamed", "runs/x/best", 4.4)
    assert parse_rated_outputs("z=zoo:edsr_baseline-x2@nie-photos:6").model == (
        "zoo:edsr_baseline-x2@nie-photos"
    )
    for bad in ("gamed", "gamed=:4", "=m:4", "g=m:eleven", "g=m:11"):
        with pytest.raises(ValueError, match="NAME=MODEL:SCORE"):
            parse_rated_outputs(bad)
