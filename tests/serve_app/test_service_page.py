"""The web page and the Swagger UI in headless Chromium, offline, against the running service:
upload, results, the full-resolution tab.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.serve_app import calls
from tests.serve_app.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.serve_app.conftest import decode_png, png_bytes

pytestmark = pytest.mark.ray


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
    photo.write_bytes(png_bytes(calls.COFFEE_SMALL))
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
            # The "best" badge follows the served verdicts (not the highest NIMA); a card
            # without it says which judge disagrees.
            result_id = page.url.rsplit("/", 1)[-1]
            body = httpx.get(f"{service.url}/v1/results/{result_id}", timeout=30).json()
            best = {o["name"] for o in body["outputs"] if o["verdict"]["best"]}
            winners = page.locator(".card.winner")
            assert {winners.nth(i).get_attribute("data-name") for i in range(winners.count())} == (
                best
            )
            for output in body["outputs"]:
                note = page.locator(f".card[data-name='{output['name']}'] .verdict-note")
                if output["name"] in best:
                    assert note.is_hidden()
                else:
                    assert note.inner_text() == f"Not best: {output['verdict']['reason']}."
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
