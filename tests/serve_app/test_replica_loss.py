"""A model replica dies under load: the service answers 503 (JSON, Retry-After) for the
requests it took down, keeps serving from the other replica, and Serve brings it back.

The application is the project's real one (``serve_app.app:build`` through ``serve deploy``),
with the enhancer being hit at 2 replicas. The replica that dies is one that is known to hold
requests, not one picked at a time: a slow request (an x8 self-ensemble of a large image in
small tiles, many seconds of the replica's computation) goes first, and Serve's own accounting
of each replica (``get_num_ongoing_requests``, what its routers ask) says which replica took
it. Then 8 HTTP clients call ``/v1/enhance`` for about 10 s; once that replica's accounting
also counts a request of theirs (queued behind the slow one on the replica's lock), its
process is SIGKILLed (its pid from Ray's state API). The slow request cannot have finished by
then, so at least that request was on the killed replica and must be answered 503. The figures
(requests sent / failed / status codes, recovery time) are printed and written to
``replica_loss.json`` in the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import httpx
import numpy as np
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
RECOVERY_TIMEOUT_S = 60.0
HELD_TIMEOUT_S = 30.0  # for the slow request to reach a replica, and a load request to follow
IMAGE = png_bytes(skimage.data.coffee()[100:260, 200:360])
# The slow request: 600 x 600 (under the test service's pixel budget; a smooth image, so the
# PNG stays small), x8 self-ensemble in 16-pixel tiles: tens of seconds of computation on an
# idle machine, against the second or so the load takes to reach its replica. It never ends on
# its own: its replica is killed under it.
SLOW_IMAGE = png_bytes(np.tile(np.linspace(0, 255, 600, dtype=np.uint8)[None, :, None], (600, 1, 3)))  # fmt: skip
SLOW_FORM = {"model": MODEL, "ensemble": "true", "tile_size": "16"}


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


def _replica_actors(dashboard_url: str) -> dict[int, str]:
    """{pid: actor name} of the live replicas of the hit deployment, from Ray's state API
    (asked at the session cluster's dashboard: other Ray clusters may run on this machine)."""
    from ray.util.state import list_actors

    actors = list_actors(
        address=dashboard_url,
        filters=[("class_name", "=", f"ServeReplica:{APP_NAME}:{DEPLOYMENT}"),
                 ("state", "=", "ALIVE")],
        timeout=10,
    )  # fmt: skip
    return {a.pid: a.name for a in actors if a.pid}


def _replica_pids(dashboard_url: str) -> list[int]:
    """Pids of the live replicas of the hit deployment."""
    return sorted(_replica_actors(dashboard_url))


def _ongoing_requests(replicas: dict[int, str]) -> dict[int, int]:
    """{pid: requests the replica holds} by Serve's own accounting: the replica actor's
    ``get_num_ongoing_requests``, which Serve's routers ask it as well. A request counts from
    when the replica accepted it until its answer has been sent; the Enhancer runs one at a
    time, so the others wait there, on its lock."""
    import ray
    from ray.serve._private.constants import SERVE_NAMESPACE

    refs = {pid: ray.get_actor(name, namespace=SERVE_NAMESPACE).get_num_ongoing_requests.remote()
            for pid, name in replicas.items()}  # fmt: skip
    return {pid: int(ray.get(ref, timeout=10)) for pid, ref in refs.items()}


def _wait_for_ongoing(
    replicas: dict[int, str], done: Callable[[dict[int, int]], bool], what: str
) -> dict[int, int]:
    """Ask the replicas' accounting until ``done(counts)``; the counts then."""
    deadline = time.monotonic() + HELD_TIMEOUT_S
    while not done(counts := _ongoing_requests(replicas)):
        assert time.monotonic() < deadline, f"{what} within {HELD_TIMEOUT_S} s: {counts}"
        time.sleep(0.02)
    return counts


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
            outcomes.append(_call(http, url, t0, client, IMAGE, {"model": MODEL}))
    return outcomes


def _call(
    http: httpx.Client, url: str, t0: float, client: int, image: bytes, form: dict[str, str]
) -> Outcome:
    """One POST /v1/enhance and what came of it."""
    start = time.monotonic() - t0
    try:
        r = http.post(f"{url}/v1/enhance", files={"image": ("c.png", image, "image/png")},
                      data=form)  # fmt: skip
    except httpx.HTTPError as error:
        return Outcome(client, start, time.monotonic() - t0, None, error=type(error).__name__)
    headers = r.headers
    outcome = Outcome(client, start, time.monotonic() - t0, r.status_code,
                      headers.get("content-type", ""), headers.get("retry-after"))  # fmt: skip
    if r.status_code != 200:
        try:
            outcome.detail = str(r.json().get("detail", ""))[:300]
        except ValueError:
            outcome.detail = "(not JSON) " + r.text[:200]
    return outcome


def _slow_call(url: str, t0: float) -> Outcome:
    """The slow request (client -1 in the figures)."""
    with httpx.Client(timeout=120) as http:
        return _call(http, url, t0, -1, SLOW_IMAGE, SLOW_FORM)


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
    replicas = _replica_actors(service.dashboard_url)
    assert sorted(replicas) == before
    _wait_for_ongoing(replicas, lambda n: sum(n.values()) == 0, "the replicas did not go idle")

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS + 1) as pool:
        # The slow request, alone: the one replica whose accounting counts it holds it ...
        slow = pool.submit(_slow_call, service.url, t0)
        held = _wait_for_ongoing(replicas, lambda n: sum(n.values()) >= 1,
                                 "the slow request reached no replica")  # fmt: skip
        pid = max(held, key=held.__getitem__)
        assert sorted(held.values()) == [0, 1], held
        # ... then the load, until that replica holds a load request as well, behind the
        # slow one. The slow request cannot have ended: the replica dies with it.
        t_load = time.monotonic() - t0
        stop_at = time.monotonic() + LOAD_S
        futures = [pool.submit(_load, service.url, t0, stop_at, i) for i in range(CLIENTS)]
        at_kill = _wait_for_ongoing(replicas, lambda n: n[pid] >= 2 or slow.done(),
                                    "no load request reached the slow request's replica")  # fmt: skip
        assert not slow.done(), f"the slow request ended before the kill: {slow.result()}"
        os.kill(pid, signal.SIGKILL)
        kill_at = time.monotonic() - t0
        outcomes = [o for f in futures for o in f.result(timeout=LOAD_S + 90)]
        slow_outcome = slow.result(timeout=90)

    # Serve replaces the dead replica.
    after = _wait_for_replicas(service.dashboard_url, REPLICAS, pid, RECOVERY_TIMEOUT_S)
    recovered_s = time.monotonic() - t0 - kill_at
    # Every replica serves again, and the ingress counted no bug.
    health = httpx.get(f"{service.url}/healthz", timeout=30).json()

    failed = [o for o in outcomes if o.status != 200]
    figures = {
        "clients": CLIENTS,
        "load_s": LOAD_S,
        "killed_pid": pid,
        "load_started_at_s": round(t_load, 3),
        "killed_at_s": round(kill_at, 3),
        "requests_on_replicas_at_kill": at_kill,
        "slow_request": asdict(slow_outcome),
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

    # Every failure is a JSON 503 with Retry-After: never a 500, never a dropped connection;
    # the slow request, on the killed replica when it died, is one of them.
    for o in [slow_outcome, *failed]:
        assert o.status == 503, asdict(o)
        assert o.content_type.startswith("application/json"), asdict(o)
        assert o.retry_after is not None and o.retry_after.isdigit(), asdict(o)
    # Only requests that were on the killed replica failed: at most one per client, all of
    # them around the kill; the rest of the load went to the surviving replica. (A load
    # request the replica had accepted but whose acceptance had not yet reached the router is
    # sent again to the other replica, so the load's own failures may be 0.)
    assert len(failed) <= CLIENTS, len(failed)
    assert figures["failed_last_end_after_kill_s"] < 5.0
    assert len(outcomes) - len(failed) >= 4 * CLIENTS
    assert set(after) != set(before) and pid not in after
    assert health["status"] == "ok" and figures["internal_errors_added"] == 0, health
    r = httpx.post(f"{service.url}/v1/enhance", files={"image": ("c.png", IMAGE)},
                   data={"model": MODEL}, timeout=60)  # fmt: skip
    assert r.status_code == 200
