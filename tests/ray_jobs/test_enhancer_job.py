"""The enhancer job on a real local Ray cluster (2 DDP workers) with real MLflow stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from nie_core.checkpoint import load_checkpoint, load_model
from nie_core.models.edsr import EDSR
from ray_jobs.fault_injection import Faults

from .conftest import tiny_enhancer

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 (SQLite backend, proxied artifacts)."""
    from tests.conftest import free_port

    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    cmd = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", f"sqlite:///{tmp / 'server.db'}",
        "--artifacts-destination", str(tmp / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = open(tmp / "server.log", "wb")
    # MLflow 3's server also starts a job runner and six task-queue consumers (GenAI jobs) that
    # tracking and the registry do not use; on 2 cores they delayed start-up by minutes.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240  # a busy 2-core machine needs minutes for its workers
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)  # a server that did not come up must not linger
            raise RuntimeError((tmp / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    log.close()


def test_hybrid_ddp_run_logged_to_mlflow_server(
    ray_cluster, sample_data, trained_nima, mlflow_server, tmp_path
):
    """Two DDP workers, the hybrid loss with the nima job's scorer, tracked on a server."""
    import mlflow.pytorch
    from mlflow.tracking import MlflowClient

    from ray_jobs.enhancer import train_enhancer

    _, nima = trained_nima
    cfg = tiny_enhancer(
        sample_data, tmp_path, mlflow_server,
        "loss.gamma=0.4", f"loss.nima_checkpoint={nima.checkpoint_dir}", "run.epochs=3",
        "run.validate_every_steps=2",  # mid-epoch validation under DDP (it used to raise)
    )  # fmt: skip
    result = train_enhancer(cfg)
    client = MlflowClient(mlflow_server)

    # The loss decreases.
    loss = [m.value for m in client.get_metric_history(result.mlflow_run_id, "train_loss")]
    assert len(loss) == 3 and loss[-1] < loss[0]

    # The run carries the config, the validation metrics (model and bicubic) and image grids.
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["loss.gamma"] == "0.4"
    assert run.data.params["model.name"] == "edsr_baseline"
    for key in ("val_psnr_y", "val_psnr_rgb", "val_ssim_y", "val_nima_mean", "bicubic_psnr_y",
                "bicubic_nima_mean", "train_aesthetic_loss", "patches_per_s"):  # fmt: skip
        assert key in run.data.metrics, key
    assert 1.0 <= run.data.metrics["val_nima_mean"] <= 10.0
    grids = [f.path for f in client.list_artifacts(result.mlflow_run_id, "validation")]
    assert len(grids) == 3 and all(p.endswith(".png") for p in grids)

    # The best checkpoint loads back into the nie_core model, with its config beside it.
    model = load_model(result.checkpoint_dir)
    assert isinstance(model, EDSR) and model.scale == 2
    assert (Path(result.checkpoint_dir) / "config.yaml").is_file()
    assert load_checkpoint(Path(result.checkpoint_dir) / "checkpoint.pt")["epoch"] >= 1

    # Registered under the predictable name; loads by alias and by latest, any batch and size.
    assert result.registered_name == "nie-edsr_baseline-x2-sr-hybrid"
    for uri in (f"models:/{result.registered_name}@latest-run",
                f"models:/{result.registered_name}/latest"):  # fmt: skip
        mlflow.set_tracking_uri(mlflow_server)
        loaded = mlflow.pytorch.load_model(uri)
        with torch.no_grad():
            assert loaded(torch.rand(2, 3, 20, 28)).shape == (2, 3, 40, 56)
            assert loaded(torch.rand(1, 3, 17, 9)).shape == (1, 3, 34, 18)


def test_worker_crash_resumes_from_checkpoint_and_rerun_resumes(
    ray_cluster, sample_data, mlflow_uri, tmp_path
):
    """A worker crashes once after the first checkpoint; max_failures=1 carries the run on from
    that checkpoint (not from step 0). Rerunning the finished run with more epochs resumes it."""
    from mlflow.tracking import MlflowClient

    from ray_jobs.enhancer import train_enhancer

    steps = 2
    cfg = tiny_enhancer(
        sample_data, tmp_path, mlflow_uri, "run.name=crashy", f"run.steps_per_epoch={steps}",
        "run.epochs=3", "run.max_failures=1",
        "tracking.register=false",
    )  # fmt: skip
    result = train_enhancer(cfg, faults=Faults(fail_after_step=steps + 1))
    assert (tmp_path / "runs" / "crashy" / "injected_failure.done").exists()
    assert result.metrics["global_step"] == 3 * steps
    # The attempt that finished started from the epoch-1 checkpoint.
    assert result.metrics["resumed_from_step"] == steps
    client = MlflowClient(mlflow_uri)
    resumed = client.get_metric_history(result.mlflow_run_id, "resumed_from_step")
    assert [m.value for m in resumed] == [0, steps, steps]
    # An L2 run has no aesthetic term to log: a logged 0 would read as a perfect score.
    assert "train_aesthetic_loss" not in client.get_run(result.mlflow_run_id).data.metrics

    # Same command, same name, one more epoch: continues the same MLflow run from step 6.
    again = train_enhancer(tiny_enhancer(
        sample_data, tmp_path, mlflow_uri, "run.name=crashy", f"run.steps_per_epoch={steps}",
        "run.epochs=4", "tracking.register=false",
    ))  # fmt: skip
    assert again.mlflow_run_id == result.mlflow_run_id
    assert again.metrics["resumed_from_step"] == 3 * steps
    assert again.metrics["global_step"] == 4 * steps


def _changed(before: dict, after: dict, prefix: str) -> bool:
    keys = [k for k in before if k.startswith(prefix)]
    assert keys, prefix
    return any(not torch.equal(before[k], after[k]) for k in keys)


def test_mdsr_hybrid_fast_path_trains_every_scale(ray_cluster, sample_data, mlflow_uri, tmp_path):
    """MDSR x2/x3/x4 on 2 DDP workers with the hybrid loss under bf16 autocast (fast path): the
    schedule gives every scale a step, so every scale's pre-processing and upsampler moves,
    validation reports every scale, and the aesthetic term is logged and finite."""
    from mlflow.tracking import MlflowClient

    from nie_core.checkpoint import save_checkpoint
    from nie_core.models import create_model
    from ray_jobs.enhancer import model_kwargs, train_enhancer

    extra = ["model.name=mdsr_baseline", "model.scales=[2, 3, 4]", "run.epochs=1",
             "run.steps_per_epoch=3", "run.fast=on", "loss.gamma=0.4",
             "loss.allow_untrained_nima=true", "loss.nima_backbone=mnasnet0_5",
             "tracking.register=false", "data.max_valid_images=1"]  # fmt: skip
    cfg = tiny_enhancer(sample_data, tmp_path, mlflow_uri, *extra)
    torch.manual_seed(0)
    start = create_model("mdsr_baseline", **model_kwargs(cfg))
    init = tmp_path / "init.pt"
    save_checkpoint(init, {"model_name": "mdsr_baseline", "model_kwargs": model_kwargs(cfg),
                           "model": start.state_dict()})  # fmt: skip
    result = train_enhancer(tiny_enhancer(sample_data, tmp_path, mlflow_uri, *extra,
                                          f"model.weights={init}"))  # fmt: skip

    before = start.state_dict()
    after = load_model(result.checkpoint_dir).state_dict()
    for i in range(3):  # one branch per scale, in the order of model.scales
        assert _changed(before, after, f"pre_process.{i}."), f"scale branch {i} never trained"
        assert _changed(before, after, f"upsample.{i}."), f"upsampler {i} never trained"
    run = MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    for s in (2, 3, 4):
        assert f"val_psnr_y_x{s}" in run.data.metrics and f"bicubic_psnr_y_x{s}" in run.data.metrics
    assert run.data.params["run.fast"] == "on"
    aesthetic = run.data.metrics["train_aesthetic_loss"]  # 10 - mean score, mean in [1, 10]
    assert 0.0 <= aesthetic <= 9.0


def test_deblur_job_restores_same_size_images(ray_cluster, sample_data, mlflow_uri, tmp_path):
    """The deblurring task: scale 1, blurred inputs; the model keeps the image size, is
    compared with the blurred input, and registers under a ``-deblur-`` name."""
    from mlflow.tracking import MlflowClient

    from ray_jobs.enhancer import train_enhancer

    cfg = tiny_enhancer(
        sample_data, tmp_path, mlflow_uri, "data.task=deblur", "model.scales=[1]",
        "run.epochs=2", "run.steps_per_epoch=3", "data.max_valid_images=1", "run.fast=off",
    )  # fmt: skip
    result = train_enhancer(cfg)
    assert result.registered_name == "nie-edsr_baseline-x1-deblur-l2"
    model = load_model(result.checkpoint_dir)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 20, 28)).shape == (1, 3, 20, 28)
    client = MlflowClient(mlflow_uri)
    loss = [m.value for m in client.get_metric_history(result.mlflow_run_id, "train_loss")]
    assert len(loss) == 2 and loss[-1] < loss[0]
    metrics = client.get_run(result.mlflow_run_id).data.metrics
    assert metrics["bicubic_psnr_y"] > 10.0 and metrics["val_psnr_y"] > 10.0
