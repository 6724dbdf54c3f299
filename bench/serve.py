"""Serving benchmark: the Ray Serve app (``serve_app``) against in-process inference.

Two copies of the application run side by side on a private local Ray instance (its own HTTP
port, so a service already running on this machine is not touched), built with
``serve_app.app.build_app`` from the same :class:`~serve_app.config.ServiceConfig` except for the
scorer's batching: ``/batched`` (``@serve.batch`` up to 16 images) and ``/unbatched``
(``max_batch_size`` 1). Models have random weights (``allow_untrained``): the cost does not
depend on them.

1. Latency of ``POST /v1/enhance`` (edsr_baseline x2, a 256 x 256 PNG, PNG answer) against the
   same work in process: decoding the PNG, ``nie_core.inference.enhance`` with the same threads
   and fast path, encoding the PNG with the ingress's encoder (and, for reference, ``enhance``
   alone). Interleaved rounds, minimum of each. The model step's time inside the replica comes
   from the response's ``Server-Timing`` header, which splits Serve's overhead from the
   computation's run-to-run noise (see the notes of the result).
2. Throughput of ``POST /v1/score`` with 16 concurrent clients, batched against unbatched,
   alternating between the two apps; the same through the Scorer's deployment handle (no HTTP,
   no ingress); NIMA's own images/s at batch 16 against batch 1 in process, on the replica's
   one thread; and the CPU time each image costs the machine, the clients and the Scorer
   replica, from which follows the most any batching could gain on this hardware.

Ray starts its workers at niceness 15; here they run at 0 (``RAY_worker_niceness``), like the
in-process runs they are compared with.
"""

from __future__ import annotations

import io
import os
import socket
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bench.common import (
    BenchResult,
    Target,
    photo,
    run_and_report,
    time_interleaved,
    unsettled_note,
)

OVERHEAD_TARGET = 1.10
BATCHING_TARGET = 3.0
CLIENTS = 16
IMAGE_SIDE = 256


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def service_config(max_batch_size: int, torch_threads: int):
    """The benchmarked service: one edsr_baseline x2 model and a MnasNet NIMA, random weights."""
    from serve_app.config import ModelSpec, ReplicaSettings, ScorerSpec, ServiceConfig

    small = ReplicaSettings(num_cpus=0.1, max_ongoing_requests=64)
    return ServiceConfig(
        models=(ModelSpec(name="edsr_x2", arch="edsr_baseline", arch_kwargs={"scale": 2}),),
        scorer=ScorerSpec(
            max_batch_size=max_batch_size,
            batch_wait_timeout_s=0.02 if max_batch_size > 1 else 0.0,
            replicas=replace(small, max_ongoing_requests=CLIENTS * 2),
        ),
        allow_untrained=True,
        tile_size=None,
        fast="auto",
        torch_threads=torch_threads,
        ingress=small,
        enhancer=small,
    )


def _wait_healthy(client, url: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if client.get(url, timeout=10).status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(1.0)
    raise RuntimeError(f"service at {url} did not become healthy within {timeout_s:.0f} s")


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


def _server_timing(response) -> dict[str, float]:
    """An HTTP response's ``Server-Timing`` header as {name: milliseconds}."""
    timings = {}
    for entry in response.headers.get("server-timing", "").split(","):
        name, _, rest = entry.strip().partition(";dur=")
        if rest:
            timings[name] = float(rest.split(";")[0])
    return timings


def _http_scorer(url: str, png: bytes):
    """A ``call`` posting ``png`` to ``url``/v1/score, one HTTP connection per thread."""
    import threading

    import httpx

    local = threading.local()

    def call() -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120)
        local.client.post(f"{url}/v1/score", files={"image": ("x.png", png)}).raise_for_status()

    return call


def _model_batch_rates(image: np.ndarray, repeats: int) -> dict[str, float]:
    """In-process NIMA images/s at batch 1 and batch 16 on one thread, as the Scorer replica
    computes them (``nie_core.inference.score``, float32, 224 x 224). The replica has one
    thread: Ray sets OMP_NUM_THREADS to its CPU reservation (0.1), rounded up to 1."""
    from bench.common import threads as torch_threads
    from nie_core.data.images import to_tensor
    from nie_core.inference import score
    from nie_core.models import create_model

    torch.manual_seed(0)
    scorer = create_model("nima", backbone="mnasnet1_0").eval()
    one = to_tensor(image)[None]
    sixteen = one.expand(CLIENTS, -1, -1, -1).contiguous()
    with torch_threads(1):
        timings = time_interleaved(
            {"1": lambda: score(scorer, one), "16": lambda: score(scorer, sixteen)}, repeats
        )
    return {"1": 1 / timings["1"].best, "16": CLIENTS / timings["16"].best}


def run(quick: bool = False) -> BenchResult:
    import httpx
    import ray
    from ray import serve

    from nie_core.data.images import decode_image, encode_png, to_tensor, to_uint8
    from nie_core.inference import enhance, prepare_model
    from nie_core.models import create_model
    from nie_core.runtime import keep_freed_memory
    from serve_app.app import build_app

    image = np.ascontiguousarray(
        photo("astronaut.png")[96 : 96 + IMAGE_SIDE, 128 : 128 + IMAGE_SIDE]
    )
    png = _png(image)
    threads = torch.get_num_threads()
    max_pixels = service_config(1, threads).max_pixels  # the ingress decodes with this budget
    requests = 48 if quick else 128
    rounds = 1 if quick else 2
    # Measured before Ray starts, so that no replica competes with it.
    model_rates = _model_batch_rates(image, repeats=3 if quick else 5)
    port = _free_port()
    # Ray runs its workers at niceness 15 by default; on a machine shared with other work that
    # alone would slow the replicas against the in-process runs, which this benchmark compares.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        urls = {}
        for name, batch in (("batched", CLIENTS), ("unbatched", 1)):
            app = build_app(service_config(batch, threads))
            serve.run(app, name=name, route_prefix=f"/{name}", blocking=False)
            urls[name] = f"http://127.0.0.1:{port}/{name}"
        with httpx.Client(timeout=120) as client:
            for url in urls.values():
                _wait_healthy(client, f"{url}/healthz")

            # The in-process side is set up as the Enhancer replica is.
            keep_freed_memory()
            torch.manual_seed(0)
            model = prepare_model(create_model("edsr_baseline", scale=2), "cpu", "auto")

            # Per call: (seconds, model milliseconds). The model part is the same work on both
            # sides (to_tensor + enhance + to_uint8): in the replica it is the Server-Timing
            # "model" entry, in process it is timed around the same three calls.
            calls_http: list[tuple[float, float]] = []
            calls_pipeline: list[tuple[float, float]] = []
            calls_handle: list[float] = []

            def model_step(array: np.ndarray) -> tuple[np.ndarray, float]:
                start = time.perf_counter()
                out = to_uint8(enhance(model, to_tensor(array)[None], fast="auto")[0])
                return out, (time.perf_counter() - start) * 1000.0

            def in_process_pipeline() -> bytes:
                start = time.perf_counter()
                out, model_ms = model_step(decode_image(png, max_pixels))
                encoded = encode_png(out)
                calls_pipeline.append((time.perf_counter() - start, model_ms))
                return encoded

            def in_process_enhance() -> None:
                model_step(image)

            enhancer = serve.get_deployment_handle("Enhancer_edsr_x2", app_name="batched")

            def through_handle() -> None:
                _, model_ms = enhancer.enhance.remote(image, 2, False, None).result()
                calls_handle.append(model_ms)

            def over_http() -> bytes:
                start = time.perf_counter()
                answer = client.post(
                    f"{urls['batched']}/v1/enhance",
                    files={"image": ("x.png", png)},
                    data={"model": "edsr_x2"},
                )
                seconds = time.perf_counter() - start
                answer.raise_for_status()
                calls_http.append((seconds, _server_timing(answer)["model"]))
                return answer.content

            expected_shape = (IMAGE_SIDE * 2, IMAGE_SIDE * 2, 3)
            served = decode_image(over_http(), None)
            if served.shape != expected_shape:
                raise RuntimeError(f"/v1/enhance answered {served.shape}, not {expected_shape}")
            latency = time_interleaved(
                # Served and in-process calls alternate, so whatever one side leaves behind
                # (processes finishing their part of a request) falls on the other side alike.
                # With both served calls back to back, the replica's model step measured 10-15%
                # slower than in process; alternating, within 2%.
                {
                    "pipeline": in_process_pipeline,
                    "http": over_http,
                    "enhance": in_process_enhance,
                    "handle": through_handle,
                },
                repeats=3 if quick else 12,
                max_seconds=15 if quick else 120,
            )

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
        largest_batch = largest_batch.result()["largest_batch"]
    finally:
        serve.shutdown()
        ray.shutdown()

    fastest = {
        name: max(rounds_, key=lambda r: r.images_per_s) for name, rounds_ in throughput.items()
    }
    best = {name: r.images_per_s for name, r in fastest.items()}
    raw_overhead = latency["http"].best / latency["pipeline"].best
    overhead_model_only = latency["http"].best / latency["enhance"].best
    # The 256x256 enhance is ~90% of both sides' time, and its own run-to-run spread on this
    # shared 2-core machine (several %) swamps Serve's share in a ratio of whole requests. So
    # each call's time is split into the model step (the same code on both sides, timed where
    # it runs) and everything else; the overhead ratio puts the fastest model step (in process)
    # under both: (model + Serve's other time) / (model + in-process other time), the other
    # times as medians over the calls.
    served_other_ms = statistics.median(s * 1000 - m for s, m in calls_http)
    in_process_other_ms = statistics.median(s * 1000 - m for s, m in calls_pipeline)
    model_ms = latency["enhance"].best * 1000
    # The model step's own times on both sides: if the replica computes slower over all calls
    # (medians), Serve is charged with that too.
    replica_model = [m for _, m in calls_http] + calls_handle
    in_process_model = [m for _, m in calls_pipeline] + [
        t * 1000 for t in latency["enhance"].samples
    ]
    replica_model_ms = min(replica_model)
    model_median_ratio = statistics.median(replica_model) / statistics.median(in_process_model)
    replica_slowdown = max(1.0, model_median_ratio)
    overhead = (model_ms * replica_slowdown + served_other_ms) / (model_ms + in_process_other_ms)
    gain = {
        level: best[f"{level}_batched"] / best[f"{level}_unbatched"] for level in ("http", "handle")
    }
    model_gain = model_rates["16"] / model_rates["1"]
    # What batching could give at most, from where the unbatched HTTP path spends its CPU. Batched
    # throughput is at most cores / (CPU per image). Batching can only shrink the Scorer
    # replica's share: at best to the model's own batch-16 time per image, leaving the rest
    # (clients, HTTP proxy, ingress) as it was. Unbatched throughput = busy share x cores / CPU
    # per image. Their ratio bounds batched / unbatched.
    unbatched = fastest["http_unbatched"]
    cores = os.cpu_count() or 1
    busy_share = unbatched.machine_cpu_s * unbatched.images_per_s / cores
    best_scorer_cpu = 1.0 / model_rates["16"]
    rest = unbatched.machine_cpu_s - unbatched.scorer_cpu_s
    ceiling = unbatched.machine_cpu_s / (busy_share * (rest + best_scorer_cpu))
    server = unbatched.machine_cpu_s - unbatched.client_cpu_s
    ceiling_server = server / (server - unbatched.scorer_cpu_s + best_scorer_cpu)
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731
    rate = lambda value: f"{value:.1f} images/s"  # noqa: E731
    rows = [
        ["POST /v1/enhance, 256x256 PNG -> 512x512 PNG", ms(latency["http"].best), "1.00x"],
        ["in process: decode + enhance + encode PNG", ms(latency["pipeline"].best),
         f"{raw_overhead:.3f}x"],
        ["in process: enhance only (to_tensor + enhance + to_uint8)", ms(latency["enhance"].best),
         f"{overhead_model_only:.3f}x"],
        ["Enhancer handle (the replica's enhance + Ray transfers, no HTTP, no PNG)",
         ms(latency["handle"].best), f"{latency['http'].best / latency['handle'].best:.3f}x"],
        ["the same model step inside the Enhancer replica (Server-Timing 'model')",
         ms(replica_model_ms / 1000),
         f"{replica_model_ms / model_ms:.3f}x in process (medians {model_median_ratio:.3f}x)"],
        ["POST /v1/enhance minus its model step (median): HTTP, ingress, decode, encode, Ray",
         f"{served_other_ms:.1f} ms", "-"],
        ["in process minus its model step (median): decode + encode", 
         f"{in_process_other_ms:.1f} ms", "-"],
        ["overhead: (model x replica slowdown + Serve's other time) / "
         "(model + in-process other time)", "-", f"{overhead:.3f}x"],
        [f"POST /v1/score, {CLIENTS} clients, batching on (max {CLIENTS})",
         rate(best["http_batched"]), f"{gain['http']:.2f}x"],
        [f"POST /v1/score, {CLIENTS} clients, batching off", rate(best["http_unbatched"]), "1.00x"],
        [f"Scorer handle, {CLIENTS} callers, batching on", rate(best["handle_batched"]),
         f"{gain['handle']:.2f}x"],
        [f"Scorer handle, {CLIENTS} callers, batching off", rate(best["handle_unbatched"]),
         "1.00x"],
        [f"NIMA in process, 1 thread, batch of {CLIENTS}", rate(model_rates["16"]),
         f"{model_gain:.2f}x"],
        ["NIMA in process, 1 thread, batch of 1", rate(model_rates["1"]), "1.00x"],
        *[
            [f"CPU per image, POST /v1/score batching {mode}: machine / clients / Scorer replica",
             " / ".join(ms(v) for v in (r.machine_cpu_s, r.client_cpu_s, r.scorer_cpu_s)), "-"]
            for mode, r in (("off", unbatched), ("on", fastest["http_batched"]))
        ],
        ["ceiling: batching that left the Scorer only NIMA's batch-16 time per image", "-",
         f"{ceiling:.2f}x"],
        ["the same if the clients used no CPU here (server CPU only)", "-",
         f"{ceiling_server:.2f}x"],
    ]  # fmt: skip
    return BenchResult(
        name="serve",
        title="Serving: Ray Serve app vs in-process inference",
        headers=["measurement", "value", "ratio"],
        rows=rows,
        targets=[
            Target(
                "/v1/enhance latency / in-process (decode + enhance + encode), model step shared",
                round(overhead, 3),
                OVERHEAD_TARGET,
                "<=",
            ),
            Target(
                f"/v1/score throughput, batched / unbatched ({CLIENTS} clients)",
                round(gain["http"], 2),
                BATCHING_TARGET,
                ">=",
            ),
        ],  # fmt: skip
        notes=[
            f"Enhancer replica and in-process runs use {threads} torch threads and the same "
            "fast path and PNG encoder (nie_core.data.images.encode_png); latency = minimum "
            f"over {len(latency['http'].samples)} interleaved rounds; the ratio of a latency "
            "row is the HTTP time over that row's time.",
            "The overhead target: the model step (to_tensor + enhance + to_uint8) is the same "
            "code in the replica and in process and takes ~90% of either; its run-to-run "
            "spread here (the medians of the first rows lie "
            f"{latency['enhance'].median / latency['enhance'].best - 1:.0%} above the minima) "
            "is larger than Serve's share, so a ratio of whole requests mostly compares two "
            "draws of that noise (raw ratio of minima: "
            f"{raw_overhead:.3f}x). Each call's time is split into its model step, timed where "
            "it runs, and the rest; the target ratio is (fastest in-process model step x the "
            "replica's slowdown + median rest through Serve) / (the same step + median rest in "
            "process), where the slowdown is the ratio of the model step's medians over all "
            f"calls, replica over in process, if above 1 ({model_median_ratio:.3f} here): "
            "whatever makes the replica compute slower counts as Serve overhead. Served and "
            "in-process calls alternate within each round.",
            "Scorer: NIMA MnasNet 1.0 (float32, images resized to 224x224), one replica on one "
            f"thread; throughput = best of {rounds} alternating round(s) of {requests} requests; "
            f"largest batch seen: {largest_batch}. The handle rows call the Scorer deployment "
            "directly (no HTTP, no ingress). The NIMA rows: on this CPU one image already keeps "
            "a core busy, so batch 16 is barely cheaper per image than batch 1.",
            "CPU per image (ms of CPU time, all threads; busiest round): the whole machine "
            "(/proc/stat), this process (the 16 client threads) and the Scorer replica "
            f"(/proc/PID/stat, its PID from the deployment's info). With batching off the machine was {busy_share:.0%} busy. "
            "Batching cannot make an image cost less CPU than its non-Scorer work (clients, "
            "HTTP proxy, ingress) plus NIMA's batch-16 time, and throughput is at most "
            "cores / CPU per image: the first ceiling row is the largest batched/unbatched "
            "ratio that allows on this machine, the second the same with the clients' CPU "
            "left out (clients on another machine, the server still CPU-bound).",
            *unsettled_note(latency, "latency"),
        ],
        details={
            "latency_seconds": {n: {"min": t.best, "median": t.median} for n, t in latency.items()},
            "score_throughput_images_per_s": {
                name: [r.images_per_s for r in rounds_] for name, rounds_ in throughput.items()
            },
            "model_images_per_s_one_thread": model_rates,
            "overhead_vs_pipeline": overhead,
            "raw_overhead_vs_pipeline": raw_overhead,
            "served_other_ms_median": served_other_ms,
            "in_process_other_ms_median": in_process_other_ms,
            "replica_model_ms_min": replica_model_ms,
            "replica_over_in_process_model_median": model_median_ratio,
            "replica_slowdown_charged": replica_slowdown,
            "calls_ms": {
                "http_total_and_model": [[s * 1000, m] for s, m in calls_http],
                "pipeline_total_and_model": [[s * 1000, m] for s, m in calls_pipeline],
                "handle_model": calls_handle,
                "in_process_model": in_process_model,
            },
            "in_process_model_ms_min": model_ms,
            "overhead_vs_enhance_only": overhead_model_only,
            "batching_gain": gain,
            "model_batch_gain": model_gain,
            "batching_gain_ceiling": ceiling,
            "batching_gain_ceiling_server_only": ceiling_server,
            "cpu_seconds_per_image": {
                name: {
                    "machine": r.machine_cpu_s,
                    "clients": r.client_cpu_s,
                    "scorer": r.scorer_cpu_s,
                }
                for name, r in fastest.items()
            },
            "unbatched_busy_share": busy_share,
            "largest_batch": largest_batch,
        },
    )


def main(argv: Sequence[str] | None = None) -> BenchResult:
    return run_and_report(run, argv, "Serve overhead and dynamic-batching gain")


if __name__ == "__main__":
    main()
