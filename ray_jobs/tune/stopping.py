"""ASHA early stopping that the trials carry out themselves, through decision files.

Tune stops a trial by ending its actor, which leaves the trial's Ray Train worker group and
placement group behind when Ray's state API is out of reach (a local Ray without dashboard,
several Ray instances on one machine): the CPUs stay taken and later trials wait forever. So
the scheduler (:class:`CooperativeASHA`, in the Tune driver) writes each decision to a file,
``decisions_dir/trial_<id>/epoch_<n>`` (``stop`` or ``continue``), and always tells Tune to
continue; the trial's :class:`ObjectiveReportCallback` (in its Train controller) waits for the
file after each report and, on ``stop``, leaves a marker in the trial's run folder and aborts
its own Train run gracefully, so the trial ends on its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from ..pareto import weighted_sum
from .objectives import OBJECTIVE_KEY

STOP_MARKER = "stopped_early"  # in a trial's run folder once ASHA stopped it
DECISION_TIMEOUT_S = 120.0  # how long a trial waits for ASHA's decision on a report


def name_of_trial(trial_id: str) -> str:
    """The name of a trial, also its folder in Tune's experiment, under the sweep's ``train``
    folder and under the decisions folder."""
    return f"trial_{trial_id}"


def _decision_file(folder: Path, epoch: Any) -> Path:
    return folder / f"epoch_{int(epoch)}"


class ObjectiveReportCallback(TuneReportCallback):
    """Ray Train callback of a trial: passes every report to Tune with the weighted objective
    added, and carries out ASHA's stop decisions itself (see :class:`CooperativeASHA`).

    ``decisions_dir`` is this trial's decisions folder (None: no ASHA); runs in the trial's
    Train controller; must be created inside the Tune trial.
    """

    def __init__(
        self, weights: Mapping[str, float], decisions_dir: str | None, stop_marker: str
    ) -> None:
        super().__init__()
        self.weights = dict(weights)
        self.decisions_dir = decisions_dir
        self.stop_marker = stop_marker
        self.stopping = False

    def after_report(self, run_context: Any, metrics: list[dict], checkpoint: Any) -> None:
        if self.stopping:  # an epoch that ended while the abort was on its way: not for Tune
            return
        first = dict(metrics[0])
        value = weighted_sum(first, self.weights)
        if value is not None:
            first[OBJECTIVE_KEY] = value
        super().after_report(run_context, [first, *metrics[1:]], checkpoint)
        if self.decisions_dir is None or first.get("epoch") is None:
            return
        decision = _wait_for_decision(_decision_file(Path(self.decisions_dir), first["epoch"]))
        if decision == "stop":
            self.stopping = True
            Path(self.stop_marker).write_text(str(first["epoch"]), encoding="utf-8")
            # The controller's own graceful abort (what Ctrl-C does to `nie train`): it shuts
            # the workers down and frees their placement group, then ends the controller.
            ray.get_runtime_context().current_actor.abort.remote()


def _wait_for_decision(path: Path, timeout_s: float = DECISION_TIMEOUT_S) -> str:
    """The scheduler's decision for one report, or "continue" if none comes in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        time.sleep(0.1)
    return "continue"


class CooperativeASHA(ASHAScheduler):
    """ASHA (Li et al. 2020) whose stop decisions the trials carry out themselves: each decision
    is written to ``decisions_dir/trial_<id>/epoch_<n>`` and Tune is told to continue (see the
    module docstring)."""

    def __init__(self, decisions_dir: str, max_t: int, **asha_kwargs: Any) -> None:
        super().__init__(max_t=max_t, stop_last_trials=False, **asha_kwargs)
        self.decisions_dir = decisions_dir
        self.last_epoch = max_t

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        epoch = result.get("epoch")
        if epoch is not None:
            folder = Path(self.decisions_dir) / name_of_trial(trial.trial_id)
            folder.mkdir(parents=True, exist_ok=True)
            # A trial at its last epoch has finished: ASHA's top rung only ranks it.
            stop = decision == TrialScheduler.STOP and epoch < self.last_epoch
            text = "stop" if stop else "continue"
            tmp = folder / f".epoch_{int(epoch)}.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, _decision_file(folder, epoch))
        return TrialScheduler.CONTINUE
