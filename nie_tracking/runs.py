"""MLflow runs for the jobs: one run per job, nested runs for sweeps, resumable, and ended as
KILLED by a Ctrl-C.

The driver creates the run (so its id survives worker restarts and reruns), rank 0 of the Train
workers logs metrics and images into it, and the driver logs and registers the final model
(:mod:`nie_tracking.registry`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nie_tracking.uris import artifact_root, client


def get_or_create_experiment(uri: str, name: str) -> str:
    """The id of experiment ``name``, created (with a local artifact root) if missing."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = artifact_root(uri)
    location = None if root is None else Path(root, name).as_uri()
    return c.create_experiment(name, artifact_location=location)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``: the config as MLflow params."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)[:6000]  # MLflow's param value limit
    return out


# Runs this process started or reopened and has not ended (run id -> tracking URI), so that a
# Ctrl-C can mark them KILLED (``end_open_runs``) instead of leaving them RUNNING; runs it
# ended stay ended when the interrupted job's own error handling reports them later.
_OPEN_RUNS: dict[str, str] = {}
_ENDED_BY_INTERRUPT: set[str] = set()


class TrackingUnavailableError(RuntimeError):
    """The tracking store could not say whether a recorded run exists (it is unreachable or
    failing): the job stops rather than start a second run for the same job."""


# Reading the recorded run: tries, and the wait before the first retry (doubled each time).
RESUME_TRIES = 4
RESUME_BACKOFF_S = 1.0

# MLflow error codes of a store that failed rather than answered (retried).
_TRANSIENT_CODES = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}
)


def _is_transient(error: Exception) -> bool:
    """Whether ``error`` is a failing or unreachable store (connection refused, a 5xx, a
    locked database) rather than an answer about the run."""
    from mlflow.exceptions import MlflowException

    if not isinstance(error, MlflowException):
        return True  # e.g. a connection error the client did not wrap
    status = error.get_http_status_code()
    return error.error_code in _TRANSIENT_CODES or status >= 500 or status == 429


def _recorded_run(c: Any, uri: str, run_id: str, run_id_file: Path) -> Any | None:
    """The run ``run_id`` recorded in ``run_id_file``, or None when the store says it does not
    exist (the store was deleted or moved: the job starts afresh).

    A transient error is retried ``RESUME_TRIES`` times with exponential backoff, then raises
    :class:`TrackingUnavailableError`, as does any other error: starting a new run then would
    silently fork the job's history into two runs.
    """
    import time

    from mlflow.exceptions import MlflowException

    delay, attempt = RESUME_BACKOFF_S, 1
    while True:
        try:
            return c.get_run(run_id)
        except Exception as error:  # noqa: BLE001 - classified below
            if isinstance(error, MlflowException) and error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            transient = _is_transient(error)
            if not transient or attempt == RESUME_TRIES:
                tries = f" after {attempt} tries" if transient else ""
                raise TrackingUnavailableError(
                    f"could not read MLflow run {run_id} (recorded in {run_id_file}) from {uri}"
                    f"{tries}: {_first_line(error)}. Not starting a new run, which would split "
                    f"this job's history in two: rerun when the tracking store answers, or "
                    f"delete {run_id_file} to start a new run on purpose"
                ) from error
            print(f"nie: MLflow at {uri} could not read run {run_id} (try {attempt} of "
                  f"{RESUME_TRIES}; again in {delay:g} s): {_first_line(error)}",
                  file=sys.stderr)  # fmt: skip
            time.sleep(delay)
            delay, attempt = delay * 2, attempt + 1


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def start_or_resume_run(
    uri: str,
    experiment: str,
    run_name: str,
    config: Mapping[str, Any],
    run_id_file: Path,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Create the job's MLflow run, or reopen the one recorded in ``run_id_file`` (resume).

    The resolved config becomes the run's params. On resume, params that changed since the first
    attempt cannot be overwritten (MLflow forbids it); they are kept and a tag lists them.
    A recorded run the store does not have starts a new run; a store that fails to answer
    (unreachable, 5xx, locked) is retried, then raises :class:`TrackingUnavailableError`.
    """
    from mlflow.entities import Param, RunStatus

    c = client(uri)
    params = flatten(config)
    if run_id_file.exists():
        run_id = run_id_file.read_text().strip()
        run = _recorded_run(c, uri, run_id, run_id_file) if run_id else None
        if run is not None:
            c.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            old = run.data.params
            new = [Param(k, v) for k, v in params.items() if k not in old]
            changed = sorted(k for k, v in params.items() if k in old and old[k] != v)
            if new:
                c.log_batch(run_id, params=new)
            if changed:
                c.set_tag(run_id, "nie.changed_on_resume", ",".join(changed)[:5000])
            _OPEN_RUNS[run_id] = uri
            return run_id
    exp_id = get_or_create_experiment(uri, experiment)
    all_tags = dict(tags or {})
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = c.create_run(exp_id, run_name=run_name, tags=all_tags)
    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), 100):  # MLflow's batch limit is 100 params
        c.log_batch(run.info.run_id, params=items[i : i + 100])
    run_id_file.parent.mkdir(parents=True, exist_ok=True)
    run_id_file.write_text(run.info.run_id)
    _OPEN_RUNS[run.info.run_id] = uri
    return run.info.run_id


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float], step: int) -> None:
    """Log numeric metrics at ``step`` (non-numbers are skipped)."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [
        Metric(k, float(v), now, step)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    if items:
        client(uri).log_batch(run_id, metrics=items)


def finish_run(uri: str, run_id: str, status: str = "FINISHED") -> None:
    """Mark the run ``FINISHED`` (or ``FAILED``/``KILLED``); a run already ended by a Ctrl-C
    (:func:`end_open_runs`) keeps that status."""
    if run_id in _ENDED_BY_INTERRUPT:
        return
    client(uri).set_terminated(run_id, status=status)
    _OPEN_RUNS.pop(run_id, None)


def end_open_runs(status: str = "KILLED") -> list[tuple[str, str]]:
    """End every run this process opened and has not finished, and their nested runs still
    RUNNING (sweep trials, whose processes a Ctrl-C ends without a word), with ``status``.
    Returns the (tracking URI, run id) pairs of the runs opened here."""
    ended = []
    for run_id, uri in list(_OPEN_RUNS.items()):
        _ENDED_BY_INTERRUPT.add(run_id)
        _OPEN_RUNS.pop(run_id, None)
        try:
            c = client(uri)
            run = c.get_run(run_id)
            children = c.search_runs(
                [run.info.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{run_id}' and status = 'RUNNING'",
            )
            for child in children:
                c.set_terminated(child.info.run_id, status=status)
            c.set_terminated(run_id, status=status)
        except Exception as exc:  # noqa: BLE001 - the store may be gone; stopping goes on
            print(f"nie: could not mark MLflow run {run_id} {status}: {exc}", file=sys.stderr)
            continue
        ended.append((uri, run_id))
    return ended
