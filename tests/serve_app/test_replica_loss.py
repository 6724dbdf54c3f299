"""A model replica dies under load: the service answers 503 (JSON, Retry-After) for the
requests it took down, keeps serving from the other replica, and Serve brings it back.

The application is the project's real one (``serve_app.app:build`` through ``serve deploy``),
with the enhancer being hit at 2 replicas. While 8 HTTP clients call ``/v1/enhance`` for
about 10 s, one of those replicas' processes is SIGKILLed (its pid from Ray's state API).
The figures (requests sent / failed / status codes, recovery time) are printed and written
to ``replica_loss.json`` in the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import httpx
import pytest
import skimage.data

from tests.serve_app.conftest import (
    APP_NAME,
    RunningService,
    _wait_until_up,
    png_bytes,
    serve_deploy,
    service_config,
    write_serve_config,
)

MODEL = "edsr_x2_baseline"
DEPLOYMENT = f"Enhancer_{MODEL}"
REPLICAS = 2
CLIENTS = 8
LOAD_S = 10.0
KILL_AT_S = 3.0
RECOVERY_TIMEOUT_S = 60.0
# 160 x 160: the model's share of a request is large enough that the killed replica is
# nearly always holding requests (queued behind its lock) when it dies.
IMAGE = png_bytes(skimage.data.coffee()[100:260, 200:360])


@pytest.fixture(scope="module")
def replicated_service(ray_cluster, tiny_checkpoints, tmp_path_factory) -> Iterator[RunningService]:
    """The application with one model whose Enhancer runs 2 replicas (the deployment the
    clients hit) and one Scorer, deployed with ``serve deploy`` on the session's cluster."""
    from ray import serve

    from tests.conftest import free_port

    replica = {"num_cpus": 0.25, "min_replicas": 1, "max_replicas": 1,
               "graceful_shutdown_timeout_s": 1.0}  # fmt: skip
    config = service_config(
        tiny_checkpoints,
        models=[{"name": MODEL, "label": "baseline", "source": str(tiny_checkpoints["baseline"])}],
        enhancer={**replica, "min_replicas": REPLICAS, "max_replicas": REPLICAS,
                  "max_ongoing_requests": 16},
    )  # fmt: skip
    port = free_port()
    config_file = write_serve_config(
        tmp_path_factory.mktemp("serve-replicas") / "serve.yaml", config, port
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve_deploy(ray_cluster.dashboard_url, config_file, ray_cluster.env)
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url)
        _wait_for_replicas(ray_cluster.dashboard_url, REPLICAS, None, RECOVERY_TIMEOUT_S)
        yield RunningService(url, port, config, tiny_checkpoints, APP_NAME, config_file,
                             ray_cluster.dashboard_url, ray_cluster.env)  # fmt: skip
    finally:
        serve.shutdown()


def _replica_pids(dashboard_url: str) -> list[int]:
    """Pids of the live replicas of the hit deployment, from Ray's state API (asked at the
    session cluster's dashboard: other Ray clusters may run on this machine)."""
    from ray.util.state import list_actors

    actors = list_actors(
        address=dashboard_url,
        filters=[("class_name", "=", f"ServeReplica:{APP_NAME}:{DEPLOYMENT}"),
                 ("state", "=", "ALIVE")],
        timeout=10,
    )  # fmt: skip
    return sorted(a.pid for a in actors if a.pid)


def _running_replicas() -> int:
    from ray import serve

    app = serve.status().applications.get(APP_NAME)
    if app is None or DEPLOYMENT not in app.deployments:
        return 0
    return int(app.deployments[DEPLOYMENT].replica_states.get("RUNNING", 0))


def _wait_for_replicas(
    dashboard_url: str, count: int, exclude_pid: int | None, timeout_s: float
) -> list[int]:
    """Wait until ``count`` replicas run (none of them ``exclude_pid``); their pids."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = _replica_pids(dashboard_url)
        if len(pids) == count and exclude_pid not in pids and _running_replicas() == count:
            return pids
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{DEPLOYMENT}: {pids} alive, {_running_replicas()} RUNNING after {timeout_s} s"
            )
        time.sleep(0.5)


@dataclass
class Outcome:
    client: int
    start_s: float  # since the load began
    end_s: float
    status: int | None  # None: no HTTP answer (see error)
    content_type: str = ""
    retry_after: str | None = None
    detail: str = ""
    error: str = ""  # exception type when there was no HTTP answer


def _load(url: str, t0: float, stop_at: float, client: int) -> list[Outcome]:
    """One client: POST /v1/enhance back to back until ``stop_at``."""
    outcomes = []
    with httpx.Client(timeout=30) as http:
        while time.monotonic() < stop_at:
            start = time.monotonic() - t0
            try:
                r = http.post(
                    f"{url}/v1/enhance",
                    files={"image": ("c.png", IMAGE, "image/png")},
                    data={"model": MODEL},
                )
            except httpx.HTTPError as error:
                outcomes.append(Outcome(client, start, time.monotonic() - t0, None,
                                        error=type(error).__name__))  # fmt: skip
                continue
            headers = r.headers
            outcome = Outcome(client, start, time.monotonic() - t0, r.status_code,
                              headers.get("content-type", ""), headers.get("retry-after"))  # fmt: skip
            if r.status_code != 200:
                try:
                    outcome.detail = str(r.json().get("detail", ""))[:300]
                except ValueError:
                    outcome.detail = "(not JSON) " + r.text[:200]
            outcomes.append(outcome)
    return outcomes


def _lost_replica_errors() -> dict[str, Exception]:
    from ray.exceptions import ActorDiedError, ActorUnavailableError
    from ray.serve.exceptions import ReplicaUnavailableError

    return {
        "ActorDiedError": ActorDiedError(),
        "ActorUnavailableError": ActorUnavailableError("connection lost", None),
        "ReplicaUnavailableError": ReplicaUnavailableError("Enhancer#abc"),
    }


@pytest.mark.parametrize("name", ["ActorDiedError", "ActorUnavailableError",
                                  "ReplicaUnavailableError"])  # fmt: skip
@pytest.mark.parametrize("path", ["/v1/enhance", "/v1/score"])
def test_lost_replica_error_is_503_json_with_retry_after(tiny_checkpoints, name, path) -> None:
    """The routes alone (stand-in handles, no cluster): what a handle raises when its replica
    died is a 503 with Retry-After, not a 500, and is not counted as a bug."""
    from tests.serve_app.test_api import IMAGE, make_client

    error = _lost_replica_errors()[name]

    def lost(*args):
        raise error

    client, service = make_client(tiny_checkpoints, lost)
    if path == "/v1/score":
        service.scorer = type(service.scorer)(score=lost)
    response = client.post(path, files={"image": ("a.png", IMAGE, "image/png")})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["retry-after"] == "1"
    assert "retry" in response.json()["detail"]
    assert service.internal_errors == 0


@pytest.mark.ray
@pytest.mark.slow
def test_replica_killed_under_load_answers_503_and_comes_back(replicated_service, tmp_path):
    service = replicated_service
    before = _wait_for_replicas(service.dashboard_url, REPLICAS, None, RECOVERY_TIMEOUT_S)
    # Warm both replicas (and the HTTP path) so the load measures steady state.
    for _ in range(4):
        r = httpx.post(f"{service.url}/v1/enhance", files={"image": ("c.png", IMAGE)},
                       data={"model": MODEL}, timeout=60)  # fmt: skip
        assert r.status_code == 200, r.text

    # The catch-all 500 counter before the load (start-up probes that timed out on the client
    # side can count there: the replica loss must add nothing).
    bugs_before = httpx.get(f"{service.url}/healthz", timeout=30).json()["internal_errors"]
    t0 = time.monotonic()
    stop_at = t0 + LOAD_S
    killed: dict[str, float | int] = {}

    def killer() -> None:
        time.sleep(KILL_AT_S)
        pid = before[0]
        killed["at_s"] = time.monotonic() - t0
        os.kill(pid, signal.SIGKILL)
        killed["pid"] = pid

    kill_thread = threading.Thread(target=killer, daemon=True)
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        futures = [pool.submit(_load, service.url, t0, stop_at, i) for i in range(CLIENTS)]
        kill_thread.start()
        outcomes = [o for f in futures for o in f.result(timeout=LOAD_S + 90)]
    kill_thread.join(timeout=10)
    assert "pid" in killed, "the replica was not killed"

    # Serve replaces the dead replica.
    recovery_t0 = time.monotonic()
    after = _wait_for_replicas(
        service.dashboard_url, REPLICAS, int(killed["pid"]), RECOVERY_TIMEOUT_S
    )
    recovered_s = time.monotonic() - recovery_t0 + (LOAD_S - killed["at_s"])
    # Every replica serves again, and the ingress counted no bug.
    health = httpx.get(f"{service.url}/healthz", timeout=30).json()

    kill_at = float(killed["at_s"])
    failed = [o for o in outcomes if o.status != 200]
    figures = {
        "clients": CLIENTS,
        "load_s": LOAD_S,
        "killed_pid": killed["pid"],
        "killed_at_s": round(kill_at, 3),
        "replica_pids_before": before,
        "replica_pids_after": after,
        "replica_back_after_kill_s": round(recovered_s, 2),
        "requests_sent": len(outcomes),
        "requests_ok": len(outcomes) - len(failed),
        "requests_failed": len(failed),
        "status_codes": dict(Counter(str(o.status or o.error) for o in outcomes)),
        "failed_in_flight_at_kill": sum(o.start_s <= kill_at for o in failed),
        "failed_sent_after_kill": sum(o.start_s > kill_at for o in failed),
        "failed_last_end_after_kill_s": round(
            max((o.end_s for o in failed), default=kill_at) - kill_at, 3
        ),  # fmt: skip
        "failures": [asdict(o) for o in failed],
        "healthz_after": health,
        "internal_errors_added": health["internal_errors"] - bugs_before,
    }
    out = tmp_path / "replica_loss.json"
    out.write_text(json.dumps(figures, indent=2))
    print(f"\n[replica loss] {json.dumps({k: v for k, v in figures.items() if k != 'failures'})}")
    for o in failed:
        print(f"[replica loss] failed: {asdict(o)}")
    print(f"[replica loss] figures written to {out}")

    # Every failure is a JSON 503 with Retry-After: never a 500, never a dropped connection.
    for o in failed:
        assert o.status == 503, asdict(o)
        assert o.content_type.startswith("application/json"), asdict(o)
        assert o.retry_after is not None and o.retry_after.isdigit(), asdict(o)
    # Only requests that were on the killed replica failed: at most one per client, all of
    # them around the kill; the rest of the load went to the surviving replica.
    assert 1 <= len(failed) <= CLIENTS, "no request was on the killed replica"
    assert figures["failed_last_end_after_kill_s"] < 5.0
    assert len(outcomes) - len(failed) >= 4 * CLIENTS
    assert set(after) != set(before) and int(killed["pid"]) not in after
    assert health["status"] == "ok" and figures["internal_errors_added"] == 0, health
    r = httpx.post(f"{service.url}/v1/enhance", files={"image": ("c.png", IMAGE)},
                   data={"model": MODEL}, timeout=60)  # fmt: skip
    assert r.status_code == 200
