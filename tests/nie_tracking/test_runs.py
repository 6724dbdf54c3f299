"""nie_tracking.runs on a real MLflow store (SQLite): a Ctrl-C ends the runs this process
opened, their nested runs too, and the job's own error handling cannot overwrite that."""

from __future__ import annotations

from pathlib import Path

from nie_tracking import runs as tracking


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
