from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nie_core.data.ava import AVA, parse_ava_txt
from nie_core.data.div2k import DIV2K
from nie_core.data.images import read_image
from nie_core.data.sample import build_sample_data, main, synthetic_votes

SMALL = {"n_train": 2, "n_valid": 1, "n_ava": 12, "seed": 3}


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory) -> dict[str, str]:
    return build_sample_data(tmp_path_factory.mktemp("sample"), **SMALL)


def test_layout_loads_through_div2k(small_sample):
    div2k = Path(small_sample["div2k"])
    assert sorted(p.name for p in (div2k / "DIV2K_train_HR").iterdir()) == ["0001.png", "0002.png"]
    assert (div2k / "DIV2K_valid_LR_bicubic" / "X3" / "0801x3.png").is_file()
    for split in ("train", "valid"):
        dataset = DIV2K(div2k, split=split, scale=(2, 3, 4), full_image=True)
        assert dataset.generated_lr_scales == ()  # the LR folders were written
        for scale in (2, 3, 4):
            lr, hr = dataset.with_scale(scale)[0]
            assert hr.shape[1] == lr.shape[1] * scale and hr.shape[2] == lr.shape[2] * scale
    hr = read_image(div2k / "DIV2K_train_HR" / "0001.png")
    assert hr.shape[0] % 12 == 0 and hr.shape[1] % 12 == 0 and 192 <= min(hr.shape[:2])
    assert hr.std() > 10  # a photograph, not a flat image


def test_layout_loads_through_ava(small_sample):
    entries = parse_ava_txt(small_sample["ava_txt"])
    assert len(entries) == 12
    assert all(sum(e.votes) >= 80 for e in entries)
    train = AVA(small_sample["ava"], split="train", resize=64, crop=48)
    val = AVA(small_sample["ava"], split="val", resize=64, crop=48, augment=False)
    assert len(train) + len(val) == 12
    image, dist = val[0]
    assert image.shape == (3, 48, 48) and float(dist.sum()) == pytest.approx(1.0)


def test_synthetic_scores_fall_with_degradation_strength():
    rng = np.random.default_rng(0)
    scores = np.arange(1, 11)
    means = []
    for strength in range(5):
        votes = np.array([synthetic_votes(strength, rng) for _ in range(30)])
        means.append(float(((votes * scores).sum(1) / votes.sum(1)).mean()))
    assert all(a > b + 0.4 for a, b in zip(means, means[1:], strict=False))
    assert 6.0 < means[0] < 7.2 and 2.6 < means[4] < 3.8


def test_build_is_deterministic_and_idempotent(tmp_path, small_sample):
    first = build_sample_data(tmp_path / "a", **SMALL)
    ava_txt = Path(first["ava_txt"])
    assert ava_txt.read_text() == Path(small_sample["ava_txt"]).read_text()  # same seed

    stamp = ava_txt.stat().st_mtime_ns
    assert build_sample_data(tmp_path / "a", **SMALL) == first
    assert ava_txt.stat().st_mtime_ns == stamp  # nothing rewritten

    # Other arguments rebuild, and files of the old build disappear.
    build_sample_data(tmp_path / "a", **{**SMALL, "n_train": 1})
    hr_dir = Path(first["div2k"]) / "DIV2K_train_HR"
    assert sorted(p.name for p in hr_dir.iterdir()) == ["0001.png"]
    manifest = json.loads(Path(first["manifest"]).read_text())
    assert manifest["args"]["n_train"] == 1

    # A deleted file triggers a rebuild too.
    (hr_dir / "0001.png").unlink()
    build_sample_data(tmp_path / "a", **{**SMALL, "n_train": 1})
    assert (hr_dir / "0001.png").is_file()


def test_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "SYNTHETIC" in capsys.readouterr().out

    assert main([str(tmp_path / "cli"), "--n-train", "1", "--n-valid", "1", "--n-ava", "4"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert len(parse_ava_txt(paths["ava_txt"])) == 4
    with pytest.raises(ValueError, match="n_ava"):
        build_sample_data(tmp_path / "bad", n_ava=0)
