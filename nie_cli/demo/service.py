"""The service ``nie demo`` ends with: the bundled service config with the demo's two models, its
scorer and MLflow store, and replicas small enough for a 2-core machine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nie_cli.demo.layout import SCORER, SCORER_BACKBONE

if TYPE_CHECKING:
    from nie_cli.demo.pipeline import DemoResult


def _model_source(result: Mapping[str, Any]) -> str:
    """The registered version (``models:/NAME/VERSION``) of a training result, else its best
    checkpoint folder."""
    if result.get("registered_name") and result.get("registered_version"):
        return f"models:/{result['registered_name']}/{result['registered_version']}"
    return str(result["checkpoint_dir"])


def demo_service_config(demo: DemoResult) -> Any:
    """The service config of the demo: ``serve_app/serve_config.yaml`` with the demo's two
    models and scorer, its MLflow store, and replicas small enough for a 2-core machine."""
    from serve_app.config import DEFAULT_SERVE_CONFIG, service_config_from_args

    small = {
        "num_cpus": 0.25,
        "min_replicas": 1,
        "max_replicas": 1,
        "graceful_shutdown_timeout_s": 2.0,  # Ctrl-C should not wait for idle replicas
    }
    models = [
        {"name": "edsr_x2_baseline", "label": "baseline",
         "source": _model_source(demo.stages["l2"].result)},
        {"name": "edsr_x2_hybrid", "label": "hybrid",
         "source": _model_source(demo.stages["hybrid"].result)},
    ]  # fmt: skip
    return service_config_from_args(
        {
            "config": str(DEFAULT_SERVE_CONFIG),
            "models": models,
            "scorer": {"source": SCORER, "backbone": SCORER_BACKBONE, "replicas": small},
            "ingress": small,
            "enhancer": {**small, "num_cpus": 0.5},
            "mlflow_tracking_uri": demo.layout.tracking_uri,
        }
    )


def start_demo_service(demo: DemoResult, host: str = "127.0.0.1", port: int = 8000) -> str:
    """Deploy the service with the demo's models on the connected Ray cluster; returns its URL
    once every deployment runs. Stop it with ``ray.serve.shutdown()``."""
    from serve_app.app import start_service

    return start_service(demo_service_config(demo), host=host, port=port)
