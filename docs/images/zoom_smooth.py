"""Write docs/images/zoom_smooth.png: a smooth area at 4x zoom, the demo's models side by side.

    .venv/bin/python docs/images/zoom_smooth.py [--workdir .] [--image 0805_smooth.png]

For one unseen crop with large smooth, out-of-focus areas (``data/photos/unseen_crops_384``,
written by ``nie demo``), the x2 outputs of the demo's gaming probe (plain hybrid loss), hybrid
model (with remedies) and L2 model, beside the reference, are cut at the same 96 x 96 window (the
one where the probe adds the most high-pass energy over the reference, so where a pattern would
show) and enlarged 4x with nearest-neighbour (pixels stay visible). Labels are drawn above each
panel. The models come from ``runs/demo_summary.json``'s run folders under the workdir.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from nie_core.checkpoint import load_model  # noqa: E402
from nie_core.data.degradations import bicubic_downsample  # noqa: E402
from nie_core.data.images import read_image, to_tensor, to_uint8  # noqa: E402
from nie_core.inference import enhance  # noqa: E402

OUT = REPO / "docs" / "images" / "zoom_smooth.png"
WINDOW = 96  # px of the output shown
ZOOM = 4
RUNS = {  # panel label -> run folder under runs/ (the demo's recipes' run names)
    "gaming probe (plain hybrid)": "demo-edsr_baseline-x2-gaming-probe",
    "hybrid (remedies)": "demo-edsr_baseline-x2-hybrid",
    "L2": "demo-edsr_baseline-x2-l2",
}


def _highpass(image: np.ndarray) -> np.ndarray:
    luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    padded = np.pad(luma, 1, mode="reflect")
    mean = sum(
        padded[i : i + luma.shape[0], j : j + luma.shape[1]] for i in range(3) for j in range(3)
    )
    return luma - mean / 9.0


def _window(probe: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    """Top-left of the WINDOW with the most high-pass energy the probe adds over the reference."""
    excess = _highpass(probe) ** 2 - _highpass(reference) ** 2
    best, where = -np.inf, (0, 0)
    for top in range(0, probe.shape[0] - WINDOW + 1, 12):
        for left in range(0, probe.shape[1] - WINDOW + 1, 12):
            value = excess[top : top + WINDOW, left : left + WINDOW].mean()
            if value > best:
                best, where = value, (top, left)
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".", help="the demo's working directory")
    parser.add_argument("--image", default="0805_smooth.png", help="an unseen crop's file name")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    reference = read_image(workdir / "data" / "photos" / "unseen_crops_384" / args.image)
    lr = to_tensor(bicubic_downsample(reference, 2))[None]
    outputs = {}
    for label, run in RUNS.items():
        model = load_model(workdir / "runs" / run / "best").eval()
        outputs[label] = to_uint8(enhance(model, lr, scale=2, fast=False)[0].clamp(0, 1))
    top, left = _window(outputs["gaming probe (plain hybrid)"], reference)
    panels = {**outputs, "reference": reference}
    side, label_h, gap = WINDOW * ZOOM, 22, 8
    sheet = Image.new("RGB", (len(panels) * (side + gap) - gap, side + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, image) in enumerate(panels.items()):
        crop = Image.fromarray(image[top : top + WINDOW, left : left + WINDOW])
        x = i * (side + gap)
        sheet.paste(crop.resize((side, side), Image.Resampling.NEAREST), (x, label_h))
        draw.text((x + 4, 4), label, fill="black")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    info = {"image": args.image, "window": [top, left, WINDOW], "zoom": ZOOM, "out": args.out}
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
