"""``nie report``: the output assessment, the run selection, the figures and the whole report
from an MLflow store written by hand (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nie_core.checkpoint import load_model, save_checkpoint
from nie_core.config import config_to_dict, load_config
from nie_core.metrics import psnr_y
from nie_core.models import create_model
from ray_jobs.report import (
    EnhancerRun,
    ImageAssessment,
    assess_outputs,
    build_report,
    format_summary_table,
    gamma_rows,
    latest_runs,
    mean_assessment,
    pick_comparison,
    plot_output_grid,
    plot_training_curves,
)
from tests.stand_ins import NearestX2

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class BrightnessScorer(nn.Module):
    """A stand-in NIMA whose mean score is 1 + 9 * (mean pixel value): probability m on the
    score 10 and 1 - m on the score 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        probs = torch.zeros(x.shape[0], 10)
        probs[:, 0], probs[:, 9] = 1 - m, m
        return probs


class PairList:
    """Whole-image (lr, hr) pairs with names, like nie_core.data.div2k's validation sets."""

    def __init__(self, count: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.hr = [torch.rand(3, 40, 48, generator=g) for _ in range(count)]
        self.lr = [F.avg_pool2d(h[None], 2)[0] for h in self.hr]
        self.names = [f"{801 + i:04d}" for i in range(count)]

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lr[i], self.hr[i]


def test_assess_outputs_measures_every_method_on_the_same_crop() -> None:
    data = PairList(3)
    items = assess_outputs({"nearest": NearestX2()}, BrightnessScorer(), data, 2, crop_size=16)
    assert [a.image for a in items] == ["0801", "0802", "0803"]
    lr, hr = data[1]
    lr, hr = lr[None], hr[None]
    nearest = F.interpolate(lr, scale_factor=2, mode="nearest")
    bicubic = F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
    second = items[1]
    assert list(second.crops) == ["bicubic", "nearest", "reference"]
    assert second.psnr_y["nearest"] == pytest.approx(psnr_y(nearest, hr, shave=2).item(), abs=1e-4)
    assert second.psnr_y["bicubic"] == pytest.approx(psnr_y(bicubic, hr, shave=2).item(), abs=1e-4)
    assert "reference" not in second.psnr_y
    # NIMA of each whole image (resized to 224 for scoring: the mean brightness barely moves).
    for method, image in (("nearest", nearest), ("reference", hr)):
        assert second.nima_mean[method] == pytest.approx(1 + 9 * image.mean().item(), abs=0.02)
    # The same centre crop of every image.
    for crop in second.crops.values():
        assert crop.shape == (16, 16, 3) and crop.dtype == np.uint8
    expected = (hr[0, :, 12:28, 16:32].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    assert np.abs(second.crops["reference"].astype(int) - expected.astype(int)).max() <= 1

    only_one = assess_outputs({"nearest": NearestX2()}, None, data, 2, max_images=1)
    assert len(only_one) == 1 and only_one[0].nima_mean == {}


def _item(name: str, psnr: dict[str, float], nima: dict[str, float]) -> ImageAssessment:
    crops = {m: np.zeros((4, 4, 3), np.uint8) for m in [*psnr, "reference"]}
    return ImageAssessment(name, psnr, nima, crops)


def test_summary_table_shows_means_per_method() -> None:
    items = [
        _item(
            "a",
            {"bicubic": 30.0, "baseline": 31.0},
            {"bicubic": 5.0, "baseline": 6.0, "reference": 7.0},
        ),  # fmt: skip
        _item(
            "b",
            {"bicubic": 32.0, "baseline": 35.0},
            {"bicubic": 6.0, "baseline": 6.5, "reference": 7.5},
        ),  # fmt: skip
    ]
    means = mean_assessment(items)
    assert means["baseline"] == {"psnr_y": 33.0, "nima_mean": 6.25}
    assert means["reference"] == {"nima_mean": 7.25}
    table = format_summary_table(items, {"baseline": "EDSR (L2)"})
    lines = table.splitlines()
    assert lines[0].split() == ["method", "PSNR", "(Y)", "dB", "NIMA", "mean"]
    row = next(line for line in lines if line.startswith("EDSR (L2)"))
    assert row.split()[-2:] == ["33.00", "6.250"]
    ref = next(line for line in lines if line.startswith("reference"))
    assert ref.split()[-2:] == ["-", "7.250"]
    assert lines[-1] == "(mean over 2 validation image(s))"


def test_figures_are_pngs_and_empty_input_is_refused(tmp_path: Path) -> None:
    items = assess_outputs({"nearest": NearestX2()}, BrightnessScorer(), PairList(2), 2)
    grid = plot_output_grid(items, tmp_path / "grid.png", "outputs")
    assert grid.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="no images"):
        plot_output_grid([], tmp_path / "empty.png", "outputs")
    with pytest.raises(ValueError, match="per-epoch"):
        plot_training_curves([], tmp_path / "curves.png", "curves")
    assert not (tmp_path / "empty.png").exists()


def _run(name: str, start: int, model: str = "edsr_baseline", gamma: float = 0.0,
         status: str = "FINISHED", sweep: str | None = None, scales: str = "[2]",
         psnr: float | None = 30.0) -> EnhancerRun:  # fmt: skip
    params = {"model.name": model, "loss.gamma": str(gamma), "model.scales": scales,
              "data.task": "sr"}  # fmt: skip
    metrics = {"epoch": 3.0} if psnr is None else {"epoch": 3.0, "val_psnr_y": psnr}
    return EnhancerRun(name, name, status, start, params, metrics, sweep)


def test_pick_comparison_prefers_one_model_with_both_losses() -> None:
    runs = [
        _run("edsr-l2-old", 1),
        _run("edsr-l2", 2),
        _run("edsr-hybrid", 3, gamma=0.4),
        _run("mdsr-l2", 4, model="mdsr_baseline", scales="[2, 3]"),
        _run("mdsr-hybrid", 5, model="mdsr_baseline", gamma=0.4, scales="[2, 3]"),
        _run("edsr-hybrid-failed", 6, gamma=0.4, status="FAILED"),
        _run("trial", 7, gamma=0.1, sweep="sweep-a"),
        _run("edsr-x4-hybrid", 8, gamma=0.4, scales="[4]"),  # newest, but has no L2 partner
    ]
    baseline, hybrid = pick_comparison(runs, "sr")
    assert (baseline.name, hybrid.name) == ("edsr-l2", "edsr-hybrid")
    # Without EDSR pairs the MDSR pair is chosen; a lone run is returned on its side.
    baseline, hybrid = pick_comparison(runs[3:5], "sr")
    assert (baseline.name, hybrid.name) == ("mdsr-l2", "mdsr-hybrid")
    assert pick_comparison([runs[-1]], "sr") == (None, runs[-1])
    assert pick_comparison(runs, "deblur") == (None, None)


def test_gamma_rows_group_sweeps_by_model_and_skip_unfinished() -> None:
    runs = [
        _run("l2", 1),
        _run("t1", 2, gamma=0.4, sweep="s"),
        _run("t0", 3, gamma=0.0, sweep="s"),
        _run("killed", 4, gamma=1.0, sweep="s", status="KILLED"),
        _run("no-psnr", 5, psnr=None),
    ]
    rows = gamma_rows(runs, "sr")
    assert [(r["series"], r["loss.gamma"], r["run"]) for r in rows] == [
        ("edsr_baseline: single runs", 0.0, "l2"),
        ("edsr_baseline: sweep s", 0.0, "t0"),
        ("edsr_baseline: sweep s", 0.4, "t1"),
    ]


def test_latest_runs_keep_the_newest_attempt_of_each_run_and_sweep() -> None:
    from dataclasses import replace

    runs = [
        _run("l2", 1),
        replace(_run("t0", 2, sweep="s"), parent_run_id="old-parent"),
        _run("hybrid", 3, gamma=0.4),
        _run("l2", 4),  # retrained afresh: replaces the first
        replace(_run("t0b", 5, sweep="s"), parent_run_id="new-parent"),
        replace(_run("t1b", 6, gamma=0.4, sweep="s"), parent_run_id="new-parent"),
        replace(_run("u0", 7, sweep="other"), parent_run_id="p3"),
    ]
    kept = latest_runs(runs)
    assert [(r.name, r.start_time) for r in kept] == [
        ("hybrid", 3), ("l2", 4), ("t0b", 5), ("t1b", 6), ("u0", 7),
    ]  # fmt: skip


# --------------------------------------------------------------------------- a whole report


def _save_tiny_enhancer(folder: Path, name: str, seed: int, **kwargs: object) -> None:
    torch.manual_seed(seed)
    model = create_model(name, n_resblocks=1, n_feats=8, **kwargs)
    state = {"model_name": name, "model_kwargs": {"n_resblocks": 1, "n_feats": 8, **kwargs},
             "model": model.state_dict()}  # fmt: skip
    save_checkpoint(folder / "best" / "checkpoint.pt", state)


def _log_enhancer_run(uri: str, root: Path, sample: dict, name: str, gamma: float,
                      nima: Path, parent: str | None = None, model: str = "edsr_baseline",
                      scales: str = "[2]", psnr_key: str = "val_psnr_y") -> str:  # fmt: skip
    import nie_tracking as tracking
    from ray_jobs.config import EnhancerJobConfig

    cfg = load_config(EnhancerJobConfig, None, [
        f"data.root={sample['div2k']}", "data.cache_dir=null", f"model.name={model}",
        f"model.scales={scales}", f"loss.gamma={gamma}", f"loss.nima_checkpoint={nima}",
        f"run.storage_path={root}", f"run.name={name}",
    ])  # fmt: skip
    run_id = tracking.start_or_resume_run(
        uri, "nie-tune" if parent else "nie-enhancer", name, config_to_dict(cfg),
        root / name / "mlflow_run_id", parent_run_id=parent, tags={"nie.job": "enhancer"},
    )  # fmt: skip
    for epoch in (1, 2, 3):
        metrics = {"epoch": epoch, psnr_key: 20 + epoch - gamma, "train_loss": 1 / epoch,
                   "bicubic_psnr_y": 24.0, "val_nima_mean": 5 + gamma}  # fmt: skip
        if psnr_key != "val_psnr_y":
            metrics["val_psnr_y"] = 19 + epoch
        tracking.log_metrics(uri, run_id, metrics, step=10 * epoch)
    tracking.finish_run(uri, run_id)
    return run_id


def test_build_report_from_a_store(sample_data: dict, tmp_path: Path) -> None:
    import nie_tracking as tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = tmp_path / "runs"
    torch.manual_seed(9)
    nima = tmp_path / "nima.pt"
    scorer = create_model("nima", backbone="mnasnet0_5")
    save_checkpoint(nima, {"model_name": "nima", "model_kwargs": {"backbone": "mnasnet0_5"},
                           "model": scorer.state_dict()})  # fmt: skip
    _log_enhancer_run(uri, runs, sample_data, "edsr-l2", 0.0, nima)
    _save_tiny_enhancer(runs / "edsr-l2", "edsr_baseline", 1, scale=2)
    _log_enhancer_run(uri, runs, sample_data, "edsr-hybrid", 0.4, nima)
    _save_tiny_enhancer(runs / "edsr-hybrid", "edsr_baseline", 2, scale=2)
    _log_enhancer_run(uri, runs, sample_data, "mdsr-hybrid", 0.4, nima, model="mdsr_baseline",
                      scales="[2, 3]", psnr_key="val_psnr_y_x2")  # fmt: skip
    parent = tracking.start_or_resume_run(
        uri, "nie-tune", "sweep-a", {}, tmp_path / "sweep" / "mlflow_run_id",
        tags={"nie.job": "tune"},
    )  # fmt: skip
    for gamma in (0.0, 1.0):
        _log_enhancer_run(uri, runs / "trials", sample_data, f"trial-{gamma}", gamma, nima, parent)

    result = build_report(tmp_path / "report", uri, max_images=2, crop_size=32)

    assert result.tasks == ["sr"]
    assert set(result.figures) == {"psnr_by_gamma_sr", "training_by_epoch_sr", "outputs_sr"}
    for png in result.figures.values():
        assert png.read_bytes()[:8] == PNG_MAGIC
    md = result.markdown.read_text()
    for figure in ("Figure 4", "Figure 5", "Figure 6", "psnr_by_gamma_sr.png",
                   "training_by_epoch_sr.png", "outputs_sr.png"):  # fmt: skip
        assert figure in md
    assert "| edsr_baseline: sweep sweep-a | 1 | 3 | 22.00 |" in md
    assert "| mdsr-hybrid | mdsr_baseline x2/x3 | 0.4 | 3 | 22.60 (x2) |" in md
    # The assessment used the runs' best checkpoints and the scorer they were trained with.
    items = result.assessments["sr"]
    assert [a.image for a in items] == ["0801", "0802"]
    assert set(items[0].psnr_y) == {"bicubic", "baseline", "hybrid"}
    from nie_core.data.div2k import DIV2K
    from nie_core.inference import enhance

    lr, hr = DIV2K(sample_data["div2k"], split="valid", scale=2, augment=False,
                   full_image=True)[0]  # fmt: skip
    model = load_model(runs / "edsr-l2" / "best")
    expected = psnr_y(enhance(model, lr[None], fast=False), hr[None], shave=2).item()
    assert items[0].psnr_y["baseline"] == pytest.approx(expected, abs=1e-3)
    assert all(1.0 <= v <= 10.0 for v in items[0].nima_mean.values())


def test_nie_report_without_a_store_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    from nie_cli.main import main

    store = tmp_path / "none.db"
    status = main(["report", "--out", str(tmp_path / "r"), "--tracking-uri", f"sqlite:///{store}"])
    assert status == 2
    assert "no MLflow store" in capsys.readouterr().err
    assert not store.exists()
