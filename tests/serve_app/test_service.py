"""The Serve application over real HTTP: health, model list, docs, and round trips that must
equal the same computation in process (enhance, score, MDSR scales, deblurring, self-ensemble,
tiling, compare).
"""

from __future__ import annotations

import base64
import re

import httpx
import numpy as np
import pytest
import torch

from nie_core.evaluation import output_judges
from nie_core.judging import judge_outputs, winner
from nie_core.models.nima import mean_score, std_score
from tests.serve_app import calls
from tests.serve_app.conftest import decode_png, png_bytes

pytestmark = pytest.mark.ray


# --------------------------------------------------------------------------- basics


def test_healthz_reports_every_deployment_ok(service) -> None:
    response = httpx.get(f"{service.url}/healthz", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["deployments"]) == {
        "Scorer",
        "Enhancer_edsr_x2_baseline",
        "Enhancer_edsr_x2_hybrid",
        "Enhancer_mdsr_tiny",
        "Enhancer_edsr_deblur",
    }
    assert set(body["deployments"].values()) == {"ok"}


def test_models_lists_kind_task_scales_and_origin(service) -> None:
    body = httpx.get(f"{service.url}/v1/models", timeout=30).json()
    models = {m["name"]: m for m in body["models"]}
    assert list(models) == ["edsr_x2_baseline", "edsr_x2_hybrid", "mdsr_tiny", "edsr_deblur"]
    assert models["edsr_x2_baseline"]["kind"] == "edsr"
    assert models["edsr_x2_baseline"]["scales"] == [2]
    assert models["edsr_x2_hybrid"]["label"] == "hybrid"
    assert models["mdsr_tiny"]["kind"] == "mdsr" and models["mdsr_tiny"]["scales"] == [2, 3]
    assert models["edsr_deblur"]["task"] == "deblur"  # read from the checkpoint's config
    assert models["edsr_deblur"]["scales"] == [1]
    assert all(m["trained"] for m in models.values())
    assert models["edsr_x2_baseline"]["origin"] == str(service.checkpoints["baseline"])
    assert models["edsr_x2_baseline"]["fingerprint"] != models["edsr_x2_hybrid"]["fingerprint"]
    assert body["scorer"]["origin"] == str(service.checkpoints["nima"])
    assert body["max_pixels"] == service.config.max_pixels


def test_openapi_docs_are_served(service) -> None:
    spec = httpx.get(f"{service.url}/openapi.json", timeout=30).json()
    assert {"/v1/enhance", "/v1/score", "/v1/models", "/v1/compare", "/healthz"} <= set(
        spec["paths"]
    )
    for page in ("docs", "redoc"):
        html = httpx.get(f"{service.url}/{page}", timeout=30)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert assets and all(a.startswith("/docs-assets/") for a in assets), assets  # no CDN
        for asset in assets:
            answer = httpx.get(f"{service.url}{asset}", timeout=30)
            assert answer.status_code == 200 and len(answer.content) > 1000, asset


# --------------------------------------------------------------------------- round trips


def server_timings(response: httpx.Response) -> dict[str, float]:
    """The ``Server-Timing`` header as {name: milliseconds}, in order."""
    timings = {}
    for entry in response.headers["server-timing"].split(","):
        name, duration = entry.strip().split(";dur=")
        timings[name] = float(duration)
    return timings


def test_enhance_returns_png_of_scaled_size_equal_to_in_process(service) -> None:
    response = calls.post(service, "/v1/enhance", png_bytes(calls.CHELSEA), model="edsr_x2_hybrid")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-nie-scale"] == "2"
    output = decode_png(response.content)
    assert output.shape == (600, 902, 3)
    # Same checkpoint, same nie_core code, float32 on both sides (tile_size 64 in the service).
    expected = calls.in_process_enhance(service.checkpoints["hybrid"], calls.CHELSEA)
    assert np.abs(output.astype(int) - expected.astype(int)).max() <= 1
    # Server-Timing splits the request: every step took some time, the model most of it.
    timings = server_timings(response)
    assert list(timings) == ["decode", "model", "transfer", "encode"]
    assert all(ms >= 0 for ms in timings.values()) and timings["model"] > 0
    assert timings["model"] > timings["decode"]


@pytest.mark.parametrize("how", ["format", "accept"])
def test_enhance_json_has_base64_png_and_nima_scores(service, how: str) -> None:
    image = png_bytes(calls.COFFEE_SMALL)
    if how == "format":
        response = calls.post(
            service, "/v1/enhance", image, model="edsr_x2_baseline", format="json"
        )
    else:
        response = httpx.post(
            f"{service.url}/v1/enhance",
            files={"image": ("c.png", image, "image/png")},
            data={"model": "edsr_x2_baseline"},
            headers={"Accept": "application/json"},
            timeout=60,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "edsr_x2_baseline" and body["scale"] == 2 and body["task"] == "sr"
    timings = server_timings(response)
    assert list(timings) == ["decode", "model", "transfer", "score", "judges", "encode"]
    assert body["output"]["elapsed_ms"] == pytest.approx(timings["model"], abs=0.051)
    output = decode_png(base64.b64decode(body["image_png_base64"]))
    assert output.shape == (192, 256, 3)
    assert (body["output"]["width"], body["output"]["height"]) == (256, 192)
    assert (body["input"]["width"], body["input"]["height"]) == (128, 96)
    for part in ("input", "output"):
        score_ = body[part]["score"]
        assert 1.0 <= score_["mean"] <= 10.0
        assert score_["std"] >= 0.0
        assert len(score_["distribution"]) == 10
        assert sum(score_["distribution"]) == pytest.approx(1.0, abs=1e-5)
    # The stored full-resolution output is the same PNG.
    stored = httpx.get(f"{service.url}{body['output']['url']}", timeout=30)
    assert stored.status_code == 200
    np.testing.assert_array_equal(decode_png(stored.content), output)
    # And the input score is what /v1/score says about the same image.
    direct = calls.post(service, "/v1/score", image).json()
    assert direct["mean"] == pytest.approx(body["input"]["score"]["mean"], abs=1e-5)
    # The output's judges are nie_core's on the same pixels; one output has no verdict.
    judges = body["output"]["judges"]
    expected = output_judges(calls.COFFEE_SMALL, output, 2)
    assert judges["nima"] == body["output"]["score"]["mean"]
    assert judges["region"] == expected["region"] == [0, 0, 256, 192]  # all of it
    for name in ("niqe", "lr_psnr_y", "artifacts"):
        assert judges[name] == pytest.approx(expected[name], abs=1e-6), name
    assert body["input"]["judges"] is None
    assert body["output"]["verdict"] is None and body["input"]["verdict"] is None


def test_score_matches_in_process_nima(service) -> None:
    response = calls.post(service, "/v1/score", png_bytes(calls.CHELSEA))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (451, 300)
    assert 1.0 <= body["mean"] <= 10.0
    assert sum(body["distribution"]) == pytest.approx(1.0, abs=1e-5)
    probs = torch.tensor([body["distribution"]])
    assert body["mean"] == pytest.approx(float(mean_score(probs)[0]), abs=1e-5)
    assert body["std"] == pytest.approx(float(std_score(probs)[0]), abs=1e-5)
    # The same number as nie_core.inference.score with the same checkpoint, in process.
    expected = calls.in_process_score(service.checkpoints["nima"], calls.CHELSEA)
    assert body["mean"] == pytest.approx(expected, abs=1e-4)


def test_mdsr_scale_and_deblur_task(service) -> None:
    image = png_bytes(calls.COFFEE_SMALL)
    x3 = calls.post(service, "/v1/enhance", image, model="mdsr_tiny", scale=3)
    assert x3.status_code == 200, x3.text
    assert decode_png(x3.content).shape == (288, 384, 3)
    expected = calls.in_process_enhance(service.checkpoints["mdsr"], calls.COFFEE_SMALL, scale=3)
    assert np.abs(decode_png(x3.content).astype(int) - expected.astype(int)).max() <= 1
    # No model named: the first model of the task.
    deblurred = calls.post(service, "/v1/enhance", image, task="deblur")
    assert deblurred.status_code == 200, deblurred.text
    assert deblurred.headers["x-nie-model"] == "edsr_deblur"
    assert decode_png(deblurred.content).shape == (96, 128, 3)


def test_ensemble_matches_in_process_self_ensemble(service) -> None:
    crop = calls.COFFEE_SMALL[:48, :64]
    response = calls.post(
        service, "/v1/enhance", png_bytes(crop), model="edsr_x2_baseline", ensemble="true"
    )
    assert response.status_code == 200, response.text
    output = decode_png(response.content)
    plain = calls.in_process_enhance(service.checkpoints["baseline"], crop)
    ensembled = calls.in_process_enhance(service.checkpoints["baseline"], crop, self_ensemble=True)
    assert np.abs(output.astype(int) - ensembled.astype(int)).max() <= 1
    assert np.abs(output.astype(int) - plain.astype(int)).max() > 1  # it did ensemble


def test_tiled_output_equals_untiled(service) -> None:
    image = png_bytes(calls.COFFEE_SMALL)
    tiled = calls.post(service, "/v1/enhance", image, model="edsr_x2_hybrid", tile_size=16)
    whole = calls.post(service, "/v1/enhance", image, model="edsr_x2_hybrid", tile_size=4096)
    assert tiled.status_code == whole.status_code == 200
    a, b = decode_png(tiled.content).astype(int), decode_png(whole.content).astype(int)
    assert a.shape == b.shape == (192, 256, 3)
    # Float rounding may flip a value by one 8-bit level, never more (no seams).
    assert np.abs(a - b).max() <= 1
    assert (a != b).mean() < 1e-3


def test_compare_runs_each_model_and_keeps_the_result(service) -> None:
    response = calls.post(
        service,
        "/v1/compare",
        png_bytes(calls.COFFEE_SMALL),
        models="edsr_x2_baseline,edsr_x2_hybrid",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [o["name"] for o in body["outputs"]] == ["edsr_x2_baseline", "edsr_x2_hybrid"]
    assert [o["label"] for o in body["outputs"]] == ["baseline", "hybrid"]
    # Every output carries its judges and a verdict from nie_core.judging; the winner is the
    # one output no judge rates worse than the other (None when they disagree).
    verdicts = judge_outputs(
        {
            o["name"]: {k: v for k, v in o["judges"].items() if k != "region"}
            for o in body["outputs"]
        }
    )
    for output in body["outputs"]:
        assert output["judges"]["nima"] == output["score"]["mean"]
        assert set(output["judges"]) == {"nima", "niqe", "lr_psnr_y", "artifacts", "region"}
        verdict = verdicts[output["name"]]
        assert output["verdict"] == {"best": verdict.best, "reason": verdict.reason}
    assert body["winner"] == winner(verdicts)
    assert httpx.get(f"{service.url}/v1/results/{body['result_id']}", timeout=30).json() == body
    for item, size in [(body["input"], (96, 128, 3))] + [
        (o, (192, 256, 3)) for o in body["outputs"]
    ]:
        png = httpx.get(f"{service.url}{item['url']}", timeout=30)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert decode_png(png.content).shape == size
