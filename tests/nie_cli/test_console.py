"""The quiet terminal of `nie demo`: which lines a user sees, and that the log file keeps all.
The lines are copied from a real demo log (Ray 2.60, MLflow 3)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nie_cli.console import keep_on_terminal, log_to_file, verbose_requested

HIDDEN = [
    "\x1b[36m(TrainController pid=13794)\x1b[0m Requesting resources: {'CPU': 1.0} * 1",
    "\x1b[36m(TrainController pid=11)\x1b[0m Reporting training result 3: TrainingReport("
    "checkpoint=Checkpoint(filesystem=local, path=/tmp/x), metrics={'epoch': 1})",
    "\x1b[36m(TrainController pid=11)\x1b[0m [2026-11-30 04:47:30,225 E 13794 13990] "
    "core_worker.cc:2465: Actor with class name: 'PreemptionWatcher' and ID: '56' has ...",
    "(TrainController pid=11) Failed to query Ray Train Controller actor state: timeout",
    '(PlacementGroupCleaner pid=14315)   File "/x/ray/util/state/api.py", line 586',
    "(RayTrainWorker pid=14435) Setting up process group for: env:// [rank=0, world_size=1]",
    "2026/11/30 04:46:36 INFO mlflow.store.db.utils: Creating initial MLflow database tables...",
    "2026-11-30 04:46:29,020\tINFO worker.py:2029 -- Started a local Ray instance.",
    "2026-11-30 04:46:05,382\tWARNING authentication_token_setup.py:85 -- Token authentication "
    "is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out.",
    "  /x/ray/data/context.py:1307: DeprecationWarning: `use_arrow_tensor_v2` is deprecated.",
    "Trial status: 2 RUNNING",
    "\u2502 trial_5d114_00001   TERMINATED            0.4        1            56.2187 \u2502",
    "Trial trial_5d114_00000 started with configuration:",
    "\x1b[33m(raylet)\x1b[0m WARNING: 8 PYTHON worker processes have been started on node: c4",
    "Successfully registered model 'nie-edsr_baseline-x2-sr-l2'.",
]
SHOWN = [
    ("[demo] [3/6] EDSR-baseline x2, L2 loss -> runs/demo-l2", None),
    (
        "\x1b[36m(RayTrainWorker pid=14435)\x1b[0m [nie] epoch 1/2  train_loss 12.5  1.2 steps/s"
        "  ETA 5s",
        "[nie] epoch 1/2  train_loss 12.5  1.2 steps/s  ETA 5s",
    ),  # fmt: skip
    (
        "(RayTrainWorker pid=7) 2026-11-30 04:47:31,000\tWARNING nie.py:3 -- disk almost full",
        "(RayTrainWorker pid=7) 2026-11-30 04:47:31,000\tWARNING nie.py:3 -- disk almost full",
    ),
    ("Traceback (most recent call last):", None),  # the driver's own: always shown
    ("| hybrid | 33.20 ± 1.1 |", None),
]


@pytest.mark.parametrize("line", HIDDEN)
def test_noise_is_hidden(line: str) -> None:
    assert keep_on_terminal(line) is None


@pytest.mark.parametrize(("line", "shown"), SHOWN)
def test_what_a_user_acts_on_is_shown(line: str, shown: str | None) -> None:
    assert keep_on_terminal(line) == (shown if shown is not None else line)


def test_log_file_gets_every_line_and_terminal_the_kept_ones_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "runs" / "demo.log"
    with log_to_file(log, "nie demo", verbose=False):
        print("[demo] [1/6] data")
        sys.stderr.write(HIDDEN[0] + "\n")
        sys.stderr.write(SHOWN[1][0][:30])  # a line written in two pieces
        sys.stderr.write(SHOWN[1][0][30:] + "\n")
        sys.stderr.write(SHOWN[1][0] + "\n")  # Ray's second copy of the same line
        sys.stderr.write("\n\n\n")  # one blank line is enough
    out, err = capsys.readouterr()
    assert out == "[demo] [1/6] data\n"
    assert err == SHOWN[1][1] + "\n\n"
    text = log.read_text()
    assert "===== nie demo (" in text and HIDDEN[0] in text and text.count("[nie] epoch") == 2


def test_verbose_shows_everything(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("NIE_VERBOSE", "1")
    assert verbose_requested() and not verbose_requested.__defaults__[0]
    with log_to_file(tmp_path / "demo.log", "nie demo", verbose=verbose_requested()):
        sys.stderr.write(HIDDEN[0] + "\n")
    assert capsys.readouterr().err == HIDDEN[0] + "\n"
    monkeypatch.setenv("NIE_VERBOSE", "0")
    assert not verbose_requested() and verbose_requested(True)
