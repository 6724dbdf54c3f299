"""MLflow for NIE, below both the jobs and the service: tracking URIs, runs, the model registry,
and loading a model from a checkpoint, the zoo or the registry.

``nie_tracking`` imports ``nie_core`` and MLflow (lazily), never Ray or the web stack, so the
training jobs (``ray_jobs``) and the service (``serve_app``) share it without importing each
other. The job-facing functions are re-exported here (``import nie_tracking as tracking``).
"""

from nie_tracking.registry import log_and_register_model
from nie_tracking.runs import (
    end_open_runs,
    finish_run,
    flatten,
    get_or_create_experiment,
    log_metrics,
    start_or_resume_run,
)
from nie_tracking.uris import (
    DEFAULT_STORE,
    client,
    missing_sqlite_store,
    resolve_tracking_uri,
    sqlite_file,
)

__all__ = [
    "DEFAULT_STORE",
    "client",
    "end_open_runs",
    "finish_run",
    "flatten",
    "get_or_create_experiment",
    "log_and_register_model",
    "log_metrics",
    "missing_sqlite_store",
    "resolve_tracking_uri",
    "sqlite_file",
    "start_or_resume_run",
]
