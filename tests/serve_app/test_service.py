"""The Serve application over real HTTP: round trips, bad inputs, tiling, a burst of clients,
reconfiguration without restart, and the web page in headless Chromium.

One application is deployed for the whole module (fixture ``service``); tests that change it
restore it before they end.
"""

from __future__ import annotations

import base64
import io
import re
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from nie_core.checkpoint import load_model
from nie_core.data.images import to_tensor, to_uint8
from nie_core.inference import enhance, score
from nie_core.models.nima import mean_score, std_score
from tests.serve_app.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.serve_app.conftest import decode_png, png_bytes, serve_deploy, write_serve_config

pytestmark = pytest.mark.ray

CHELSEA = skimage.data.chelsea()  # 300 x 451 RGB photograph
COFFEE_SMALL = skimage.data.coffee()[100:196, 200:328]  # 96 x 128 crop


def post(service, path: str, image: bytes | None, timeout: float = 60, **fields) -> httpx.Response:
    files = {"image": ("photo.png", image, "image/png")} if image is not None else None
    data = {key: str(value) for key, value in fields.items()}
    return httpx.post(f"{service.url}{path}", files=files, data=data, timeout=timeout)


def in_process_enhance(checkpoint: Path, image: np.ndarray, **kwargs) -> np.ndarray:
    model = load_model(checkpoint)
    out = enhance(model, to_tensor(image).unsqueeze(0), fast=False, **kwargs)
    return to_uint8(out[0])


def in_process_score(checkpoint: Path, image: np.ndarray) -> float:
    probs = score(load_model(checkpoint), to_tensor(image).unsqueeze(0))
    return float(mean_score(probs)[0])


def internal_errors(service) -> int:
    return httpx.get(f"{service.url}/healthz", timeout=30).json()["internal_errors"]


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
    response = post(service, "/v1/enhance", png_bytes(CHELSEA), model="edsr_x2_hybrid")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-nie-scale"] == "2"
    output = decode_png(response.content)
    assert output.shape == (600, 902, 3)
    # Same checkpoint, same nie_core code, float32 on both sides (tile_size 64 in the service).
    expected = in_process_enhance(service.checkpoints["hybrid"], CHELSEA)
    assert np.abs(output.astype(int) - expected.astype(int)).max() <= 1
    # Server-Timing splits the request: every step took some time, the model most of it.
    timings = server_timings(response)
    assert list(timings) == ["decode", "model", "transfer", "encode"]
    assert all(ms >= 0 for ms in timings.values()) and timings["model"] > 0
    assert timings["model"] > timings["decode"]


@pytest.mark.parametrize("how", ["format", "accept"])
def test_enhance_json_has_base64_png_and_nima_scores(service, how: str) -> None:
    image = png_bytes(COFFEE_SMALL)
    if how == "format":
        response = post(service, "/v1/enhance", image, model="edsr_x2_baseline", format="json")
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
    assert list(timings) == ["decode", "model", "transfer", "score", "encode"]
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
    direct = post(service, "/v1/score", image).json()
    assert direct["mean"] == pytest.approx(body["input"]["score"]["mean"], abs=1e-5)


def test_score_matches_in_process_nima(service) -> None:
    response = post(service, "/v1/score", png_bytes(CHELSEA))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (451, 300)
    assert 1.0 <= body["mean"] <= 10.0
    assert sum(body["distribution"]) == pytest.approx(1.0, abs=1e-5)
    probs = torch.tensor([body["distribution"]])
    assert body["mean"] == pytest.approx(float(mean_score(probs)[0]), abs=1e-5)
    assert body["std"] == pytest.approx(float(std_score(probs)[0]), abs=1e-5)
    # The same number as nie_core.inference.score with the same checkpoint, in process.
    expected = in_process_score(service.checkpoints["nima"], CHELSEA)
    assert body["mean"] == pytest.approx(expected, abs=1e-4)


def test_mdsr_scale_and_deblur_task(service) -> None:
    image = png_bytes(COFFEE_SMALL)
    x3 = post(service, "/v1/enhance", image, model="mdsr_tiny", scale=3)
    assert x3.status_code == 200, x3.text
    assert decode_png(x3.content).shape == (288, 384, 3)
    expected = in_process_enhance(service.checkpoints["mdsr"], COFFEE_SMALL, scale=3)
    assert np.abs(decode_png(x3.content).astype(int) - expected.astype(int)).max() <= 1
    # No model named: the first model of the task.
    deblurred = post(service, "/v1/enhance", image, task="deblur")
    assert deblurred.status_code == 200, deblurred.text
    assert deblurred.headers["x-nie-model"] == "edsr_deblur"
    assert decode_png(deblurred.content).shape == (96, 128, 3)


def test_ensemble_matches_in_process_self_ensemble(service) -> None:
    crop = COFFEE_SMALL[:48, :64]
    response = post(
        service, "/v1/enhance", png_bytes(crop), model="edsr_x2_baseline", ensemble="true"
    )
    assert response.status_code == 200, response.text
    output = decode_png(response.content)
    plain = in_process_enhance(service.checkpoints["baseline"], crop)
    ensembled = in_process_enhance(service.checkpoints["baseline"], crop, self_ensemble=True)
    assert np.abs(output.astype(int) - ensembled.astype(int)).max() <= 1
    assert np.abs(output.astype(int) - plain.astype(int)).max() > 1  # it did ensemble


def test_tiled_output_equals_untiled(service) -> None:
    image = png_bytes(COFFEE_SMALL)
    tiled = post(service, "/v1/enhance", image, model="edsr_x2_hybrid", tile_size=16)
    whole = post(service, "/v1/enhance", image, model="edsr_x2_hybrid", tile_size=4096)
    assert tiled.status_code == whole.status_code == 200
    a, b = decode_png(tiled.content).astype(int), decode_png(whole.content).astype(int)
    assert a.shape == b.shape == (192, 256, 3)
    # Float rounding may flip a value by one 8-bit level, never more (no seams).
    assert np.abs(a - b).max() <= 1
    assert (a != b).mean() < 1e-3


def test_compare_runs_each_model_and_keeps_the_result(service) -> None:
    response = post(
        service, "/v1/compare", png_bytes(COFFEE_SMALL), models="edsr_x2_baseline,edsr_x2_hybrid"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [o["name"] for o in body["outputs"]] == ["edsr_x2_baseline", "edsr_x2_hybrid"]
    assert [o["label"] for o in body["outputs"]] == ["baseline", "hybrid"]
    best = max(body["outputs"], key=lambda o: o["score"]["mean"])
    assert body["winner"] == best["name"]
    assert httpx.get(f"{service.url}/v1/results/{body['result_id']}", timeout=30).json() == body
    for item, size in [(body["input"], (96, 128, 3))] + [
        (o, (192, 256, 3)) for o in body["outputs"]
    ]:
        png = httpx.get(f"{service.url}{item['url']}", timeout=30)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert decode_png(png.content).shape == size


# --------------------------------------------------------------------------- bad input


def _png_with_header_size(width: int, height: int) -> bytes:
    """A valid tiny PNG whose IHDR claims ``width`` x ``height`` (a decompression bomb's
    header: decoding it would need width*height*3 bytes)."""
    data = bytearray(png_bytes(np.zeros((1, 1, 3), np.uint8)))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def _noise(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


GOOD = png_bytes(COFFEE_SMALL)
BAD_INPUTS = {
    # name: (path, image bytes or None, fields, expected status)
    "not_an_image": ("/v1/enhance", b"%PDF-1.4 definitely not a picture" * 10, {}, 415),
    "truncated_png": ("/v1/enhance", GOOD[: len(GOOD) // 2], {}, 415),
    "empty_file": ("/v1/score", b"", {}, 415),
    "score_not_an_image": ("/v1/score", b"GIF89a\x00garbage", {}, 415),
    "over_pixel_budget": ("/v1/enhance", png_bytes(np.zeros((640, 640, 3), np.uint8)), {}, 413),
    "decompression_bomb": ("/v1/score", _png_with_header_size(60_000, 60_000), {}, 413),
    "over_upload_size": ("/v1/enhance", png_bytes(_noise(590, 590)), {}, 413),
    "unknown_model": ("/v1/enhance", GOOD, {"model": "no_such_model"}, 404),
    "unknown_model_compare": ("/v1/compare", GOOD, {"models": "edsr_x2_hybrid,nope"}, 404),
    "scale_not_served": ("/v1/enhance", GOOD, {"model": "edsr_x2_baseline", "scale": 3}, 422),
    "scale_out_of_range": ("/v1/enhance", GOOD, {"scale": 7}, 422),
    "scale_not_a_number": ("/v1/enhance", GOOD, {"scale": "big"}, 422),
    "unknown_task": ("/v1/enhance", GOOD, {"task": "paint"}, 422),
    "model_of_other_task": ("/v1/enhance", GOOD, {"model": "edsr_deblur", "task": "sr"}, 422),
    "tile_too_small": ("/v1/enhance", GOOD, {"tile_size": 3}, 422),
    "bad_format": ("/v1/enhance", GOOD, {"format": "gif"}, 422),
    "missing_image": ("/v1/enhance", None, {"model": "edsr_x2_baseline"}, 422),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_json_error_not_500(service, case: str) -> None:
    path, image, fields, status = BAD_INPUTS[case]
    start = time.monotonic()
    response = post(service, path, image, **fields)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert detail and " at 0x" not in str(detail)
    assert time.monotonic() - start < 10  # e.g. the bomb is refused from its header
    # The replica survived: a good request right after still works.
    good = post(service, "/v1/score", GOOD)
    assert good.status_code == 200


def test_body_over_limit_refused_from_content_length(service) -> None:
    body = b"x" * (service.config.max_upload_bytes + 200_000)
    response = httpx.post(
        f"{service.url}/v1/score",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=zzz"},
        timeout=30,
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_unknown_result_is_404(service) -> None:
    assert httpx.get(f"{service.url}/v1/results/feedbeef", timeout=30).status_code == 404
    assert httpx.get(f"{service.url}/v1/results/feedbeef/input.png", timeout=30).status_code == 404


def _image_variants() -> dict[str, tuple[bytes, tuple[int, int]]]:
    """Uploads in unusual modes: (bytes, expected upright (height, width))."""
    rgb = Image.fromarray(COFFEE_SMALL)  # 128 wide, 96 high
    sixteen = Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    jpeg = io.BytesIO()
    rgb.save(jpeg, format="JPEG", exif=exif.tobytes())
    return {
        "grayscale": (png_bytes(rgb.convert("L")), (96, 128)),
        "palette": (png_bytes(rgb.convert("P", palette=Image.Palette.ADAPTIVE)), (96, 128)),
        "rgba": (png_bytes(rgb.convert("RGBA")), (96, 128)),
        "16bit": (png_bytes(sixteen), (96, 128)),
        "exif_rotated_jpeg": (jpeg.getvalue(), (128, 96)),
    }


@pytest.mark.parametrize("variant", ["grayscale", "palette", "rgba", "16bit", "exif_rotated_jpeg"])
def test_unusual_image_modes_are_accepted(service, variant: str) -> None:
    data, (height, width) = _image_variants()[variant]
    response = post(service, "/v1/enhance", data, model="edsr_x2_baseline")
    assert response.status_code == 200, response.text
    assert decode_png(response.content).shape == (2 * height, 2 * width, 3)


def test_no_bad_input_reached_the_catch_all_handler(service) -> None:
    """Runs after the bad-input tests (file order): none of them was answered by the
    catch-all 500 handler of the ingress."""
    assert internal_errors(service) == 0


# --------------------------------------------------------------------------- concurrency


def test_burst_of_concurrent_clients_all_get_correct_answers(service) -> None:
    from ray import serve

    small = COFFEE_SMALL[:32, :48]
    image = png_bytes(small)
    expected = in_process_enhance(service.checkpoints["baseline"], small)
    expected_mean = in_process_score(service.checkpoints["nima"], small)

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
        response = post(service, "/v1/enhance", png_bytes(COFFEE_SMALL), model="edsr_x2_hybrid")
        expected = in_process_enhance(service.checkpoints["spare"], COFFEE_SMALL)
        assert np.abs(decode_png(response.content).astype(int) - expected.astype(int)).max() <= 1
    finally:
        serve_deploy(service, service.serve_config_file)
        _wait_for(
            lambda: info("edsr_x2_hybrid")["fingerprint"] == before["edsr_x2_hybrid"]["fingerprint"]
        )
    assert info("edsr_x2_hybrid")["replica_pid"] == before["edsr_x2_hybrid"]["replica_pid"]


# --------------------------------------------------------------------------- web page


@needs_chromium
def test_swagger_ui_renders_offline(service) -> None:
    """/docs renders every endpoint in Chromium with requests to other hosts refused."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            outside: list[str] = []

            def only_loopback(route) -> None:
                if route.request.url.startswith(service.url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_loopback)
            page.goto(f"{service.url}/docs")
            page.wait_for_selector(".opblock-summary-path[data-path='/v1/enhance']")
            paths = page.eval_on_selector_all(
                ".opblock-summary-path", "els => els.map(e => e.dataset.path)"
            )
            assert {"/v1/enhance", "/v1/score", "/v1/compare", "/v1/models", "/healthz"} <= set(
                paths
            )
            assert outside == []
        finally:
            browser.close()


@needs_chromium
def test_web_page_upload_results_and_full_resolution_tab(service, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    photo = tmp_path / "coffee.png"
    photo.write_bytes(png_bytes(COFFEE_SMALL))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{service.url}/")
            page.wait_for_selector("#model-list input[value='edsr_x2_hybrid']")
            page.set_input_files("#file-input", str(photo))
            page.uncheck("#model-list input[value='mdsr_tiny']")
            page.wait_for_function("document.getElementById('preview').naturalWidth > 0")
            page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)
            page.click("#submit-button")
            page.wait_for_selector(".card[data-name='edsr_x2_hybrid'] .score-mean", timeout=60_000)
            assert "#/results/" in page.url

            cards = page.locator(".card")
            assert cards.count() == 3  # input + baseline + hybrid
            names = [cards.nth(i).get_attribute("data-name") for i in range(3)]
            assert names == ["input", "edsr_x2_baseline", "edsr_x2_hybrid"]
            means = [float(cards.nth(i).locator(".score-mean").inner_text()) for i in range(3)]
            assert all(1.0 <= m <= 10.0 for m in means)
            winner = page.locator(".card.winner")
            assert winner.count() == 1
            assert float(winner.locator(".score-mean").inner_text()) == max(means[1:])
            # Images are loaded (not broken) in the page.
            page.wait_for_function(
                "[...document.querySelectorAll('.card-image')].every(i => i.complete && i.naturalWidth > 0)"
            )
            page.screenshot(path=str(tmp_path / "results.png"), full_page=True)

            # Clicking an output opens the full-resolution PNG in a new tab.
            with context.expect_page() as new_tab:
                page.click(".card[data-name='edsr_x2_hybrid'] .image-link")
            tab = new_tab.value
            tab.wait_for_load_state()
            assert tab.url.endswith("/edsr_x2_hybrid.png")
            size = tab.evaluate(
                "[document.images[0].naturalWidth, document.images[0].naturalHeight]"
            )
            assert size == [256, 192]
            png = tab.request.get(tab.url)
            assert png.headers["content-type"] == "image/png"
            assert decode_png(png.body()).shape == (192, 256, 3)

            # Reloading the results page fetches the stored result from the server.
            page.reload()
            page.wait_for_selector(".card[data-name='edsr_x2_baseline'] .score-mean")
            assert page.locator(".card").count() == 3
        finally:
            browser.close()


# The web page's comparison view, favicon and offline docs, written in page_tests.py and run
# here so that they use this module's deployment (another deployment costs 1-2 minutes).
from tests.serve_app.page_tests import (  # noqa: E402, F401
    test_before_after_slider_works_by_keyboard,
    test_comparison_region_by_click_drag_and_keyboard_is_pixel_exact,
    test_docs_and_redoc_request_nothing_outside_the_service,
    test_page_and_full_resolution_tab_request_only_the_service_without_errors,
)
