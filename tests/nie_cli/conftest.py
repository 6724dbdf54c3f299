"""Helpers of the command-line tests: an MLflow store that does not exist, and the one-line
error check."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def isolated_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No MLflow store (so the bundled config's models fall back to the zoo), no tracebacks."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}")
    monkeypatch.delenv("NIE_DEBUG", raising=False)


def one_error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The single stderr line of a failed ``nie COMMAND``, checked to be an error line."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"nie {command}: error: ")
    return err[0]
