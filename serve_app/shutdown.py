"""Stopping on Ctrl-C: the first one (SIGINT, or SIGTERM from ``kill`` / ``docker stop``) shuts
Serve and Ray down cleanly; a second one, while that runs, forces the exit at once.

``nie serve`` and the serving stage of ``nie demo`` wait in :func:`serve_until_interrupted`;
``nie_cli.interrupt`` uses the same pieces while jobs train.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["EXIT_INTERRUPTED", "force_exit", "say", "serve_until_interrupted", "stop_ray"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT: what shells report for a command ended by Ctrl-C
_STRAGGLER_GRACE_S = 10.0  # after ray.shutdown(), before the processes left are killed


def say(message: str) -> None:
    """One line on stderr, flushed (the user is waiting for it)."""
    print(message, file=sys.stderr, flush=True)


def raise_interrupt(signum: int, frame: object) -> None:
    """A signal handler that turns SIGTERM into the ``KeyboardInterrupt`` of a Ctrl-C."""
    raise KeyboardInterrupt


def descendants(pid: int) -> list[int]:
    """Every live process started by ``pid`` at any depth, read from ``/proc`` (Linux; an
    empty list elsewhere). Zombies are left out: they have ended."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def force_exit(signum: int, frame: object) -> None:
    """The second Ctrl-C: kill the processes of the Ray cluster this process started (if it
    started one) and anything else it started, without waiting; leave with status 130.

    Nothing here may wait on a lock: this handler runs on the main thread, which may be inside
    the first Ctrl-C's ``ray.shutdown()`` holding Ray's process-removal lock (calling Ray's own
    ``kill_all_processes`` from here deadlocked on it). So the processes are found by reading
    ``/proc`` and Ray's process table, and killed with plain signals."""
    say("nie: forced to stop")
    # Ray's workers and agents are its raylet's children: list everything before killing the
    # raylet, whose orphans would no longer be found under this process.
    started = descendants(os.getpid()) + _ray_node_pids()
    for pid in started + descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(EXIT_INTERRUPTED)


def _ray_node_pids() -> list[int]:
    """The pids in the process table of the Ray node this process started (empty when it
    started none), read without taking Ray's locks."""
    try:
        from ray._private import worker  # the connected node; Ray has no public handle to it

        node = getattr(worker, "_global_node", None)
        if node is None or not node.head:
            return []
        table = dict(getattr(node, "all_processes", {}) or {})
        return [
            info.process.pid
            for infos in table.values()
            for info in list(infos)
            if getattr(info, "process", None) is not None and info.process.pid
        ]
    except Exception:  # noqa: BLE001 - leaving is all that matters now
        return []


def arm_force_exit() -> None:
    """From now on a Ctrl-C or SIGTERM forces the exit (call when a clean stop has begun)."""
    signal.signal(signal.SIGINT, force_exit)
    signal.signal(signal.SIGTERM, force_exit)


def stop_ray() -> None:
    """Shut down Serve (when running) and disconnect from Ray; when this process started the
    cluster (embedded Ray) that ends its raylet, GCS, dashboard and worker processes."""
    import ray

    if not ray.is_initialized():
        return
    # An embedded cluster's processes (none for a remote one), with their start times so that
    # a pid reused meanwhile is never touched.
    started = {pid: _start_time(pid) for pid in descendants(os.getpid())}
    try:
        from ray import serve
        from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)  # ValueError: no Serve
        serve.shutdown()
    except Exception:  # noqa: BLE001 - Serve was not running, or went with its cluster
        pass
    ray.shutdown()
    # ray.shutdown() ends the processes it knows of; give stragglers (workers of the raylet it
    # stopped) a few seconds, then end them too.
    deadline = time.monotonic() + _STRAGGLER_GRACE_S

    def left() -> list[int]:
        return [pid for pid, start in started.items() if start and _start_time(pid) == start]

    while time.monotonic() < deadline and left():
        time.sleep(0.2)
    for pid in left():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), None once it has ended (zombie or
    gone): with the pid, what identifies a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else fields[19]


def serve_until_interrupted(what: str = "the service", on_stop: Callable[[], None] | None = None):
    """Block until Ctrl-C or SIGTERM, then stop Serve and Ray (a second Ctrl-C forces it).
    Call from the main thread."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        arm_force_exit()
        say(f"nie: stopping {what} (Ctrl-C again to force)")
        if on_stop is not None:
            on_stop()
        stop_ray()
