"""A resumable demo stage: run a training job once, reuse its finished result while its config
(and what it builds on) is unchanged, resume it after an interruption, restart it when changed."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER_FILE = "demo_stage.json"


@dataclass(frozen=True)
class StageResult:
    """One training stage: its folder, whether it was reused, and what the job returned."""

    name: str
    folder: str
    config_hash: str
    reused: bool
    seconds: float  # time spent in this call (0 when reused)
    result: dict[str, Any]  # TrainResult / TuneResult fields, JSON-ready
    trained_seconds: float = 0.0  # how long its training took, in whichever call ran it


def config_hash(config: Mapping[str, Any], upstream: Sequence[str] = ()) -> str:
    """16 hex digits of SHA-256 over the resolved config and the hashes of the stages it uses."""
    text = json.dumps({"config": config, "upstream": list(upstream)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_marker(folder: Path, marker: Mapping[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MARKER_FILE + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1, default=str), encoding="utf-8")
    tmp.replace(folder / MARKER_FILE)


def run_stage(
    name: str,
    folder: Path,
    config: Mapping[str, Any],
    done_file: str,
    train: Callable[[], Mapping[str, Any]],
    upstream: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> StageResult:
    """Run one stage unless ``folder`` already holds its finished result.

    Reused when the marker in ``folder`` has the same :func:`config_hash` and says finished, and
    ``folder/done_file`` exists. A folder written with other settings (or by something else) is
    removed first; one left by an interrupted attempt with the same settings is kept, so the job
    resumes from its latest checkpoint.
    """
    digest = config_hash(config, upstream)
    marker = _read_marker(folder)
    same = marker is not None and marker.get("config_hash") == digest
    if same and marker.get("finished") and (folder / done_file).exists():
        log(f"{name}: reusing the finished run in {folder}")
        return StageResult(name, str(folder), digest, True, 0.0, dict(marker.get("result") or {}),
                           float(marker.get("seconds") or 0.0))  # fmt: skip
    if folder.exists() and not same:
        log(f"{name}: {folder} was written with other settings; starting afresh")
        shutil.rmtree(folder)
    elif same:
        log(f"{name}: resuming the unfinished run in {folder}")
    _write_marker(folder, {"config_hash": digest, "finished": False})
    start = time.monotonic()
    result = json.loads(json.dumps(dict(train()), default=str))
    seconds = time.monotonic() - start
    _write_marker(folder, {"config_hash": digest, "finished": True, "result": result,
                           "seconds": seconds})  # fmt: skip
    return StageResult(name, str(folder), digest, False, seconds, result, seconds)
