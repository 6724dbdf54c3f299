"""The FastAPI routes alone, with stand-in deployment handles: the catch-all 500 handler, the
request timeout and model selection (no Ray cluster needed)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve_app.api import ApiError, ApiService, choose_models, create_api
from tests.serve_app.conftest import png_bytes, service_config

IMAGE = png_bytes(np.full((8, 12, 3), 128, np.uint8))
INFO = {
    "label": "",
    "kind": "edsr",
    "trained": True,
    "source": "s",
    "origin": "o",
    "fingerprint": "f",
}


class FakeHandle:
    """``handle.method.remote(*args)`` -> awaitable, like a Serve DeploymentHandle."""

    def __init__(self, **methods: Any) -> None:
        self._methods = methods

    def __getattr__(self, name: str) -> SimpleNamespace:
        method = self._methods[name]

        async def call(*args: Any) -> Any:
            result = method(*args)
            return await result if asyncio.iscoroutine(result) else result

        return SimpleNamespace(remote=call)


def make_client(tiny_checkpoints, enhance, **overrides: Any) -> tuple[TestClient, ApiService]:
    config = service_config(tiny_checkpoints, **overrides)
    enhancers = {
        spec.name: FakeHandle(
            info=lambda n=spec.name: {**INFO, "name": n, "task": "sr", "scales": [2]},
            enhance=enhance,
        )
        for spec in config.models
    }
    scorer = FakeHandle(score=lambda image: {"mean": 5.0, "std": 1.0, "distribution": [0.1] * 10})
    results = FakeHandle(put=lambda *args: None, summary=lambda rid: None, image=lambda *a: None)
    service = ApiService(config, scorer, enhancers, results)
    return TestClient(create_api(service)), service


def test_a_bug_is_answered_with_json_500_and_counted(tiny_checkpoints) -> None:
    def broken(*args: Any) -> np.ndarray:
        raise RuntimeError("a genuine bug")

    client, service = make_client(tiny_checkpoints, broken)
    response = client.post("/v1/enhance", files={"image": ("a.png", IMAGE, "image/png")})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert service.internal_errors == 1
    assert client.get("/healthz").json()["internal_errors"] == 1


def test_slow_request_gets_504(tiny_checkpoints) -> None:
    async def slow(image: np.ndarray, *args: Any) -> np.ndarray:
        await asyncio.sleep(5)
        return image

    client, service = make_client(tiny_checkpoints, slow, request_timeout_s=0.2)
    response = client.post("/v1/enhance", files={"image": ("a.png", IMAGE, "image/png")})
    assert response.status_code == 504
    assert "0.2" in response.json()["detail"]
    assert service.internal_errors == 0


def test_page_and_static_files_are_served(tiny_checkpoints) -> None:
    client, _ = make_client(tiny_checkpoints, lambda image, *a: image)
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    for name, kind in [("app.js", "javascript"), ("style.css", "text/css")]:
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def _infos() -> dict[str, dict[str, Any]]:
    return {
        "x2": {"task": "sr", "scales": [2]},
        "multi": {"task": "sr", "scales": [2, 3, 4]},
        "deblur": {"task": "deblur", "scales": [1]},
    }


@pytest.mark.parametrize(
    ("requested", "task", "scale", "expected"),
    [
        (None, None, None, (["x2", "multi"], "sr", 2)),
        (None, None, 3, (["multi"], "sr", 3)),
        (None, "deblur", None, (["deblur"], "deblur", 1)),
        (["multi"], None, None, (["multi"], "sr", 2)),
        (["multi", "x2", "multi"], None, 2, (["multi", "x2"], "sr", 2)),
    ],
)
def test_model_choice(requested, task, scale, expected) -> None:
    assert choose_models(_infos(), requested, task, scale) == expected


@pytest.mark.parametrize(
    ("requested", "task", "scale", "status"),
    [
        (["nope"], None, None, 404),
        (["x2"], None, 3, 422),
        (["x2", "deblur"], None, None, 422),
        (None, None, 1, 422),
        (["deblur"], "sr", None, 422),
    ],
)
def test_model_choice_errors(requested, task, scale, status) -> None:
    with pytest.raises(ApiError) as caught:
        choose_models(_infos(), requested, task, scale)
    assert caught.value.status == status
