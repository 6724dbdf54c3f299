"""Logging a trained model to its MLflow run and registering it under a name and alias.

Models are logged in MLflow's ``pickle`` format: the default ``pt2`` (torch.export) format
specialises the graph to the input example's shape, and an enhancer must take any batch and
image size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nie_tracking.uris import client


def log_and_register_model(
    uri: str,
    run_id: str,
    model: Any,
    registered_name: str | None,
    alias: str | None = None,
    input_example: Any = None,
) -> str | None:
    """Log ``model`` (an ``nn.Module``) to the run and register it; returns the new version.

    Logged with ``serialization_format="pickle"`` so the loaded model takes any batch and image
    size; ``nie_core`` is packed as code so the model loads where the package is not installed.
    """
    import mlflow
    import mlflow.pytorch

    import nie_core

    mlflow.set_tracking_uri(uri)
    code_path = str(Path(nie_core.__file__).parent)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            serialization_format="pickle",
            code_paths=[code_path],
            registered_model_name=registered_name,
            input_example=input_example,
        )
    if registered_name is None:
        return None
    version = str(info.registered_model_version)
    if alias:
        client(uri).set_registered_model_alias(registered_name, alias, version)
    return version
