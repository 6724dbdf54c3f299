"""Latency of POST /v1/enhance against the same enhancement run in process.

Deploys the service with one model (full-size EDSR baseline x2 with random weights, opt-in via
``allow_untrained``) on a local Ray cluster, then alternates: one HTTP request with a 256x256 PNG
(upload, decode, enhance in the replica, PNG encode, download), one in-process
``nie_core.inference.enhance`` call on the same image with the same model and thread count.
Reports the median (and spread) of each and the service's overhead.

Usage: python -m bench.serve_latency [--repeats 10] [--size 256] [--out results.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data
import torch
from PIL import Image

APP_NAME = "nie-bench"


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000.0 for s in seconds)
    return {
        "median_ms": statistics.median(ms),
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "n": len(ms),
    }


def measure(
    repeats: int = 10, size: int = 256, threads: int = 2, port: int = 8123
) -> dict[str, Any]:
    """Median /v1/enhance latency vs in-process ``enhance`` for a ``size`` x ``size`` image."""
    import httpx
    import ray
    from ray import serve

    from nie_core.config import config_from_dict
    from nie_core.data.images import to_tensor
    from nie_core.inference import enhance, fast_path_supported, prepare_model
    from nie_core.models import create_model
    from serve_app.app import build_app
    from serve_app.config import ServiceConfig

    config = config_from_dict(
        ServiceConfig,
        {
            "models": [{"name": "edsr_x2", "arch": "edsr_baseline", "arch_kwargs": {"scale": 2}}],
            "scorer": {"backbone": "mnasnet0_5", "replicas": {"num_cpus": 0.1}},
            "allow_untrained": True,
            "tile_size": max(size, 256),  # one tile: the same computation as in process
            "torch_threads": threads,
            "ingress": {"num_cpus": 0.1},
            "enhancer": {"num_cpus": 1.0},
        },
    )
    image = np.ascontiguousarray(skimage.data.astronaut()[:size, :size])
    payload = _png(image)

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = prepare_model(create_model("edsr_baseline", scale=2), "cpu", "auto")
    x = to_tensor(image).unsqueeze(0)

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=2, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(config), name=APP_NAME, route_prefix="/", blocking=False)
        url = f"http://127.0.0.1:{port}/v1/enhance"
        http_times: list[float] = []
        local_times: list[float] = []
        with httpx.Client(timeout=300) as client:

            def request() -> float:
                start = time.perf_counter()
                response = client.post(
                    url,
                    files={"image": ("a.png", payload, "image/png")},
                    data={"model": "edsr_x2"},
                )
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                with Image.open(io.BytesIO(response.content)) as out:
                    assert out.size == (2 * size, 2 * size)
                return elapsed

            def in_process() -> float:
                start = time.perf_counter()
                enhance(model, x, fast="auto")
                return time.perf_counter() - start

            for _ in range(2):  # warm-up: first calls pay for lazy initialisation
                request()
                in_process()
            for _ in range(repeats):  # interleaved, so machine noise hits both alike
                http_times.append(request())
                local_times.append(in_process())
    finally:
        serve.shutdown()
        if started_ray:
            ray.shutdown()

    http, local = _summary(http_times), _summary(local_times)
    return {
        "image": f"{size}x{size} RGB (astronaut crop), output {2 * size}x{2 * size}",
        "model": "edsr_baseline x2 (16 blocks, 64 features), random weights",
        "threads": threads,
        "fast_path": fast_path_supported("cpu"),
        "http_enhance": http,
        "in_process_enhance": local,
        "overhead_ms": http["median_ms"] - local["median_ms"],
        "ratio": http["median_ms"] / local["median_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch threads on both sides")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    args = parser.parse_args(argv)
    result = measure(args.repeats, args.size, args.threads, args.port)
    http, local = result["http_enhance"], result["in_process_enhance"]
    print(
        f"{result['image']}; {result['model']}; {result['threads']} threads; "
        f"fast path: {result['fast_path']}"
    )
    print(
        f"  POST /v1/enhance   median {http['median_ms']:8.1f} ms "
        f"(min {http['min_ms']:.1f}, max {http['max_ms']:.1f}, n={http['n']})"
    )
    print(
        f"  in-process enhance median {local['median_ms']:8.1f} ms "
        f"(min {local['min_ms']:.1f}, max {local['max_ms']:.1f}, n={local['n']})"
    )
    print(f"  service overhead   {result['overhead_ms']:8.1f} ms (x{result['ratio']:.2f})")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
