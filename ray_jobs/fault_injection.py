"""Failure injection for NIE's own fault-tolerance tests; not a user setting.

The tests pass :class:`Faults` to ``train_enhancer``/``train_nima``/``run_tune`` (keyword
``faults``); the driver hands them to the Train workers in the loop config, so the recipes and
the resolved configs saved beside checkpoints never carry them. A crash happens once per run (a
marker file in the run folder remembers it), so ``run.max_failures`` and reruns can be tested.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MARKER_FILE = "injected_failure.done"  # in the run folder, once the crash has happened
REMOVED = "failure injection is for NIE's tests only (ray_jobs.fault_injection.Faults)"


@dataclass(frozen=True)
class Faults:
    fail_after_step: int | None = None  # crash rank 0 once when its global step reaches this
    fail_first_trials: int = 0  # sweeps: the first N trials to start crash once (at the step
    # above, else at step 1), each with max_failures 0 so that Tune sees the error

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Faults:
        return cls(**dict(data or {}))


NO_FAULTS = Faults()


def crash_once_at_step(rank: int, global_step: int, faults: Faults, run_folder: Path) -> None:
    """Raise ``RuntimeError`` on rank 0 the first time ``global_step`` reaches
    ``faults.fail_after_step`` in this run folder; do nothing otherwise."""
    if faults.fail_after_step is None or rank != 0 or global_step != faults.fail_after_step:
        return
    marker = run_folder / MARKER_FILE
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(global_step))
    raise RuntimeError(f"injected worker failure at step {global_step} (fault injection)")


def trial_faults(faults: Faults, slots_folder: Path, trial_name: str) -> Faults:
    """The faults of one sweep trial: a crash if the trial holds one of the
    ``faults.fail_first_trials`` crash slots, else none."""
    if faults.fail_first_trials and _claims_slot(
        slots_folder, trial_name, faults.fail_first_trials
    ):
        return Faults(fail_after_step=faults.fail_after_step or 1)
    return NO_FAULTS


def _claims_slot(folder: Path, trial_name: str, slots: int) -> bool:
    """Whether ``trial_name`` holds one of ``slots`` crash slots (first come, first served; a
    slot file is created atomically and names its trial, so a retry keeps its slot)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(slots):
        slot = folder / f"slot_{i}"
        try:
            fd = os.open(slot, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if slot.read_text().strip() == trial_name:
                return True
            continue
        with os.fdopen(fd, "w") as f:
            f.write(trial_name)
        return True
    return False
