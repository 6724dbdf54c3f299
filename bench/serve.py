"""Serving benchmark: the Ray Serve app (``serve_app``) against in-process inference.

Two copies of the application run side by side on a private local Ray instance (its own HTTP
port, so a service already running on this machine is not touched), built with
``serve_app.app.build_app`` from the same :class:`~serve_app.config.ServiceConfig` except for the
scorer's batching: ``/batched`` (``@serve.batch`` up to 16 images) and ``/unbatched``
(``max_batch_size`` 1). Models have random weights (``allow_untrained``): the cost does not
depend on them.

1. Latency of ``POST /v1/enhance`` (edsr_baseline x2, a 256 x 256 PNG, PNG answer) against the
   same work in process: decoding the PNG, ``nie_core.inference.enhance`` with the same threads
   and fast path, encoding the PNG with the ingress's encoder (and, for reference, ``enhance``
   alone). Interleaved rounds, minimum of each. The model step's time inside the replica comes
   from the response's ``Server-Timing`` header, which splits Serve's overhead from the
   computation's run-to-run noise (see the notes of the result).
2. Throughput of ``POST /v1/score`` with 16 concurrent clients, batched against unbatched,
   alternating between the two apps; the same through the Scorer's deployment handle (no HTTP,
   no ingress); NIMA's own images/s at batch 16 against batch 1 in process, on the replica's
   one thread; and the CPU time each image costs the machine, the clients and the Scorer
   replica, from which follows the most any batching could gain on this hardware.

The service runs in :mod:`bench.serve_service`, the two measurements are
:mod:`bench.serve_latency` and :mod:`bench.serve_throughput`, and :mod:`bench.serve_report`
works out the ratios and writes the table.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from bench.cli import run_and_report
from bench.photos import photo
from bench.report import BenchResult
from bench.serve_latency import measure_latency
from bench.serve_report import serve_result
from bench.serve_service import running_service, service_config
from bench.serve_throughput import measure_throughput, model_batch_rates

IMAGE_SIDE = 256


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def run(quick: bool = False) -> BenchResult:
    image = np.ascontiguousarray(
        photo("astronaut.png")[96 : 96 + IMAGE_SIDE, 128 : 128 + IMAGE_SIDE]
    )
    png = _png(image)
    threads = torch.get_num_threads()
    max_pixels = service_config(1, threads).max_pixels  # the ingress decodes with this budget
    # Measured before Ray starts, so that no replica competes with it.
    model_rates = model_batch_rates(image, repeats=3 if quick else 5)
    with running_service(threads) as urls:
        latency = measure_latency(urls["batched"], image, png, max_pixels, quick)
        throughput = measure_throughput(urls, image, png, quick)
    return serve_result(latency, throughput, model_rates, threads)


def main(argv: Sequence[str] | None = None) -> BenchResult:
    return run_and_report(run, argv, "Serve overhead and dynamic-batching gain")


if __name__ == "__main__":
    main()
