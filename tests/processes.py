"""A ``nie`` command run as a user runs it in a terminal: its own process group, output to a
file the test reads as it grows, Ctrl-C delivered to the whole group (as a terminal does).
Used by the Ctrl-C tests; every process the command started is tracked by pid."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def proc_stats() -> list[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process, from /proc."""
    stats = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        stats.append((int(entry.name), fields[0], int(fields[1]), int(fields[2])))
    return stats


def _children() -> dict[int, list[int]]:
    """Parent pid -> live child pids (zombies left out)."""
    tree: dict[int, list[int]] = {}
    for pid, state, ppid, _ in proc_stats():
        if state != "Z":
            tree.setdefault(ppid, []).append(pid)
    return tree


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie awaiting its parent counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class NieProcess:
    """``python -m nie_cli ARGS`` in a new session, stdout and stderr in one log file."""

    def __init__(
        self, args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT
    ):
        self.log = log
        env = {**os.environ, **(env or {})}
        env.pop("RAY_ADDRESS", None)  # an embedded Ray, as `make demo` starts
        env["PYTHONUNBUFFERED"] = "1"
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nie_cli", *args], cwd=cwd, env=env,
            stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match:
        """Block until the output matches ``pattern``; fail with the output's tail if the
        process exits or ``timeout_s`` passes first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"no {pattern!r} in the output:\n{self.output()[-4000:]}")

    def descendants(self) -> set[int]:
        """Every live process started by this one, at any depth."""
        tree, found, todo = _children(), set(), [self.proc.pid]
        while todo:
            for child in tree.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def ctrl_c(self) -> None:
        """SIGINT to the whole process group, as a terminal's Ctrl-C."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def stop(self) -> None:
        """End whatever is left of the group (a failed test must not leave processes)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self._out.close()


def wait_until_gone(pids: set[int], timeout_s: float) -> set[int]:
    """The pids still alive after waiting up to ``timeout_s`` for all of them to end."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = {p for p in pids if alive(p)}
        if not left:
            return set()
        time.sleep(0.5)
    return {p for p in pids if alive(p)}
