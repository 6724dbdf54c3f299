"""What a long command (``nie demo``) prints: a quiet terminal, and everything in a log file.

Ray forwards every worker's and actor's output to the driver: Ray Train's INFO lines
(``Reporting training result ... TrainingReport(...)`` once per checkpoint, the preemption
watcher, controller state queries), MLflow's database setup, deprecation warnings. On the
terminal, by default, only what a user acts on is shown: NIE's own lines (stage headers, one
line per epoch with its rate and ETA, where to look), warnings and errors that are not known
noise, and tracebacks. The log file receives every line, unfiltered. ``--verbose`` (or
``NIE_VERBOSE=1``) shows everything on the terminal too.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

__all__ = ["keep_on_terminal", "log_to_file", "verbose_requested"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# "(RayTrainWorker pid=123) " / "(TrainController pid=4, ip=10.0.0.2) ": Ray's prefix on
# forwarded lines.
_RAY_PREFIX = re.compile(r"^\((?P<who>[\w:.#-]+) pid=\d+(?:, ip=[\d.]+)?\)\s?")
_INFO_LINE = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(?:INFO|DEBUG)\b"  # Ray's Python logging
    r"|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (?:INFO|DEBUG)\b"  # MLflow's
    r"|(?:INFO|DEBUG) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \w+"  # Serve's
    r"|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [ID] \d+ \d+\])"  # Ray's C++ core
)
_NOISE = re.compile(
    "|".join(
        [
            r"Reporting training result",
            r"TrainingReport\(",
            r"PreemptionWatcher",
            r"Failed to query Ray Train Controller actor state",
            r"Requesting resources:",
            r"Attempting to start training worker group",
            r"Started training worker group",
            r"Setting up process group",
            r"Moving model to device",
            r"Wrapping provided model in DistributedDataParallel",
            r"Token authentication is enabled for this Ray cluster",
            r"DeprecationWarning|PydanticDeprecated|FutureWarning|warnings\.warn\(",
            r"Registry store URI not provided",
            r"Failed to send resource request",
            r"Creating initial MLflow database tables|Updating database tables",
            r"Context impl SQLiteImpl|Will assume non-transactional DDL",
            r"Running upgrade ",
            r"PYTHON worker processes have been started",
            r"Saving pytorch model by Pickle",
            r"^Successfully registered model|^Created version '\d+' of model",
            # Ray Tune's status report (NIE prints one line per trial epoch itself)
            r"^Trial status:|^Current time:|^Logical resource usage:|^Trial \S+ (?:started|completed)",
            r"^View detailed results here|^To visualize your results with TensorBoard",
            r"^[\u2500-\u257f]",  # box-drawing characters: Tune's trial tables
            r"Wrote the latest version of all result files",
        ]
    )
)


_TROUBLE = re.compile(r"\b(?:WARNING|ERROR|CRITICAL)\b|\bError:|Killed|OutOfMemory")


def verbose_requested(flag: bool = False) -> bool:
    """``--verbose`` or ``NIE_VERBOSE`` set to anything but ""/0/false/no."""
    env = os.environ.get("NIE_VERBOSE", "").strip().lower()
    return flag or env not in ("", "0", "false", "no", "off")


def keep_on_terminal(line: str) -> str | None:
    """The form of ``line`` (no newline) to show on a quiet terminal, or None to hide it."""
    plain = _ANSI.sub("", line)
    match = _RAY_PREFIX.match(plain)
    body = plain[match.end() :] if match else plain
    if not body.strip():
        return None if match else ""
    if _NOISE.search(body) or _INFO_LINE.match(body):
        return None
    if match:
        # A worker's or actor's line: NIE's own ([nie] epoch ...) and logged warnings/errors.
        # Their tracebacks stay in the file: a failing job raises in the driver, with its own.
        if body.startswith(("[nie]", "[demo]", "nie")):
            return body
        return plain if _TROUBLE.search(body) else None
    return line


class _FilteredTee(io.TextIOBase):
    """A text stream that writes everything to ``log`` and, line by line, what
    :func:`keep_on_terminal` keeps to ``terminal`` (everything when ``verbose``)."""

    def __init__(self, terminal: TextIO, log: TextIO, verbose: bool, lock: threading.Lock):
        self.terminal, self.log, self.verbose, self.lock = terminal, log, verbose, lock
        self.pending = ""
        self.last_shown: str | None = None

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.terminal.isatty()

    def fileno(self) -> int:  # faulthandler, subprocess: the real terminal
        return self.terminal.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.terminal, "encoding", "utf-8")

    def write(self, text: str) -> int:
        with self.lock:
            self.log.write(text)
            if self.verbose:
                self.terminal.write(text)
                return len(text)
            self.pending += text
            *lines, self.pending = self.pending.split("\n")
            for line in lines:
                shown = keep_on_terminal(line)
                # Ray forwards the same line again when a worker's and the driver's copies
                # of a stream meet; one copy in a row is enough.
                # (and one blank line where several come in a row).
                if shown is not None and shown != self.last_shown:
                    self.terminal.write(shown + "\n")
                    self.last_shown = shown if shown.strip() else ""
        return len(text)

    def flush(self) -> None:
        with self.lock:
            self.terminal.flush()
            self.log.flush()


@contextmanager
def log_to_file(path: Path, command: str, verbose: bool) -> Iterator[Path]:
    """Send this process's ``sys.stdout`` / ``sys.stderr`` to ``path`` (appended, every line)
    and, filtered unless ``verbose``, to the terminal, for the duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    when = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    log.write(f"\n===== {command} ({when}) =====\n")
    lock = threading.Lock()
    saved = sys.stdout, sys.stderr
    sys.stdout = _FilteredTee(saved[0], log, verbose, lock)
    sys.stderr = _FilteredTee(saved[1], log, verbose, lock)
    # Logging handlers made earlier (Ray's, on import) hold the old streams: point them here.
    moved = []
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream in saved:
                old = handler.setStream(sys.stderr if handler.stream is saved[1] else sys.stdout)
                moved.append((handler, old))
    try:
        yield path
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _FilteredTee) and stream.pending:
                stream.write("\n")
        for handler, old in moved:
            handler.setStream(old)
        sys.stdout, sys.stderr = saved
        log.close()
