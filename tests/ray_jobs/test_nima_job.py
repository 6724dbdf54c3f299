"""The nima job on a real local Ray cluster (2 DDP workers) with a real MLflow store."""

from __future__ import annotations

import pytest
import torch

from nie_core.checkpoint import load_model
from nie_core.models.nima import NIMA

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_nima_trains_checkpoints_and_registers(trained_nima):
    from mlflow.tracking import MlflowClient

    cfg, result = trained_nima
    client = MlflowClient(result.tracking_uri)

    # The training EMD goes down over the epochs.
    history = [m.value for m in client.get_metric_history(result.mlflow_run_id, "train_emd")]
    assert len(history) == cfg.run.epochs
    assert history[-1] < history[0]

    # The checkpoint loads back into the nie_core model and scores an image.
    model = load_model(result.checkpoint_dir)
    assert isinstance(model, NIMA)
    probs = model(torch.rand(2, 3, 64, 80))
    assert torch.allclose(probs.sum(dim=1), torch.ones(2), atol=1e-5)

    # MLflow has the run with the resolved config as params and the validation metrics.
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.backbone"] == "mnasnet0_5"
    assert run.data.params["scaling.num_workers"] == "2"
    for key in ("val_emd", "val_lcc", "val_srcc", "val_accuracy", "images_per_s"):
        assert key in run.data.metrics, key
    assert 0.0 <= run.data.metrics["val_accuracy"] <= 1.0

    # The registered model is there under its predictable name.
    assert result.registered_name == "nie-nima-mnasnet0_5"
    version = client.get_model_version_by_alias(result.registered_name, "latest-run")
    assert version.run_id == result.mlflow_run_id
