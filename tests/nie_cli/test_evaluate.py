"""``nie eval`` end to end through the ``nie`` entry point (no Ray, no server)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nie_cli.main import main
from nie_core.checkpoint import save_checkpoint
from nie_core.data.images import save_image
from nie_core.models import create_model


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 192 x 192 photographs (NIQE needs 192 px) and a file that is not an image."""
    from skimage import data

    folder = tmp_path_factory.mktemp("hr")
    for name, image in (("cat.png", data.chelsea()), ("cup.png", data.coffee())):
        save_image(folder / name, np.ascontiguousarray(image[100:292, 150:342]))
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    kwargs = {"scale": 2, "n_resblocks": 1, "n_feats": 8}
    model = create_model("edsr_baseline", **kwargs)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_checkpoint(path, {"model_name": "edsr_baseline", "model_kwargs": kwargs,
                           "model": model.state_dict()})  # fmt: skip
    return path


def test_eval_writes_a_table_with_bicubic_and_reference(hr_folder, tiny_checkpoint, tmp_path,
                                                        capsys) -> None:  # fmt: skip
    out = tmp_path / "eval"
    status = main(["eval", "--model", str(tiny_checkpoint), "--data", str(hr_folder),
                   "--no-nima", "--out", str(out)])  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    for needed in ("PSNR-Y", "SSIM-Y", "GMSD", "Artifacts dB", "NIQE", "LR-consistency",
                   "bicubic", "reference", "Protocol", "shave = scale", "8 bits"):  # fmt: skip
        assert needed in printed, needed
    result = json.loads((out / "results.json").read_text())
    assert result["images"] == ["cat.png", "cup.png"] and result["scale"] == 2
    assert result["date"] and result["machine"]
    summary = result["summary"]
    assert list(summary)[0] == "bicubic" and list(summary)[-1] == "reference"
    bicubic = summary["bicubic"]
    assert 20 < bicubic["psnr_y"]["mean"] < 40 and bicubic["psnr_y"]["n"] == 2
    # Bicubic explains its input well but not perfectly; the reference has no PSNR.
    assert 30 < bicubic["lr_psnr_y"]["mean"] < 60
    # Bicubic is blurred (GMSD above 0) but adds no structure on smooth areas.
    assert 0 < bicubic["gmsd"]["mean"] < 0.35 and 0 <= bicubic["artifacts"]["mean"] < 1.0
    assert set(summary["reference"]) == {"niqe"}
    assert (out / "results.md").read_text().startswith("**nie eval x2")


def test_eval_of_the_zoo_models_with_nima(hr_folder, tmp_path, capsys) -> None:
    out = tmp_path / "zoo"
    assert main(["eval", "--data", str(hr_folder), "--out", str(out)]) == 0  # zoo defaults
    summary = json.loads((out / "results.json").read_text())["summary"]
    model_row = next(row for row in summary if row.startswith("model"))
    assert summary[model_row]["psnr_y"]["mean"] > summary["bicubic"]["psnr_y"]["mean"]
    assert all("nima" in summary[row] for row in summary)


def test_eval_of_a_scorer_reports_its_ranking(hr_folder, tmp_path, capsys) -> None:
    out = tmp_path / "nima"
    status = main(["eval", "--model", "zoo:nima@nie-quality", "--data", str(hr_folder),
                   "--crop", "192", "--out", str(out)])  # fmt: skip
    assert status == 0
    ranking = json.loads((out / "results.json").read_text())["ranking"]
    assert ranking["pairs"] == 6 and 0 <= ranking["correct"] <= 6
    assert set(ranking["per_image"][0]["scores"]) == {"reference", "x2", "x4"}
    assert "pairs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "/no/such/folder"], "is not a folder of images"),
        (["--model", "zoo:edsr_baseline-x7@nie-photos", "--data", "."], "no zoo model"),
        (["--model", "/no/such/checkpoint.pt", "--data", "."], "no checkpoint"),
    ],
)
def test_eval_errors_are_one_line(argv, message, tmp_path, capsys, hr_folder) -> None:
    argv = [str(hr_folder) if a == "." else a for a in argv]
    assert main(["eval", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
