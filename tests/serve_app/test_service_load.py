"""The service under load and change: a burst of concurrent clients all get correct answers, the
replicas run with the allocator settings, and a model is swapped in place without a restart.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serve_app import calls
from tests.serve_app.conftest import decode_png, png_bytes, serve_deploy, write_serve_config

pytestmark = pytest.mark.ray


# --------------------------------------------------------------------------- concurrency


def test_burst_of_concurrent_clients_all_get_correct_answers(service) -> None:
    from ray import serve

    small = calls.COFFEE_SMALL[:32, :48]
    image = png_bytes(small)
    expected = calls.in_process_enhance(service.checkpoints["baseline"], small)
    expected_mean = calls.in_process_score(service.checkpoints["nima"], small)

    def client(i: int) -> list[str]:
        problems = []
        with httpx.Client(timeout=120) as http:
            for j in range(2):
                if (i + j) % 2:
                    r = http.post(
                        f"{service.url}/v1/score", files={"image": ("s.png", image, "image/png")}
                    )
                    ok = r.status_code == 200 and abs(r.json()["mean"] - expected_mean) < 1e-4
                else:
                    r = http.post(
                        f"{service.url}/v1/enhance",
                        files={"image": ("s.png", image, "image/png")},
                        data={"model": "edsr_x2_baseline"},
                    )
                    ok = r.status_code == 200 and (
                        np.abs(decode_png(r.content).astype(int) - expected.astype(int)).max() <= 1
                    )
                if not ok:
                    problems.append(f"client {i} request {j}: {r.status_code} {r.text[:200]}")
        return problems

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        problems = [p for result in pool.map(client, range(16)) for p in result]
    elapsed = time.monotonic() - start
    assert problems == []
    assert elapsed < 90, f"32 small requests took {elapsed:.1f} s"
    # Concurrent score requests were grouped by @serve.batch.
    scorer = serve.get_deployment_handle("Scorer", app_name=service.app_name)
    assert scorer.info.remote().result(timeout_s=30)["largest_batch"] >= 2


def test_model_replicas_start_with_the_allocator_environment(service) -> None:
    # Without it every request page-faults its activations back in (nie_core.runtime).
    from ray import serve

    from nie_core.runtime import MODEL_PROCESS_ENV

    for deployment in ("Scorer", "Enhancer_edsr_x2_baseline"):
        handle = serve.get_deployment_handle(deployment, app_name=service.app_name)
        pid = handle.info.remote().result(timeout_s=30)["replica_pid"]
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        environ = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        assert {k: environ.get(k) for k in MODEL_PROCESS_ENV} == MODEL_PROCESS_ENV, deployment


# --------------------------------------------------------------------------- reconfigure


def _wait_for(condition, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.5)


def test_reconfigure_swaps_a_model_without_restarting(service, tmp_path: Path) -> None:
    from ray import serve

    def info(model: str) -> dict:
        handle = serve.get_deployment_handle(f"Enhancer_{model}", app_name=service.app_name)
        return handle.info.remote().result(timeout_s=30)

    names = [spec.name for spec in service.config.models]
    before = {name: info(name) for name in names}
    spare = str(service.checkpoints["spare"])
    swap_file = write_serve_config(
        tmp_path / "swap.yaml",
        service.config,
        service.port,
        deployments=[{"name": "Enhancer_edsr_x2_hybrid", "user_config": {"source": spare}}],
    )
    try:
        serve_deploy(service, swap_file)
        _wait_for(lambda: info("edsr_x2_hybrid")["origin"] == spare)
        after = {name: info(name) for name in names}
        hybrid = after["edsr_x2_hybrid"]
        # Same replica processes everywhere: reconfigured in place, nothing restarted.
        assert {n: a["replica_pid"] for n, a in after.items()} == {
            n: b["replica_pid"] for n, b in before.items()
        }
        assert hybrid["fingerprint"] != before["edsr_x2_hybrid"]["fingerprint"]
        models = httpx.get(f"{service.url}/v1/models", timeout=30).json()["models"]
        listed = {m["name"]: m["fingerprint"] for m in models}
        assert listed == {n: a["fingerprint"] for n, a in after.items()}
        response = calls.post(
            service, "/v1/enhance", png_bytes(calls.COFFEE_SMALL), model="edsr_x2_hybrid"
        )
        expected = calls.in_process_enhance(service.checkpoints["spare"], calls.COFFEE_SMALL)
        assert np.abs(decode_png(response.content).astype(int) - expected.astype(int)).max() <= 1
    finally:
        serve_deploy(service, service.serve_config_file)
        _wait_for(
            lambda: info("edsr_x2_hybrid")["fingerprint"] == before["edsr_x2_hybrid"]["fingerprint"]
        )
    assert info("edsr_x2_hybrid")["replica_pid"] == before["edsr_x2_hybrid"]["replica_pid"]
