"""Memory benchmark: peak resident memory of x4 super-resolution of a 2048 x 2048 image with tiled
inference, against untiled inference, and the equality of their outputs.

Every measurement runs in a fresh Python process (``python -m bench.memory --child ...``) that
reports its own peak RSS (``getrusage``'s ``ru_maxrss``), so one measurement's allocations
cannot inflate another's. A child builds edsr_baseline x4 (random weights: memory does not depend
on them), makes the input (scikit-image's astronaut resized to the size asked for), runs
``nie_core.inference.enhance`` on the fast path and converts the output to a uint8 image.

Untiled x4 inference of a 2048 x 2048 image does not fit in this machine's memory (the second
upsampling stage alone holds a 256-channel 4096 x 4096 map and its 64-channel 8192 x 8192
shuffle, 8.6 GB each in bfloat16), so its peak is extrapolated from untiled runs at two smaller
sizes (peak RSS is affine in the pixel count). Output equality is checked at a size where both
fit.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.cli import run_and_report
from bench.report import BenchResult, Target

SCALE = 4
LIMIT_GB = 3.0
GB = 1e9


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``ru_maxrss`` is in KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _input_image(side: int):
    from PIL import Image

    from bench.photos import photo
    from nie_core.data.images import to_tensor

    image = Image.fromarray(photo("astronaut.png")).resize((side, side), Image.Resampling.LANCZOS)
    return to_tensor(np.asarray(image))[None]


def _model():
    import torch

    from nie_core.inference import prepare_model
    from nie_core.models import create_model

    torch.manual_seed(0)
    return prepare_model(create_model("edsr_baseline", scale=SCALE), "cpu", "auto")


def child_peak(side: int, tile_size: int | None) -> dict[str, Any]:
    """Upscale a ``side`` x ``side`` image x4 (tiles of ``tile_size``, None: untiled) to uint8;
    report the peak RSS before and after, and the seconds taken."""
    from nie_core.data.images import to_uint8
    from nie_core.inference import enhance

    model = _model()
    x = _input_image(side)
    rss_before = peak_rss_bytes()
    start = time.perf_counter()
    out = enhance(model, x, tile_size=tile_size)[0]
    peak_after_enhance = peak_rss_bytes()
    image = to_uint8(out)  # converts in row blocks, so no full-size float copy
    seconds = time.perf_counter() - start
    assert image.shape == (side * SCALE, side * SCALE, 3)
    return {
        "peak_rss": peak_rss_bytes(),
        "peak_rss_after_enhance": peak_after_enhance,
        "rss_before": rss_before,
        "seconds": seconds,
    }


def child_equality(side: int, tile_size: int) -> dict[str, Any]:
    """Tiled vs untiled outputs of one image, on the fast path and in float32."""
    import torch

    from nie_core.inference import enhance

    model = _model()
    x = _input_image(side)
    result: dict[str, Any] = {}
    for label, fast in (("fast", "auto"), ("fp32", False)):
        whole = enhance(model, x, fast=fast)
        tiled = enhance(model, x, tile_size=tile_size, fast=fast)
        diff = (whole - tiled).abs()
        levels_whole, levels_tiled = torch.round(whole * 255), torch.round(tiled * 255)
        result[label] = {
            "max_abs_diff": diff.max().item(),
            "fraction_8bit_differ": (levels_whole != levels_tiled).float().mean().item(),
        }
    return result


def _spawn(kind: str, **kwargs: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its JSON answer."""
    command = [
        sys.executable,
        "-m",
        "bench.memory",
        "--child",
        json.dumps({"kind": kind, **kwargs}),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"memory child {kind} {kwargs} failed ({completed.returncode}):\n{completed.stderr}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> BenchResult:
    side = 1024 if quick else 2048
    tile = 256
    small_sides = (128, 256) if quick else (256, 512)
    equality_side, equality_tile = (96, 40) if quick else (128, 48)

    tiled = _spawn("peak", side=side, tile_size=tile)
    untiled = {s: _spawn("peak", side=s, tile_size=None) for s in small_sides}
    equality = _spawn("equality", side=equality_side, tile_size=equality_tile)

    (s1, s2), (p1, p2) = small_sides, (untiled[s]["peak_rss"] for s in small_sides)
    per_pixel = (p2 - p1) / (s2 * s2 - s1 * s1)
    untiled_estimate = p2 + per_pixel * (side * side - s2 * s2)
    rows = [
        [f"{side}x{side} -> {side * SCALE}x{side * SCALE}, tiles of {tile}",
         tiled["peak_rss"] / GB, tiled["seconds"]],
        [f"{side}x{side} untiled (extrapolated)", untiled_estimate / GB, "-"],
        *[[f"{s}x{s} untiled", untiled[s]["peak_rss"] / GB, untiled[s]["seconds"]]
          for s in small_sides],
        [f"{side}x{side} tiled, peak before the uint8 conversion",
         tiled["peak_rss_after_enhance"] / GB, "-"],
        ["(process after import + model + input, before enhance)",
         tiled["rss_before"] / GB, "-"],
    ]  # fmt: skip
    from nie_core.inference import fast_path_supported

    path = "fast path" if fast_path_supported("cpu") else "float32: no fast path on this CPU"
    return BenchResult(
        name="memory",
        title=f"Memory: peak RSS of x{SCALE} super-resolution (edsr_baseline, {path})",
        headers=["run", "peak RSS (GB)", "seconds"],
        rows=rows,
        targets=[
            Target(
                f"{side}x{side} x{SCALE} tiled peak RSS",
                round(tiled["peak_rss"] / GB, 2),
                LIMIT_GB,
                "<=",
                " GB",
            ),
            Target(
                f"tiled == untiled: max abs difference ({equality_side}x{equality_side}, fp32)",
                equality["fp32"]["max_abs_diff"],
                1e-5,
                "<=",
            ),
        ],  # fmt: skip
        notes=[
            "Each run in its own process; peak RSS = ru_maxrss, including Python, torch and "
            "the model (the last row), the input and the float32 output "
            f"({side * SCALE}^2 x 3 x 4 bytes = {(side * SCALE) ** 2 * 12 / GB:.2f} GB) and its "
            "uint8 copy (made by nie_core.data.images.to_uint8, in row blocks: "
            "on the whole output at once it would add two float32 temporaries of the output's "
            "size).",
            f"Untiled {side}x{side} is extrapolated linearly in pixels from the two untiled "
            "runs; running it would exceed this machine's memory.",
            f"Tiled vs untiled at {equality_side}x{equality_side}, tiles of {equality_tile} "
            f"(overlap = receptive radius): fp32 max abs difference "
            f"{equality['fp32']['max_abs_diff']:.2e} ({equality['fp32']['fraction_8bit_differ']:.2%} "
            f"of 8-bit values differ); enhance(fast='auto') ({path}) max abs difference "
            f"{equality['fast']['max_abs_diff']:.2e} ({equality['fast']['fraction_8bit_differ']:.2%}"
            " of 8-bit values differ).",
        ],
        details={
            "tiled": tiled,
            "untiled": untiled,
            "untiled_estimate_bytes": untiled_estimate,
            "equality": equality,
        },
    )


def main(argv: Sequence[str] | None = None) -> BenchResult | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        request = json.loads(argv[1])
        kind = request.pop("kind")
        answer = child_peak(**request) if kind == "peak" else child_equality(**request)
        print(json.dumps(answer))
        return None
    return run_and_report(run, argv, "Peak RSS of tiled vs untiled x4 inference")


if __name__ == "__main__":
    main()
