"""Ctrl-C while ``nie demo`` trains: stop cleanly, or at once on a second Ctrl-C.

The first Ctrl-C (or SIGTERM) marks the MLflow runs this process opened KILLED, shuts Serve and
the embedded Ray cluster down (ending every process they started) and raises
``KeyboardInterrupt``, which the ``nie`` command reports in one line with status 130. A second
Ctrl-C forces the exit (``serve_app.shutdown.force_exit``).

Why the work runs on a worker thread: Ray Train's ``TorchTrainer.fit`` and Ray Tune's
``Tuner.fit`` install SIGINT handlers of their own when called from the main thread, and leave
them installed when they return. After a demo that trained, Ctrl-C only asked a finished
trainer to abort, and the service kept answering. Called from another thread (as Tune calls
trainers) they install nothing, and the main thread's handling stays ours.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from serve_app.shutdown import arm_force_exit, raise_interrupt, say, stop_ray

__all__ = ["run_interruptible"]

T = TypeVar("T")
_JOIN_SECONDS = 20.0  # how long the stopped worker thread gets to return


def run_interruptible(work: Callable[[], T], what: str) -> T:
    """Run ``work()`` on a worker thread and return its result (or raise its exception) while
    the main thread waits for Ctrl-C. Call from the main thread, connected to Ray already
    (``ray.init`` refuses to set its own SIGTERM handling from other threads)."""
    import nie_tracking as tracking

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = exc

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    thread = threading.Thread(target=target, name="nie-work", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        arm_force_exit()
        say(f"nie: stopping {what} (Ctrl-C again to force)")
        for uri, run_id in tracking.end_open_runs("KILLED"):
            say(f"nie: MLflow run {run_id} marked KILLED ({uri})")
        stop_ray()
        thread.join(_JOIN_SECONDS)
        raise
    signal.signal(signal.SIGTERM, previous)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
