"""Write docs/images/page_comparison.png: the web page's comparison view in headless Chromium.

    .venv/bin/python docs/images/page_comparison.py            # writes the PNG
    .venv/bin/python docs/images/page_comparison.py --serve    # or only serves the page, to look

The page is served by the service's own FastAPI app (serve_app.api.create_api) on 127.0.0.1,
with the deployments replaced by in-process stand-ins (no Ray cluster needed) that run the models
`nie serve` runs before `nie demo` has trained any: both edsr_x2_baseline and edsr_x2_hybrid fall
back to the shipped zoo EDSR (zoo:edsr_baseline-x2@nie-photos, so their outputs are the same),
and the zoo NIMA scores. The screenshot compares the input with the output, where the difference
shows. Needs Chromium at /usr/bin/chromium (make chromium). About 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from nie_core.config import config_from_dict  # noqa: E402
from nie_tracking.loading import load_enhancer, load_scorer  # noqa: E402
from serve_app.api import ApiService, create_api  # noqa: E402
from serve_app.config import ServiceConfig  # noqa: E402
from serve_app.results import ResultCache  # noqa: E402
from tests.serve_app.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

OUT = REPO / "docs" / "images" / "page_comparison.png"
ZOO_EDSR = "zoo:edsr_baseline-x2@nie-photos"
ZOO_NIMA = "zoo:nima@nie-quality"


class Handle:
    """``handle.method.remote(*args)`` -> awaitable, like a Serve DeploymentHandle."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> SimpleNamespace:
        method = getattr(self._target, name)

        async def remote(*args: Any) -> Any:
            return await asyncio.to_thread(method, *args)

        return SimpleNamespace(remote=remote)


class InProcessEnhancer:
    def __init__(self, name: str, label: str, source: str) -> None:
        self.name, self.label = name, label
        self.model = load_enhancer(source)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, **self.model.describe()}

    def enhance(self, image: np.ndarray, scale: int, ensemble: bool, tile: int | None) -> Any:
        from nie_core.data.images import to_tensor, to_uint8
        from nie_core.inference import enhance

        start = time.perf_counter()
        out = enhance(self.model.module, to_tensor(image).unsqueeze(0), scale=scale, fast=False)
        return to_uint8(out[0]), (time.perf_counter() - start) * 1000.0


class InProcessScorer:
    def __init__(self, source: str) -> None:
        self.model = load_scorer(source, backbone="efficientnet_lite0")

    def info(self) -> dict[str, Any]:
        return {**self.model.describe(), "max_batch_size": 1}

    def score(self, image: np.ndarray) -> dict[str, Any]:
        from nie_core.data.images import to_tensor
        from nie_core.inference import score
        from nie_core.models.nima import mean_score, std_score

        probs = score(self.model.module, to_tensor(image).unsqueeze(0))
        return {
            "mean": float(mean_score(probs)[0]),
            "std": float(std_score(probs)[0]),
            "distribution": [float(p) for p in probs[0]],
        }


def build_app() -> Any:
    models = [("edsr_x2_baseline", "baseline"), ("edsr_x2_hybrid", "hybrid")]
    config = config_from_dict(
        ServiceConfig,
        {
            "models": [{"name": n, "label": lab, "source": ZOO_EDSR} for n, lab in models],
            "scorer": {"source": ZOO_NIMA, "backbone": "efficientnet_lite0"},
        },
    )
    enhancers = {n: Handle(InProcessEnhancer(n, lab, ZOO_EDSR)) for n, lab in models}
    service = ApiService(
        config, Handle(InProcessScorer(ZOO_NIMA)), enhancers, Handle(ResultCache(8, 10**8))
    )
    return create_api(service)


def start_server(app: Any) -> tuple[str, Any]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def photo() -> bytes:
    """A 120 x 160 crop of scikit-image's 'chelsea' (the cat's eye and fur), as PNG."""
    import skimage.data
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()[40:160, 120:280]).save(buffer, format="PNG")
    return buffer.getvalue()


def screenshot(url: str, out: Path, tmp: Path) -> None:
    from playwright.sync_api import sync_playwright

    image = tmp / "chelsea-crop.png"
    image.write_bytes(photo())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/")
            page.wait_for_selector("#model-list input[value='edsr_x2_hybrid']")
            page.set_input_files("#file-input", str(image))
            page.click("#submit-button")
            page.wait_for_selector("#compare-view:not([hidden])", timeout=120_000)
            page.select_option("#compare-before", "input")
            page.select_option("#compare-after", "edsr_x2_hybrid")
            page.check("input[name='zoom'][value='4']")
            # The region around the cat's eye: click there on the overview.
            box = page.locator("#navigator-image").bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.5)
            page.locator("#compare-view").screenshot(path=str(out))
        finally:
            browser.close()


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve the page until Ctrl-C")
    args = parser.parse_args()
    url, server = start_server(build_app())
    try:
        if args.serve:
            print(f"serving {url}/ (Ctrl-C to stop)", flush=True)
            while True:
                time.sleep(1)
        with tempfile.TemporaryDirectory() as tmp:
            screenshot(url, OUT, Path(tmp))
        print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size // 1024} KiB)")
    finally:
        server.should_exit = True


if __name__ == "__main__":
    main()
