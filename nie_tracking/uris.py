"""Where MLflow data lives: the tracking URI NIE uses, its local SQLite file and artifact root."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORE = "mlflow.db"  # local SQLite store, in the working directory
SQLITE_PREFIX = "sqlite:///"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking URI to use: ``uri``, else ``$MLFLOW_TRACKING_URI``, else a local SQLite store.

    Relative SQLite paths are made absolute so that Ray workers (whose working directory differs
    from the driver's) write to the same store.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"{SQLITE_PREFIX}{DEFAULT_STORE}"
    if uri.startswith(SQLITE_PREFIX) and not uri.startswith(SQLITE_PREFIX + "/"):
        uri = SQLITE_PREFIX + str(Path(uri[len(SQLITE_PREFIX) :]).resolve())
    elif "://" not in uri:  # a plain folder: MLflow's file store
        uri = str(Path(uri).resolve())
    return uri


def sqlite_file(uri: str) -> Path | None:
    """The database file of a local SQLite store URI, else None."""
    return Path(uri[len(SQLITE_PREFIX) :]) if uri.startswith(SQLITE_PREFIX) else None


def missing_sqlite_store(uri: str) -> Path | None:
    """The file of a local SQLite store that does not exist yet, else None. Asking MLflow about
    such a store would create an empty one as a side effect, so readers check first."""
    path = sqlite_file(uri)
    return path if path is not None and not path.is_file() else None


def artifact_root(uri: str) -> str | None:
    """Where a local store keeps artifacts: beside the SQLite file (None: the server decides)."""
    path = sqlite_file(uri)
    return None if path is None else str(path.parent / "mlartifacts")


def client(uri: str):
    """An ``MlflowClient`` on ``uri`` (imported lazily: MLflow is slow to import)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)
