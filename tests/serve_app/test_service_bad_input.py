"""Bad input to the service over real HTTP: every malformed, oversized or unknown request gets a
4xx JSON answer, never a 500; unusual but valid image modes are accepted.
"""

from __future__ import annotations

import io
import struct
import time
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.serve_app import calls
from tests.serve_app.conftest import decode_png, png_bytes

pytestmark = pytest.mark.ray


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


GOOD = png_bytes(calls.COFFEE_SMALL)
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
    response = calls.post(service, path, image, **fields)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert detail and " at 0x" not in str(detail)
    assert time.monotonic() - start < 10  # e.g. the bomb is refused from its header
    # The replica survived: a good request right after still works.
    good = calls.post(service, "/v1/score", GOOD)
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
    rgb = Image.fromarray(calls.COFFEE_SMALL)  # 128 wide, 96 high
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
    response = calls.post(service, "/v1/enhance", data, model="edsr_x2_baseline")
    assert response.status_code == 200, response.text
    assert decode_png(response.content).shape == (2 * height, 2 * width, 3)


def test_no_bad_input_reached_the_catch_all_handler(service) -> None:
    """Runs after the bad-input tests (file order): none of them was answered by the
    catch-all 500 handler of the ingress."""
    assert calls.internal_errors(service) == 0
