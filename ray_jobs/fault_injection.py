"""Failure injection for NIE's own fault-tolerance tests; not a user setting.

The tests pass :class:`Faults` to ``train_enhancer``/``train_nima``/``run_tune`` (keyword
``faults``); the driver hands them to the Train workers in the loop config, so the recipes and
the resolved configs saved beside checkpoints never carry them. A crash happens once per run (a
marker file in the run folder remembers it), so ``run.max_failures`` and reruns can be tested.
A pause holds every worker at a global step, once per run, so that a test can kill a node at a
point of the job it knows instead of at a time it guesses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MARKER_FILE = "injected_failure.done"  # in the run folder, once the crash has happened
PAUSE_FILE = "injected_pause.rank{rank}"  # in the run folder, once that rank has paused
PAUSE_LIMIT_S = 600.0  # a paused worker that nobody killed fails after this long
REMOVED = "failure injection is for NIE's tests only (ray_jobs.fault_injection.Faults)"


@dataclass(frozen=True)
class Faults:
    fail_after_step: int | None = None  # crash rank 0 once when its global step reaches this
    fail_first_trials: int = 0  # sweeps: the first N trials to start crash once (at the step
    # above, else at step 1), each with max_failures 0 so that Tune sees the error
    pause_at_step: int | None = None  # every rank waits at this global step, once per run,
    # until its process is killed (node-loss tests: the job's state at the kill is known)

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


def pause_once_at_step(
    rank: int, global_step: int, faults: Faults, run_folder: Path, limit_s: float = PAUSE_LIMIT_S
) -> None:
    """The first time ``global_step`` reaches ``faults.pause_at_step`` on ``rank`` in this run
    folder: write ``injected_pause.rank<rank>`` there (holding the step), then wait for the
    process to be killed, and raise ``RuntimeError`` if it still runs after ``limit_s``. Do
    nothing otherwise: the attempt that Ray Train starts after the kill goes on."""
    if faults.pause_at_step is None or global_step != faults.pause_at_step:
        return
    marker = run_folder / PAUSE_FILE.format(rank=rank)
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(str(global_step))
    tmp.replace(marker)  # whoever sees the marker sees the step in it
    time.sleep(limit_s)
    raise RuntimeError(
        f"injected pause at step {global_step} on rank {rank}: not killed within {limit_s} s"
    )


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
