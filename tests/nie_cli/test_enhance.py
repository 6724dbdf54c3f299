"""``nie enhance`` and ``nie score``, run in process through the ``nie`` entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from nie_cli.main import main
from nie_core.checkpoint import load_model
from nie_core.data.images import read_image, to_tensor, to_uint8
from nie_core.inference import enhance, score
from nie_core.models.nima import mean_score, std_score
from tests.nie_cli.conftest import one_error_line

pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    """Two scikit-image photographs: an RGB crop and a grayscale crop, as PNG files."""
    rgb = tmp_path / "coffee.png"
    Image.fromarray(skimage.data.coffee()[100:164, 200:280]).save(rgb)
    gray = tmp_path / "camera.png"
    Image.fromarray(skimage.data.camera()[200:248, 200:256]).save(gray)
    return [rgb, gray]


def test_enhance_writes_scaled_images_equal_to_in_process(
    tmp_path: Path, photos: list[Path], tiny_checkpoints, capsys
) -> None:
    out = tmp_path / "out"
    checkpoint = tiny_checkpoints["hybrid"]
    status = main(
        ["enhance", *map(str, photos), "--model", str(checkpoint), "--out", str(out), "--no-fast"]
    )
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "coffee_sr_x2.png" in lines[0] and "80x64 -> 160x128" in lines[0]
    model = load_model(checkpoint)
    for photo in photos:
        written = read_image(out / f"{photo.stem}_sr_x2.png")
        source = read_image(photo)
        assert written.shape == (2 * source.shape[0], 2 * source.shape[1], 3)
        expected = to_uint8(enhance(model, to_tensor(source).unsqueeze(0), fast=False)[0])
        assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_enhance_mdsr_at_a_chosen_scale_and_tiled(tmp_path: Path, photos, tiny_checkpoints) -> None:
    status = main(
        ["enhance", str(photos[0]), "--model", str(tiny_checkpoints["mdsr"]), "--scale", "3",
         "--tile-size", "24", "--out", str(tmp_path / "o"), "--no-fast"]
    )  # fmt: skip
    assert status == 0
    assert read_image(tmp_path / "o" / "coffee_sr_x3.png").shape == (192, 240, 3)


def test_enhance_bad_paths_and_files_exit_2_with_one_line(
    tmp_path: Path, photos: list[Path], tiny_checkpoints, capsys
) -> None:
    model = str(tiny_checkpoints["baseline"])
    out = tmp_path / "out"
    assert (
        main(
            [
                "enhance",
                str(photos[0]),
                str(tmp_path / "missing.png"),
                "--model",
                model,
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "missing.png" in one_error_line(capsys, "enhance")
    assert not out.exists()  # checked before any work

    assert (
        main(["enhance", str(photos[0]), "--model", str(tmp_path / "no.pt"), "--out", str(out)])
        == 2
    )
    assert "no.pt" in one_error_line(capsys, "enhance")

    broken = tmp_path / "broken.png"
    broken.write_bytes(photos[0].read_bytes()[:100])
    assert main(["enhance", str(broken), "--model", model, "--out", str(out)]) == 2
    assert "broken.png" in one_error_line(capsys, "enhance")

    assert (
        main(["enhance", str(photos[0]), "--model", model, "--scale", "4", "--out", str(out)]) == 2
    )
    assert "scale" in one_error_line(capsys, "enhance")


def test_enhance_random_weights_need_the_opt_in(tmp_path: Path, photos, capsys) -> None:
    args = ["enhance", str(photos[1]), "--model", "edsr_baseline", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "allow-untrained" in one_error_line(capsys, "enhance").replace("_", "-")
    assert main([*args, "--allow-untrained", "--no-fast"]) == 0
    assert "RANDOM weights" in capsys.readouterr().err
    assert read_image(tmp_path / "o" / "camera_sr_x2.png").shape == (96, 112, 3)


def test_score_prints_a_table_of_mean_and_std(photos: list[Path], tiny_checkpoints, capsys) -> None:
    assert main(["score", *map(str, photos), "--model", str(tiny_checkpoints["nima"])]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["image", "mean", "std"]
    assert len(rows) == 2
    scorer = load_model(tiny_checkpoints["nima"])
    for photo, row in zip(photos, rows, strict=True):
        name, mean, std = row.rsplit(maxsplit=2)
        assert name.strip() == str(photo)
        probs = score(scorer, to_tensor(read_image(photo)).unsqueeze(0))
        assert float(mean) == pytest.approx(float(mean_score(probs)[0]), abs=1e-3)
        assert float(std) == pytest.approx(float(std_score(probs)[0]), abs=1e-3)
        assert 1.0 <= float(mean) <= 10.0


def test_score_errors_exit_2_with_one_line(
    tmp_path: Path, photos, tiny_checkpoints, capsys
) -> None:
    nima = str(tiny_checkpoints["nima"])
    assert main(["score", str(tmp_path / "nope.jpg"), "--model", nima]) == 2
    assert "nope.jpg" in one_error_line(capsys, "score")
    not_image = tmp_path / "notes.png"
    not_image.write_text("just text")
    assert main(["score", str(not_image), "--model", nima]) == 2
    assert "notes.png" in one_error_line(capsys, "score")
    # No --model: the bundled service config's scorer, the zoo's NIMA.
    assert main(["score", str(photos[0])]) == 0
    assert str(photos[0]) in capsys.readouterr().out
