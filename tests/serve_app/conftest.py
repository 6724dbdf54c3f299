"""Fixtures of the service tests: a service config and one running app.

The models are the session's tiny checkpoints (``tests/conftest.py``), so that a request takes
milliseconds; each deployment gets one replica and a quarter CPU so the whole application fits
on the session cluster's 2 CPUs.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image

from nie_core.config import config_from_dict, config_to_dict
from serve_app.config import APP_IMPORT_PATH, ServiceConfig

APP_NAME = "nie-test"


def service_config(checkpoints: dict[str, Path], **overrides: object) -> ServiceConfig:
    """The test service: 4 enhancers and a NIMA (MnasNet 0.5) scorer, all from checkpoints of
    randomly initialised tiny models."""
    replica = {
        "num_cpus": 0.25,
        "min_replicas": 1,
        "max_replicas": 1,
        "graceful_shutdown_timeout_s": 1.0,
    }
    data = {
        "models": [
            {
                "name": "edsr_x2_baseline",
                "label": "baseline",
                "source": str(checkpoints["baseline"]),
            },
            {"name": "edsr_x2_hybrid", "label": "hybrid", "source": str(checkpoints["hybrid"])},
            {"name": "mdsr_tiny", "label": "hybrid", "source": str(checkpoints["mdsr"])},
            {"name": "edsr_deblur", "label": "hybrid", "source": str(checkpoints["deblur"])},
        ],
        "scorer": {
            "source": str(checkpoints["nima"]),
            "max_batch_size": 8,
            "batch_wait_timeout_s": 0.05,
            "replicas": {**replica, "max_ongoing_requests": 32},
        },
        "tile_size": 64,
        "fast": "off",  # float32 everywhere, so outputs match in-process runs exactly
        "max_pixels": 400_000,
        "max_upload_bytes": 1_000_000,
        "request_timeout_s": 60.0,
        "ingress": {**replica, "max_ongoing_requests": 64},
        "enhancer": {**replica, "max_ongoing_requests": 16},
    }
    data.update(overrides)
    return config_from_dict(ServiceConfig, data)


@dataclass(frozen=True)
class RunningService:
    url: str
    port: int
    config: ServiceConfig
    checkpoints: dict[str, Path]
    app_name: str
    serve_config_file: Path  # the Serve config file it was deployed with
    dashboard_url: str
    env: dict[str, str]


def write_serve_config(
    path: Path, config: ServiceConfig, port: int, deployments: list[dict] | None = None
) -> Path:
    """A Ray Serve config file running ``serve_app.app:build`` with ``config`` as its args
    (plus per-deployment overrides), as an operator would write it."""
    app = {
        "name": APP_NAME,
        "route_prefix": "/",
        "import_path": APP_IMPORT_PATH,
        "args": config_to_dict(config),
    }
    if deployments:
        app["deployments"] = deployments
    document = {"http_options": {"host": "127.0.0.1", "port": port}, "applications": [app]}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def serve_deploy(
    service_or_url: RunningService | str, config_file: Path, env: dict | None = None
) -> None:
    """``serve deploy CONFIG_FILE --address DASHBOARD`` (Ray's own CLI; returns once the
    controller accepted the config)."""
    if isinstance(service_or_url, RunningService):
        address, env = service_or_url.dashboard_url, service_or_url.env
    else:
        address = service_or_url
    serve_bin = Path(sys.executable).with_name("serve")
    result = subprocess.run(
        [str(serve_bin), "deploy", str(config_file), "--address", address],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="package")
def service(ray_cluster, tiny_checkpoints, tmp_path_factory) -> Iterator[RunningService]:
    """The application, deployed once for every test module of this package that uses it (a
    deployment costs 1-2 minutes on 2 cores), with ``serve deploy`` and a Serve config file (the
    production path, which also allows in-place reconfiguration). Tests that change it restore
    it before they end. The modules that use it are named ``test_service*.py``: they run one
    after another, after ``test_replica_loss.py``'s own deployment has gone."""
    from ray import serve

    from tests.conftest import free_port

    port = free_port()
    config = service_config(tiny_checkpoints)
    config_file = write_serve_config(tmp_path_factory.mktemp("serve") / "serve.yaml", config, port)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve_deploy(ray_cluster.dashboard_url, config_file, ray_cluster.env)
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url)
        yield RunningService(
            url,
            port,
            config,
            tiny_checkpoints,
            APP_NAME,
            config_file,
            ray_cluster.dashboard_url,
            ray_cluster.env,
        )
    finally:
        serve.shutdown()


def _wait_until_up(url: str, timeout_s: float = 120.0) -> None:

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"service at {url} not healthy after {timeout_s} s")
        time.sleep(0.5)


def png_bytes(image: np.ndarray | Image.Image, **save_kwargs: object) -> bytes:
    """Encode a uint8 array or a Pillow image as PNG."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", **save_kwargs)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 3) array (checks it is a PNG)."""
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


# --------------------------------------------------------------------------- headless Chromium


@pytest.fixture(scope="session")
def chromium_available() -> None:
    """Skips (or under CI=true fails) the tests that use it when Chromium is missing; session
    scope, so that happens before any module's service is deployed."""
    from tests.serve_app.browser import require_chromium

    require_chromium()


@pytest.fixture
def chromium(chromium_available) -> Iterator:
    """A headless Debian Chromium (playwright ``Browser``), closed after the test."""
    from playwright.sync_api import sync_playwright

    from tests.serve_app.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
