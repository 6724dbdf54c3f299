from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nie_core.runtime import MODEL_PROCESS_ENV, keep_freed_memory

# Enhances a 256 x 256 image four times with edsr_baseline (the serving path), on the main thread
# or a worker thread; prints the minor page faults of the last three calls (the first one faults its memory in in any case).
_PROBE = """
import resource, sys, torch
from concurrent.futures import ThreadPoolExecutor
from nie_core.inference import enhance
from nie_core.models import create_model
from nie_core.runtime import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.manual_seed(0)
model = create_model("edsr_baseline", scale=2).eval()
image = torch.rand(1, 3, 256, 256)
# "thread": as in a Serve replica, the model runs on a worker thread, not the main one.
worker = ThreadPoolExecutor(1)
def run():
    if sys.argv[2] == "thread":
        return worker.submit(enhance, model, image, fast="auto").result()
    return enhance(model, image, fast="auto")
run()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    run()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, where: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, where],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_blocks_are_reused_without_page_faults() -> None:
    _, default_faults = _faults("default", "main")
    applied, kept_faults = _faults("keep", "main")
    assert applied == "True"
    # By default glibc unmaps the large activations (above its 32 MiB mmap threshold) on free
    # and faults them in again on every call: about 60,000 pages per call. Kept, they are
    # reused; the few thousand faults left are the heap still growing to its final size.
    assert default_faults > 100_000
    assert kept_faults < default_faults // 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_model_process_env_covers_worker_threads() -> None:
    # A worker thread gets an arena of its own; the environment the Serve replicas start with
    # (one arena, the thresholds raised) keeps its freed blocks too.
    _, default_faults = _faults("default", "thread")
    _, env_faults = _faults("default", "thread", MODEL_PROCESS_ENV)
    assert default_faults > 100_000
    assert env_faults < default_faults // 10


def test_bad_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold_bytes"):
        keep_freed_memory(0)
