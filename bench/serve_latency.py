"""The serving benchmark's latency measurement: ``POST /v1/enhance`` against the same work in
process, each call split by its ``Server-Timing`` header into the model step and the rest.

The in-process side decodes the PNG, runs ``nie_core.inference.enhance`` with the same threads
and fast path and encodes the PNG with the ingress's encoder; for reference, ``enhance`` alone
and the Enhancer's deployment handle (no HTTP, no PNG) are timed too. All four alternate in
interleaved rounds (minimum of each).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.timing import Timing, time_interleaved


@dataclass
class Latency:
    """Each candidate's timing, and per call: (seconds, model milliseconds) of the HTTP and the
    in-process pipeline calls, model milliseconds of the handle calls."""

    timings: dict[str, Timing] = field(default_factory=dict)
    http: list[tuple[float, float]] = field(default_factory=list)
    pipeline: list[tuple[float, float]] = field(default_factory=list)
    handle: list[float] = field(default_factory=list)


def _server_timing(response) -> dict[str, float]:
    """An HTTP response's ``Server-Timing`` header as {name: milliseconds}."""
    timings = {}
    for entry in response.headers.get("server-timing", "").split(","):
        name, _, rest = entry.strip().partition(";dur=")
        if rest:
            timings[name] = float(rest.split(";")[0])
    return timings


def measure_latency(
    url: str, image: np.ndarray, png: bytes, max_pixels: int | None, quick: bool
) -> Latency:
    """Time ``png`` (the PNG of ``image``) through ``url``/v1/enhance (the batched app), through
    the Enhancer handle of that app and in process; ``max_pixels`` is the ingress's budget."""
    import httpx
    from ray import serve

    from nie_core.data.images import decode_image, encode_png, to_tensor, to_uint8
    from nie_core.inference import enhance, prepare_model
    from nie_core.models import create_model
    from nie_core.runtime import keep_freed_memory

    measured = Latency()
    with httpx.Client(timeout=120) as client:
        # The in-process side is set up as the Enhancer replica is.
        keep_freed_memory()
        torch.manual_seed(0)
        model = prepare_model(create_model("edsr_baseline", scale=2), "cpu", "auto")

        # The model part of a call is the same work on both sides (to_tensor + enhance +
        # to_uint8): in the replica it is the Server-Timing "model" entry, in process it is
        # timed around the same three calls.
        def model_step(array: np.ndarray) -> tuple[np.ndarray, float]:
            start = time.perf_counter()
            out = to_uint8(enhance(model, to_tensor(array)[None], fast="auto")[0])
            return out, (time.perf_counter() - start) * 1000.0

        def in_process_pipeline() -> bytes:
            start = time.perf_counter()
            out, model_ms = model_step(decode_image(png, max_pixels))
            encoded = encode_png(out)
            measured.pipeline.append((time.perf_counter() - start, model_ms))
            return encoded

        def in_process_enhance() -> None:
            model_step(image)

        enhancer = serve.get_deployment_handle("Enhancer_edsr_x2", app_name="batched")

        def through_handle() -> None:
            _, model_ms = enhancer.enhance.remote(image, 2, False, None).result()
            measured.handle.append(model_ms)

        def over_http() -> bytes:
            start = time.perf_counter()
            answer = client.post(
                f"{url}/v1/enhance", files={"image": ("x.png", png)}, data={"model": "edsr_x2"}
            )
            seconds = time.perf_counter() - start
            answer.raise_for_status()
            measured.http.append((seconds, _server_timing(answer)["model"]))
            return answer.content

        expected_shape = (image.shape[0] * 2, image.shape[1] * 2, 3)
        served = decode_image(over_http(), None)
        if served.shape != expected_shape:
            raise RuntimeError(f"/v1/enhance answered {served.shape}, not {expected_shape}")
        measured.timings = time_interleaved(
            # Served and in-process calls alternate, so whatever one side leaves behind
            # (processes finishing their part of a request) falls on the other side alike.
            # With both served calls back to back, the replica's model step measured 10-15%
            # slower than in process; alternating, within 2%.
            {
                "pipeline": in_process_pipeline,
                "http": over_http,
                "enhance": in_process_enhance,
                "handle": through_handle,
            },
            repeats=3 if quick else 12,
            max_seconds=15 if quick else 120,
        )
    return measured
