"""nie_tracking.runs on a real MLflow store (SQLite): a Ctrl-C ends the runs this process
opened, their nested runs too, and the job's own error handling cannot overwrite that; a rerun
resumes its run, waiting out a store that fails for a while instead of forking the run."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from nie_tracking import runs as tracking
from tests.conftest import free_port


def test_end_open_runs_marks_open_runs_and_their_children_killed(
    tmp_path: Path, monkeypatch
) -> None:
    from mlflow.tracking import MlflowClient

    # This process's bookkeeping only: other tests here open runs of their own.
    monkeypatch.setattr(tracking, "_OPEN_RUNS", {})
    monkeypatch.setattr(tracking, "_ENDED_BY_INTERRUPT", set())

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = tracking.start_or_resume_run(uri, "nie-tune", "sweep", {"a": 1}, tmp_path / "p")
    # A trial's run, opened by another process (a Tune trial): nested, still RUNNING.
    client = MlflowClient(uri)
    exp = client.get_run(parent).info.experiment_id
    trial = client.create_run(exp, tags={"mlflow.parentRunId": parent}).info.run_id
    done = tracking.start_or_resume_run(uri, "nie-enhancer", "done", {"a": 2}, tmp_path / "d")
    tracking.finish_run(uri, done)

    assert tracking.end_open_runs("KILLED") == [(uri, parent)]
    assert client.get_run(parent).info.status == "KILLED"
    assert client.get_run(trial).info.status == "KILLED"
    assert client.get_run(done).info.status == "FINISHED"
    tracking.finish_run(uri, parent, status="FAILED")  # the interrupted job's except clause
    assert client.get_run(parent).info.status == "KILLED"
    assert tracking.end_open_runs("KILLED") == []


@pytest.fixture
def own_runs(monkeypatch) -> None:
    """This process's bookkeeping only: other tests here open runs of their own."""
    monkeypatch.setattr(tracking, "_OPEN_RUNS", {})
    monkeypatch.setattr(tracking, "_ENDED_BY_INTERRUPT", set())


def test_a_recorded_run_the_store_does_not_have_starts_a_new_run(tmp_path, own_runs) -> None:
    uri, id_file = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "run_id"
    id_file.write_text("0123456789abcdef0123456789abcdef")  # a store deleted since
    run_id = tracking.start_or_resume_run(uri, "nie-enhancer", "job", {"a": 1}, id_file)
    assert run_id != "0123456789abcdef0123456789abcdef" and id_file.read_text() == run_id


@pytest.mark.slow
def test_a_store_locked_for_a_while_is_waited_for_and_the_run_resumed(tmp_path, own_runs):
    """Issue 21 item 7: a transient error (here another process holding the SQLite store's
    write lock past MLflow's 20 s busy timeout) used to start a second run for the job."""
    from mlflow.tracking import MlflowClient

    db = tmp_path / "mlflow.db"
    uri, id_file = f"sqlite:///{db}", tmp_path / "run_id"
    first = tracking.start_or_resume_run(uri, "nie-enhancer", "job", {"a": 1}, id_file)
    tracking.finish_run(uri, first, status="FAILED")  # a crashed attempt

    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # no reader gets in until ROLLBACK
    # Past the first read's 20 s, within the retry that follows it.
    release = threading.Timer(24, holder.execute, ["ROLLBACK"])
    release.start()
    start = time.monotonic()
    try:
        again = tracking.start_or_resume_run(uri, "nie-enhancer", "job", {"a": 1}, id_file)
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - start > 20  # the store really failed at first
    assert again == first and id_file.read_text() == first
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("nie-enhancer").experiment_id
    assert [r.info.run_id for r in client.search_runs([experiment])] == [first]
    assert client.get_run(first).info.status == "RUNNING"


def test_an_unreachable_server_raises_after_retries_and_starts_no_run(
    tmp_path, own_runs, monkeypatch, capsys
) -> None:
    """Connection refused on every try (nothing listens on the port): a clear error, the
    recorded run id kept."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries: none
    monkeypatch.setattr(tracking, "RESUME_BACKOFF_S", 0.01)
    uri, id_file = f"http://127.0.0.1:{free_port()}", tmp_path / "run_id"
    id_file.write_text("0123456789abcdef0123456789abcdef")
    with pytest.raises(tracking.TrackingUnavailableError, match=(
        r"^could not read MLflow run 0123456789abcdef0123456789abcdef \(recorded in .*run_id\) "
        r"from http://127\.0\.0\.1:\d+ after 4 tries: .*Not starting a new run"
    )):  # fmt: skip
        tracking.start_or_resume_run(uri, "nie-enhancer", "job", {"a": 1}, id_file)
    assert id_file.read_text() == "0123456789abcdef0123456789abcdef"
    assert capsys.readouterr().err.count("could not read run") == 3  # the 3 retries, announced
