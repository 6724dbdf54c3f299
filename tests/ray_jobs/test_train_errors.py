"""Bad input ends `nie train` with exit status 2 and one line, before any Ray worker starts."""

from __future__ import annotations

from pathlib import Path

from nie_cli.main import main
from nie_core.checkpoint import save_checkpoint
from nie_core.models import create_model


def run_train(capsys, *args: str) -> tuple[int, str]:
    status = main(["train", *args])
    err = capsys.readouterr().err.strip().splitlines()
    return status, err[-1] if err else ""


def test_missing_dataset_path(capsys, tmp_path):
    status, line = run_train(capsys, "enhancer", f"data.root={tmp_path / 'nope'}")
    assert status == 2
    assert "nope" in line and "does not exist" in line


def test_empty_dataset(capsys, tmp_path):
    (tmp_path / "DIV2K_train_HR").mkdir()
    status, line = run_train(capsys, "enhancer", f"data.root={tmp_path}")
    assert status == 2 and "no .png images" in line


def test_unknown_model(capsys, sample_data):
    status, line = run_train(capsys, "enhancer", f"data.root={sample_data['div2k']}",
                             "model.name=srgan")  # fmt: skip
    assert status == 2 and "model.name" in line and "srgan" in line


def test_unknown_key_and_wrong_type(capsys, sample_data):
    status, line = run_train(capsys, "enhancer", "loss.gama=0.4")
    assert status == 2 and "loss.gama" in line
    status, line = run_train(capsys, "nima", "run.epochs=many")
    assert status == 2 and "run.epochs" in line


def test_unknown_nima_backbone(capsys, sample_data):
    status, line = run_train(capsys, "nima", f"data.root={sample_data['ava']}",
                             "model.backbone=resnet9000")  # fmt: skip
    assert status == 2 and "resnet9000" in line


def test_hybrid_without_scorer(capsys, sample_data):
    status, line = run_train(capsys, "enhancer", f"data.root={sample_data['div2k']}",
                             "loss.gamma=0.4")  # fmt: skip
    assert status == 2 and "nima_checkpoint" in line


def test_non_positive_pixel_range(capsys, sample_data):
    status, line = run_train(capsys, "enhancer", f"data.root={sample_data['div2k']}",
                             "loss.pixel_range=0")  # fmt: skip
    assert status == 2 and "loss.pixel_range" in line


def test_nima_checkpoint_of_another_architecture(capsys, sample_data, tmp_path: Path):
    # An EDSR checkpoint passed as the scorer.
    edsr = create_model("edsr_baseline", scale=2, n_resblocks=1, n_feats=8)
    bad = tmp_path / "edsr.pt"
    save_checkpoint(bad, {"model_name": "edsr_baseline",
                          "model_kwargs": {"scale": 2, "n_resblocks": 1, "n_feats": 8},
                          "model": edsr.state_dict()})  # fmt: skip
    status, line = run_train(capsys, "enhancer", f"data.root={sample_data['div2k']}",
                             "loss.gamma=0.4", f"loss.nima_checkpoint={bad}")  # fmt: skip
    assert status == 2 and "not nima" in line

    # A NIMA checkpoint whose weights belong to another backbone than it claims.
    small = create_model("nima", backbone="mnasnet0_5")
    lying = tmp_path / "nima.pt"
    save_checkpoint(lying, {"model_name": "nima", "model_kwargs": {"backbone": "mnasnet1_0"},
                            "model": small.state_dict()})  # fmt: skip
    status, line = run_train(capsys, "enhancer", f"data.root={sample_data['div2k']}",
                             "loss.gamma=0.4", f"loss.nima_checkpoint={lying}")  # fmt: skip
    assert status == 2 and "do not fit" in line


def test_overrides_may_follow_the_config_option(capsys, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("run:\n  epochs: 1\n")
    status, line = run_train(capsys, "enhancer", "--config", str(recipe),
                             f"data.root={tmp_path / 'nope'}")  # fmt: skip
    assert status == 2 and "nope" in line  # the override was applied, not rejected


def test_unreachable_ray_marks_the_mlflow_run_failed(sample_data, tmp_path: Path):
    """The MLflow run is opened before Ray is reached; when ``ray.init`` fails the run must end
    FAILED, not stay RUNNING. Own process: this one may already be connected to Ray."""
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:notaport"}  # ray.init rejects it at once
    completed = subprocess.run(
        [sys.executable, "-m", "nie_cli", "train", "enhancer",
         f"data.root={sample_data['div2k']}", f"tracking.tracking_uri={uri}",
         f"run.storage_path={tmp_path / 'runs'}", "run.name=no-ray"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "notaport" in completed.stderr.strip().splitlines()[-1]
    runs = MlflowClient(uri).search_runs(
        [e.experiment_id for e in MlflowClient(uri).search_experiments()]
    )
    assert [r.info.status for r in runs] == ["FAILED"]
