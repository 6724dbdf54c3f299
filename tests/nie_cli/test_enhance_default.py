"""``nie enhance`` without ``--model`` after a demo: the hybrid model only when the demo's verdict
(``runs/demo_summary.json``, from ``nie_core.judging``) says it passed the judges; otherwise the
L2 model, else the zoo model; one line on stderr says which and why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import yaml
from PIL import Image

from nie_cli import enhance as enhance_module
from nie_cli.main import main
from nie_core.checkpoint import load_model
from nie_core.data.images import read_image, to_tensor, to_uint8
from nie_core.inference import enhance
from nie_core.judging import judge_outputs

pytestmark = pytest.mark.usefixtures("isolated_cli")

ZOO = "zoo:edsr_baseline-x2@nie-photos"
# Means as the demo's summary has them (the run in docs/results/demo_summary.md): NIMA prefers
# the hybrid model, NIQE, SSIM-Y and LR-consistency the L2 model.
L2 = {"psnr_y": 33.39, "ssim_y": 0.9272, "niqe": 5.21, "lr_psnr_y": 53.49, "nima": 5.531}
GAMING = {"psnr_y": 33.31, "ssim_y": 0.9250, "niqe": 5.27, "lr_psnr_y": 51.12, "nima": 5.610}
HONEST = {"psnr_y": 33.35, "ssim_y": 0.9270, "niqe": 5.19, "lr_psnr_y": 53.30, "nima": 5.610}


@pytest.fixture
def workdir(tmp_path: Path, tiny_checkpoints, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A demo's working directory: its MLflow store's place and ``runs/``, served by a config
    like the bundled one whose L2 ("baseline") and hybrid models are the tiny checkpoints."""
    root = tmp_path / "demo"
    (root / "runs").mkdir(parents=True)
    config = {
        "models": [
            {"name": "edsr_x2_baseline", "label": "baseline",
             "source": str(tiny_checkpoints["baseline"]), "fallback": ZOO},
            {"name": "edsr_x2_hybrid", "label": "hybrid",
             "source": str(tiny_checkpoints["hybrid"]), "fallback": ZOO},
        ],
        "scorer": {"source": "zoo:nima@nie-quality", "backbone": "efficientnet_lite0"},
        "mlflow_tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
    }  # fmt: skip
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setattr(enhance_module, "DEFAULT_SERVE_CONFIG", path)
    return root


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "coffee.png"
    Image.fromarray(skimage.data.coffee()[100:164, 200:280]).save(path)
    return path


def write_summary(workdir: Path, hybrid: dict[str, float]) -> dict:
    """``runs/demo_summary.json`` as ``demo_summary`` writes it, for these means."""
    judged = {"L2": L2, "hybrid": hybrid}
    verdict = judge_outputs(judged)["hybrid"]
    payload = {
        "summary": {
            row: {m: {"mean": v, "std": 0.0, "n": 5} for m, v in values.items()}
            for row, values in (("EDSR x2, L2", L2), ("EDSR x2, hybrid (gamma 8)", hybrid))
        },
        "verdict": {
            "hybrid_passed": verdict.best,
            "reason": verdict.reason,
            "default_model": "hybrid" if verdict.best else "baseline",
            "judges": judged,
        },
    }
    (workdir / "runs" / "demo_summary.json").write_text(json.dumps(payload), encoding="utf-8")
    return payload["verdict"]


def run_default(photo: Path, out: Path, capsys) -> tuple[str, np.ndarray]:
    """``nie enhance PHOTO --out OUT`` (no --model): its one stderr line and its output."""
    assert main(["enhance", str(photo), "--out", str(out), "--no-fast"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0], read_image(out / f"{photo.stem}_sr_x2.png")


def output_of(checkpoint: Path, photo: Path) -> np.ndarray:
    x = to_tensor(read_image(photo)).unsqueeze(0)
    return to_uint8(enhance(load_model(checkpoint), x, fast=False)[0])


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_a_hybrid_model_that_passed_the_judges_is_used(
    workdir: Path, photo: Path, tiny_checkpoints, tmp_path: Path, capsys
) -> None:
    verdict = write_summary(workdir, HONEST)
    assert verdict["hybrid_passed"]  # NIMA up, and no judge rates it worse
    line, output = run_default(photo, tmp_path / "out", capsys)
    hybrid = tiny_checkpoints["hybrid"]
    assert line.startswith("nie enhance: using ") and str(hybrid.resolve()) in line
    assert line.endswith(
        ": the hybrid model, as the hybrid model passed the judges on the demo's validation"
    )
    assert same(output, output_of(hybrid, photo))


def test_a_hybrid_model_that_failed_the_judges_gives_way_to_the_l2_model(
    workdir: Path, photo: Path, tiny_checkpoints, tmp_path: Path, capsys
) -> None:
    verdict = write_summary(workdir, GAMING)
    assert not verdict["hybrid_passed"] and verdict["default_model"] == "baseline"
    line, output = run_default(photo, tmp_path / "out", capsys)
    baseline = tiny_checkpoints["baseline"]
    assert str(baseline.resolve()) in line and str(tiny_checkpoints["hybrid"]) not in line
    assert (
        ": the L2 model, as the hybrid model failed the judges on the demo's validation: "
        "NIMA prefers hybrid over L2 (5.61 vs 5.53), but SSIM-Y, NIQE and LR-consistency rate "
        "it worse (SSIM-Y 0.9250 vs 0.9272; NIQE 5.27 vs 5.21; LR-consistency 51.12 dB vs "
        "53.49 dB)"
    ) in line
    assert same(output, output_of(baseline, photo))
    assert not same(output, output_of(tiny_checkpoints["hybrid"], photo))


def test_without_the_l2_model_the_zoo_model_and_without_a_verdict_no_hybrid(
    workdir: Path, photo: Path, tiny_checkpoints, tmp_path: Path, capsys, monkeypatch
) -> None:
    # No summary at all: the hybrid model has not passed anything.
    line, output = run_default(photo, tmp_path / "a", capsys)
    assert str(tiny_checkpoints["baseline"].resolve()) in line
    assert "there is no demo verdict on the hybrid model" in line
    assert str(workdir / "runs" / "demo_summary.json") in line
    # A failed hybrid model and no L2 weights: the L2 model's fallback, the zoo model.
    write_summary(workdir, GAMING)
    config = yaml.safe_load(enhance_module.DEFAULT_SERVE_CONFIG.read_text())
    config["models"][0]["source"] = str(tmp_path / "missing_l2.pt")
    enhance_module.DEFAULT_SERVE_CONFIG.write_text(yaml.safe_dump(config))
    line, output = run_default(photo, tmp_path / "b", capsys)
    assert ZOO in line and "the fallback of the L2 model (not there: " in line
    assert "failed the judges on the demo's validation: NIMA prefers hybrid" in line
    assert not same(output, output_of(tiny_checkpoints["hybrid"], photo))


def test_demo_summary_writes_the_verdict_that_nie_enhance_follows(
    workdir: Path, photo: Path, tiny_checkpoints, tmp_path: Path, capsys
) -> None:
    """The demo's own summary step, on one validation image with the tiny models: its JSON
    carries the judges' verdict on the mean values, and ``nie enhance`` follows it."""
    from nie_cli.demo.layout import DemoLayout
    from nie_cli.demo.stages import StageResult
    from nie_cli.demo.summary import demo_summary

    layout = DemoLayout(workdir, fast=True)
    layout.valid_root.mkdir(parents=True)
    Image.fromarray(skimage.data.chelsea()[:192, :192]).save(layout.valid_root / "cat.png")
    stages = {
        name: StageResult(name, "", "", False, 0.0, {"checkpoint_dir": str(tiny_checkpoints[key])})
        for name, key in (("l2", "baseline"), ("hybrid", "hybrid"))
    }
    _, markdown = demo_summary(layout, stages, 8.0, 1.0)
    payload = json.loads((workdir / "runs" / "demo_summary.json").read_text())
    verdict = payload["verdict"]
    means = {
        name: {m: s["mean"] for m, s in payload["summary"][row].items()}
        for name, row in (("L2", "EDSR x2, L2"), ("hybrid", "EDSR x2, hybrid (gamma 8)"))
    }
    assert verdict["judges"] == means
    assert set(means["hybrid"]) == {"psnr_y", "ssim_y", "gmsd", "artifacts", "niqe",
                                    "lr_psnr_y", "nima"}  # fmt: skip
    expected = judge_outputs(means)["hybrid"]
    assert (verdict["hybrid_passed"], verdict["reason"]) == (expected.best, expected.reason)
    assert verdict["default_model"] == ("hybrid" if expected.best else "baseline")
    assert f"Verdict (nie_core.judging): {expected.reason}." in markdown
    line, output = run_default(photo, tmp_path / "out", capsys)
    chosen = tiny_checkpoints["hybrid" if expected.best else "baseline"]
    assert str(chosen.resolve()) in line and expected.reason in line
    assert same(output, output_of(chosen, photo))
