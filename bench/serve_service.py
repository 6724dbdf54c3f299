"""The service the serving benchmark measures: its configuration, and a private Ray instance that
runs it twice side by side, ``/batched`` (the scorer batching up to :data:`CLIENTS` images) and
``/unbatched`` (``max_batch_size`` 1), on an HTTP port of its own.

Ray starts its workers at niceness 15; here they run at 0 (``RAY_worker_niceness``), like the
in-process runs they are compared with.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

CLIENTS = 16
APPS = (("batched", CLIENTS), ("unbatched", 1))


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@contextmanager
def running_service(torch_threads: int) -> Iterator[dict[str, str]]:
    """Start Ray and both apps, wait until they answer, and yield their base URLs by app name
    ("batched", "unbatched"); Serve and Ray are shut down on the way out."""
    import httpx
    import ray
    from ray import serve

    from serve_app.app import build_app

    port = _free_port()
    # Ray runs its workers at niceness 15 by default; on a machine shared with other work that
    # alone would slow the replicas against the in-process runs, which this benchmark compares.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        urls = {}
        for name, batch in APPS:
            app = build_app(service_config(batch, torch_threads))
            serve.run(app, name=name, route_prefix=f"/{name}", blocking=False)
            urls[name] = f"http://127.0.0.1:{port}/{name}"
        with httpx.Client(timeout=120) as client:
            for url in urls.values():
                _wait_healthy(client, f"{url}/healthz")
        yield urls
    finally:
        serve.shutdown()
        ray.shutdown()
