"""The web page's comparison view, favicon and API docs in headless Chromium, over real HTTP
against the package's Serve application (fixture ``service``).

The comparison view's canvases are read back in the page (``toDataURL``, lossless) and compared
with the result PNGs fetched over HTTP: every magnified view must be the region of its image with
each pixel repeated zoom x zoom times, nothing smoothed.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serve_app import calls
from tests.serve_app.browser import NetworkLog
from tests.serve_app.conftest import decode_png, png_bytes

pytestmark = pytest.mark.ray

MODELS = ["edsr_x2_baseline", "edsr_x2_hybrid"]


# --------------------------------------------------------------------------- helpers


def open_results(browser, service, tmp_path: Path, log: NetworkLog | None = None):
    """A page showing the results of COFFEE_SMALL through the two x2 EDSR models, with the
    comparison view drawn. Returns (context, page, {name: image array from HTTP}). ``log``
    records the context's requests (without blocking any: the page fetches its favicon)."""
    photo = tmp_path / "coffee.png"
    photo.write_bytes(png_bytes(calls.COFFEE_SMALL))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if log is not None:
        log.attach(context, block_outside=False)
    page = context.new_page()
    page.goto(f"{service.url}/")
    page.wait_for_selector("#model-list input[value='edsr_x2_hybrid']")
    page.set_input_files("#file-input", str(photo))
    for box in page.locator("#model-list input").all():
        if box.get_attribute("value") not in MODELS:
            box.uncheck()
    page.click("#submit-button")
    page.wait_for_selector("#compare-view:not([hidden])[data-region]", timeout=60_000)
    result_id = page.url.rsplit("/", 1)[-1]
    images = {
        name: decode_png(
            httpx.get(f"{service.url}/v1/results/{result_id}/{name}.png", timeout=30).content
        )
        for name in ["input", *MODELS]
    }
    return context, page, images


def region(page) -> tuple[int, int, int, int]:
    """(x, y, size, zoom) of the comparison view, in output pixels."""
    x, y, size, zoom = page.get_attribute("#compare-view", "data-region").split(",")
    return int(x), int(y), int(size), int(zoom)


def canvas_pixels(page, selector: str) -> np.ndarray:
    """The canvas's pixels, read in the page (PNG data URL: lossless)."""
    data_url = page.eval_on_selector(selector, "c => c.toDataURL('image/png')")
    return decode_png(base64.b64decode(data_url.split(",", 1)[1]))


def magnified(image: np.ndarray, x: int, y: int, size: int, zoom: int, factor: int) -> np.ndarray:
    """What a view must show: the region (x, y, size in output pixels) of ``image``, which is
    ``factor`` times smaller than the outputs, each pixel repeated zoom * factor times."""
    x0, y0, side = x // factor, y // factor, size // factor
    crop = image[y0 : y0 + side, x0 : x0 + side]
    repeat = zoom * factor
    return crop.repeat(repeat, axis=0).repeat(repeat, axis=1)


def assert_views_pixel_exact(page, images: dict[str, np.ndarray]) -> None:
    """Every crop, both halves of the split view and the difference view show the current
    region exactly."""
    x, y, size, zoom = region(page)
    factors = {"input": 2, **dict.fromkeys(MODELS, 1)}
    expected = {n: magnified(images[n], x, y, size, zoom, f) for n, f in factors.items()}
    for name in factors:
        shown = canvas_pixels(page, f"#crops figure[data-name='{name}'] canvas")
        assert shown.shape == (size * zoom, size * zoom, 3)
        np.testing.assert_array_equal(shown, expected[name], err_msg=f"crop of {name}")
    before = page.input_value("#compare-before")
    after = page.input_value("#compare-after")
    np.testing.assert_array_equal(canvas_pixels(page, "#split-before"), expected[before])
    np.testing.assert_array_equal(canvas_pixels(page, "#split-after"), expected[after])

    note = page.inner_text("#crops figure[data-name='difference'] .diff-note")
    gain = int(re.search(r"× (\d+)", note).group(1)) if "×" in note else 1
    a = expected[before].astype(np.int32)
    b = expected[after].astype(np.int32)
    difference = np.minimum(255, np.abs(a - b) * gain).astype(np.uint8)
    shown = canvas_pixels(page, "#crops figure[data-name='difference'] canvas")
    np.testing.assert_array_equal(shown, difference, err_msg=note)


# --------------------------------------------------------------------------- comparison view


def test_comparison_region_by_click_drag_and_keyboard_is_pixel_exact(
    chromium, service, tmp_path: Path
) -> None:
    context, page, images = open_results(chromium, service, tmp_path)
    # Baseline against hybrid by default; a 64-pixel region (4x zoom of 256-pixel views),
    # centred in the 256 x 192 outputs.
    assert page.input_value("#compare-before") == "edsr_x2_baseline"
    assert page.input_value("#compare-after") == "edsr_x2_hybrid"
    assert region(page) == (96, 64, 64, 4)
    assert "Region 96, 64, 64×64 of 256×192 px" in page.inner_text("#region-status")
    assert_views_pixel_exact(page, images)
    page.locator("#compare-view").screenshot(path=str(tmp_path / "compare-default.png"))

    # A click on the overview centres the region there.
    overview = page.locator("#navigator-image").bounding_box()
    scale = 256 / overview["width"]
    page.mouse.click(overview["x"] + 40 / scale, overview["y"] + 150 / scale)
    x, y, size, _ = region(page)
    assert (x, y) == (8, 118)  # centre (40, 150), aligned to the x2 scale
    assert_views_pixel_exact(page, images)

    # Dragging moves it along; past the edge it stops at the image's border.
    page.mouse.move(overview["x"] + 100 / scale, overview["y"] + 100 / scale)
    page.mouse.down()
    page.mouse.move(overview["x"] + 150 / scale, overview["y"] + 60 / scale, steps=4)
    assert region(page)[:2] == (118, 28)
    page.mouse.move(overview["x"] + overview["width"] + 50, overview["y"] - 50, steps=2)
    page.mouse.up()
    assert region(page)[:2] == (256 - 64, 0)

    # Keyboard: Tab from the After select through the zoom choice to the overview, which
    # shows a focus ring; arrows move by a quarter region, Shift+arrow by a whole one.
    page.focus("#compare-after")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "zoom"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "navigator"
    ring = page.eval_on_selector(
        "#navigator", "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]"
    )
    assert ring == ["solid", "3px"]
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowDown")
    assert region(page)[:2] == (192 - 16, 16)
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Shift+ArrowDown")
    assert region(page)[:2] == (192 - 16 - 64, 16 + 64)
    assert_views_pixel_exact(page, images)
    page.keyboard.press("Home")
    assert region(page)[:2] == (0, 0)
    page.keyboard.press("End")
    assert region(page)[:2] == (256 - 64, 192 - 64)

    # Zoom 8x by keyboard (radio group arrows): a 32-pixel region around the same centre.
    page.focus("input[name='zoom'][value='4']")
    page.keyboard.press("ArrowRight")
    assert page.is_checked("input[name='zoom'][value='8']")
    assert region(page) == (256 - 48, 192 - 48, 32, 8)
    assert_views_pixel_exact(page, images)

    # Another pair: input against hybrid (the input is read at half the coordinates).
    page.select_option("#compare-before", "input")
    page.check("input[name='zoom'][value='2']")
    assert region(page)[2:] == (128, 2)
    assert_views_pixel_exact(page, images)
    page.locator("#compare-view").screenshot(path=str(tmp_path / "compare-input-2x.png"))
    page.screenshot(path=str(tmp_path / "results-page.png"), full_page=True)
    context.close()


def test_before_after_slider_works_by_keyboard(chromium, service, tmp_path: Path) -> None:
    context, page, images = open_results(chromium, service, tmp_path)
    x, y, size, zoom = region(page)
    side = size * zoom
    before = magnified(images["edsr_x2_baseline"], x, y, size, zoom, 1)
    after = magnified(images["edsr_x2_hybrid"], x, y, size, zoom, 1)
    assert not np.array_equal(before, after)

    def shown(percent: int) -> tuple[np.ndarray, np.ndarray]:
        """(what the split view shows, what it should show) away from the divider, the name
        labels and the rounded corners. The view's box may sit at a fractional position
        (Chromium draws the canvases snapped to whole pixels), so the screenshot is two pixels
        larger on each side and the best-matching placement is the one compared."""
        page.locator("#split").scroll_into_view_if_needed()
        box = page.locator("#split").bounding_box()  # in the viewport, as clip is
        x0, y0 = int(box["x"]) - 2, int(box["y"]) - 2
        clip = {"x": x0, "y": y0, "width": side + 4, "height": side + 4}
        shot = decode_png(page.screenshot(clip=clip)).astype(np.int32)
        cut = side * percent // 100
        expected = np.concatenate([before[:, :cut], after[:, cut:]], axis=1).astype(np.int32)
        keep = np.zeros((side, side), bool)
        keep[30 : side - 8, 8 : side - 8] = True  # below the labels, inside the corners
        keep[:, max(0, cut - 3) : cut + 3] = False  # the divider line
        placements = [shot[dy : dy + side, dx : dx + side] for dy in range(5) for dx in range(5)]
        best = min(placements, key=lambda p: np.count_nonzero((p != expected)[keep]))
        return best[keep], expected[keep]

    def assert_split_at(percent: int) -> None:
        assert page.input_value("#split-slider") == str(percent)
        text = page.get_attribute("#split-slider", "aria-valuetext")
        assert text.startswith(f"{percent} %: edsr_x2_baseline left")
        clip = page.eval_on_selector("#split-after", "e => getComputedStyle(e).clipPath")
        assert clip == f"inset(0px 0px 0px {percent}%)"
        np.testing.assert_array_equal(*shown(percent), err_msg=f"divider at {percent} %")

    assert_split_at(50)
    page.focus("#split-slider")
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    assert_split_at(40)
    page.screenshot(path=str(tmp_path / "slider-40.png"), full_page=True)
    page.keyboard.press("End")
    assert_split_at(100)  # all before
    page.keyboard.press("Home")
    assert_split_at(0)  # all after
    # Dragging on the split view moves the divider too.
    box = page.locator("#split").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2, steps=3)
    page.mouse.up()
    assert_split_at(25)
    page.locator("#compare-view").screenshot(path=str(tmp_path / "slider-25.png"))
    context.close()


# --------------------------------------------------------------------------- favicon, docs


def test_page_and_full_resolution_tab_request_only_the_service_without_errors(
    chromium, service, tmp_path: Path
) -> None:
    """No 404 (the favicon) and no request to another host from the page, the full-resolution
    tab or the icon. Playwright reports no /favicon.ico request (Chromium's own, or the page's),
    so the page fetches and decodes the icon itself and the test checks the answers."""
    log = NetworkLog()
    context, page, _ = open_results(chromium, service, tmp_path, log)
    with context.expect_page() as new_tab:
        page.click(".card[data-name='edsr_x2_hybrid'] .image-link")
    tab = new_tab.value
    tab.wait_for_load_state()
    assert tab.url.endswith("/edsr_x2_hybrid.png")

    tab.goto(f"{service.url}/")
    icon = tab.evaluate("fetch('favicon.ico').then(r => [r.status, r.headers.get('content-type')])")
    assert icon == [200, "image/x-icon"]
    sizes = tab.evaluate(
        """async () => {
            const sizes = [];
            for (const href of ['favicon.ico', document.querySelector('link[rel=icon]').href]) {
                const img = new Image();
                img.src = href;
                await img.decode();
                sizes.push(img.naturalWidth);
            }
            return sizes;
        }"""
    )
    assert all(width >= 16 for width in sizes), sizes
    tab.wait_for_load_state("networkidle")
    page.screenshot(path=str(tmp_path / "results.png"), full_page=True)
    assert log.errors == []
    assert log.outside == []
    assert any(url.endswith("/edsr_x2_hybrid.png") for url in log.requests)
    context.close()


def test_docs_and_redoc_request_nothing_outside_the_service(chromium, service) -> None:
    assert (
        b"cdn.redoc.ly" not in httpx.get(f"{service.url}/docs-assets/redoc.standalone.js").content
    )
    log = NetworkLog()
    context = chromium.new_context()
    log.attach(context)
    page = context.new_page()
    page.goto(f"{service.url}/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/v1/compare']")
    page.wait_for_load_state("networkidle")
    page.goto(f"{service.url}/redoc")
    page.wait_for_selector("h1:has-text('NIE: neural image enhancement')", timeout=30_000)
    page.wait_for_selector("text='/v1/compare'")
    page.wait_for_load_state("networkidle")
    assert log.outside == []
    assert log.errors == []
    assert any("/docs-assets/redoc.standalone.js" in url for url in log.requests)
    context.close()
