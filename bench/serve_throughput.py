"""The serving benchmark's throughput measurement: ``POST /v1/score`` (and the Scorer's handle)
under :data:`~bench.serve_service.CLIENTS` concurrent clients, batched app against unbatched, with
the CPU time each image costs the machine, the clients and the Scorer replica; and NIMA's own
images/s at batch 16 against batch 1 in process, on the replica's one thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.machine import threads
from bench.serve_service import CLIENTS
from bench.timing import time_interleaved

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_seconds() -> float:
    """CPU seconds all cores have spent on user, nice, system, irq and softirq work since boot
    (``/proc/stat``; time stolen by the hypervisor and idle/iowait excluded). NaN off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / _CLOCK_TICKS


def _process_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), NaN if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass
class ThroughputRound:
    """One round of concurrent calls: images/s and CPU seconds spent per image by the whole
    machine, by this process (the clients) and by the Scorer replica."""

    images_per_s: float
    machine_cpu_s: float
    client_cpu_s: float
    scorer_cpu_s: float


@dataclass
class Throughput:
    """The rounds of each way of scoring (``http_batched``, ``handle_unbatched``, ...), the
    largest batch the batched Scorer saw, and how many requests each round sent."""

    rounds: dict[str, list[ThroughputRound]]
    largest_batch: int
    requests: int


def _concurrent_throughput(call, requests: int, scorer_pid: int | None = None) -> ThroughputRound:
    """``requests`` calls of ``call()`` from ``CLIENTS`` threads, with the CPU they cost."""
    per_client = [requests // CLIENTS + (i < requests % CLIENTS) for i in range(CLIENTS)]

    def client_loop(count: int) -> None:
        for _ in range(count):
            call()

    scorer_before = _process_seconds(scorer_pid) if scorer_pid else float("nan")
    machine_before, client_before = _machine_busy_seconds(), time.process_time()
    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client_loop, per_client))
    seconds = time.perf_counter() - start
    machine = _machine_busy_seconds() - machine_before
    client = time.process_time() - client_before
    scorer = (_process_seconds(scorer_pid) if scorer_pid else float("nan")) - scorer_before
    return ThroughputRound(
        requests / seconds, machine / requests, client / requests, scorer / requests
    )


def _http_scorer(url: str, png: bytes) -> Callable[[], None]:
    """A ``call`` posting ``png`` to ``url``/v1/score, one HTTP connection per thread."""
    import httpx

    local = threading.local()

    def call() -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120)
        local.client.post(f"{url}/v1/score", files={"image": ("x.png", png)}).raise_for_status()

    return call


def model_batch_rates(image: np.ndarray, repeats: int) -> dict[str, float]:
    """In-process NIMA images/s at batch 1 and batch 16 on one thread, as the Scorer replica
    computes them (``nie_core.inference.score``, float32, 224 x 224). The replica has one
    thread: Ray sets OMP_NUM_THREADS to its CPU reservation (0.1), rounded up to 1."""
    from nie_core.data.images import to_tensor
    from nie_core.inference import score
    from nie_core.models import create_model

    torch.manual_seed(0)
    scorer = create_model("nima", backbone="mnasnet1_0").eval()
    one = to_tensor(image)[None]
    sixteen = one.expand(CLIENTS, -1, -1, -1).contiguous()
    with threads(1):
        timings = time_interleaved(
            {"1": lambda: score(scorer, one), "16": lambda: score(scorer, sixteen)}, repeats
        )
    return {"1": 1 / timings["1"].best, "16": CLIENTS / timings["16"].best}


def measure_throughput(
    urls: Mapping[str, str], image: np.ndarray, png: bytes, quick: bool
) -> Throughput:
    """Score ``png`` (``image`` through the handles) from ``CLIENTS`` threads, over HTTP and
    through the Scorer handle of each app in ``urls``, in alternating rounds after a warm-up."""
    from ray import serve

    requests = 48 if quick else 128
    rounds = 1 if quick else 2
    calls = {}
    scorer_pids = {
        name: serve.get_deployment_handle("Scorer", app_name=name)
        .info.remote()
        .result()["replica_pid"]
        for name in urls
    }
    for name, url in urls.items():
        handle = serve.get_deployment_handle("Scorer", app_name=name)
        calls[f"http_{name}"] = _http_scorer(url, png)
        calls[f"handle_{name}"] = lambda h=handle: h.score.remote(image).result()
    throughput: dict[str, list[ThroughputRound]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up: connections, first batches
        _concurrent_throughput(call, CLIENTS)
    for _ in range(rounds):
        for name, call in calls.items():
            pid = scorer_pids[name.split("_", 1)[1]]
            throughput[name].append(_concurrent_throughput(call, requests, pid))
    largest_batch = serve.get_deployment_handle("Scorer", app_name="batched").info.remote()
    return Throughput(throughput, largest_batch.result()["largest_batch"], requests)
