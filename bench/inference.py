"""Inference benchmark: model FLOP utilisation of ``nie_core.inference.enhance`` and the PSNR cost
of its fast path.

For edsr_baseline, edsr and mdsr (x2), the fast path (channels_last weights from
``prepare_model`` + bfloat16 autocast) and the float32 NCHW path (``fast=False``) are timed,
interleaved with square matrix products in bfloat16 and float32 that give the machine's practical
peak in the same run. Utilisation = convolution FLOP/s of ``enhance`` / matmul FLOP/s (a
multiply-add counts as 2 FLOPs; see :func:`bench.common.conv_flops`).

PSNR: no trained weights can be downloaded here, and a randomly initialised EDSR outputs a
near-constant image, whose bfloat16 rounding errors would be unrealistically small. So each
model gets *bilinear-like* weights (:func:`bilinear_like_weights_`): the head copies the image
into three feature channels, the upsampler interpolates them bilinearly, the tail copies them
out, and the randomly initialised residual body adds a small random detail on top. The network
then carries image-scale values through every layer like a trained one, and its output is a
plausible upscaled photograph (about bilinear quality). ``--weights`` uses a real edsr_baseline
x2 checkpoint instead. The PSNR of each path's output against the original photograph is taken
after rounding both to 8 bits (shave = scale, as in EDSR's evaluation); the target is the
difference between the two paths.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.common import (
    BenchResult,
    Target,
    conv_flops,
    matmul_candidates,
    photo,
    run_and_report,
    time_interleaved,
    unsettled_note,
)
from bench.machine import NO_BF16, NOT_APPLICABLE_NO_BF16, bf16_native
from nie_core.data.degradations import bicubic_downsample
from nie_core.data.images import to_tensor
from nie_core.inference import enhance, prepare_model
from nie_core.metrics import psnr_rgb
from nie_core.models import create_model
from nie_core.models.common import ResBlock, Upsampler

SCALE = 2
MFU_TARGET = 0.75  # of the bf16 matmul peak, edsr_baseline at 256 x 256
PSNR_TARGET_DB = 0.05


@dataclass(frozen=True)
class Case:
    """One model at one input size: at least ``repeats`` interleaved rounds, more (up to
    ``max_seconds`` of rounds) until the minima settle."""

    name: str
    lr_side: int
    repeats: int
    max_seconds: float


def cases(quick: bool, bf16: bool = True) -> list[Case]:
    """The models and sizes measured; smaller (a quarter of the FLOPs) where bf16 is not native:
    there only the float32 rate is measured, and float32 runs 2-3x slower than the fast path."""
    if quick:
        return [Case("edsr_baseline", 256, 3, 20), Case("edsr", 32, 2, 10), Case("mdsr", 64, 2, 10)]
    if not bf16:
        return [Case("edsr_baseline", 128, 3, 30), Case("edsr", 24, 2, 20), Case("mdsr", 64, 2, 20)]
    return [
        Case("edsr_baseline", 256, 4, 90),
        Case("edsr", 48, 3, 45),
        Case("mdsr", 128, 3, 45),
    ]


# --------------------------------------------------------------------------- weights


def _linear_phase_taps(phase: int, factor: int) -> torch.Tensor:
    """3-tap 1-D weights (at offsets -1, 0, +1) of bilinear upsampling by ``factor`` for output
    phase ``phase`` (half-pixel centres, as ``F.interpolate(align_corners=False)``)."""
    offset = (phase + 0.5) / factor - 0.5  # source position relative to the centre pixel
    if offset < 0:
        return torch.tensor([-offset, 1 + offset, 0.0])
    return torch.tensor([0.0, 1 - offset, offset])


def _set_copy_conv_(conv: nn.Conv2d) -> None:
    """Make ``conv`` copy input channels 0..2 to output channels 0..2 (3x3 kernels), on top of
    whatever it computes for the other output channels."""
    with torch.no_grad():
        conv.weight[:3].zero_()
        if conv.bias is not None:
            conv.bias[:3].zero_()
        for c in range(3):
            conv.weight[c, c, 1, 1] = 1.0


def _set_bilinear_upsampler_(upsampler: Upsampler) -> None:
    layers = list(upsampler)
    with torch.no_grad():
        for conv, shuffle in zip(layers[0::2], layers[1::2], strict=True):
            factor = shuffle.upscale_factor
            conv.weight.zero_()
            conv.bias.zero_()
            for c in range(3):
                for i in range(factor):
                    for j in range(factor):
                        taps = torch.outer(
                            _linear_phase_taps(i, factor), _linear_phase_taps(j, factor)
                        )
                        conv.weight[c * factor * factor + i * factor + j, c] = taps


def _residual_blocks(model: nn.Module) -> list[ResBlock]:
    return [module for module in model.modules() if isinstance(module, ResBlock)]


def bilinear_like_weights_(
    model: nn.Module, detail_rms: float = 0.01, calibration_side: int = 48
) -> nn.Module:
    """Turn an EDSR or MDSR into "bilinear upsampling + a small random detail" (in place).

    The head copies the (mean-shifted) image into feature channels 0..2, every upsampler
    interpolates those channels bilinearly and the tail copies them to the output. The residual
    blocks keep their random initialisation with their last convolution scaled by 0.1 (EDSR's
    residual scaling, which keeps a deep random body bounded), and the body's last convolution is
    scaled so that the body adds a random detail of RMS ``detail_rms`` to the image channels,
    measured on a ``calibration_side``-pixel crop of a photograph. Returns ``model``.
    """
    with torch.no_grad():
        _set_copy_conv_(model.head[0])
        for block in _residual_blocks(model):
            block.body[-1].weight.mul_(0.1)
            block.body[-1].bias.mul_(0.1)
        upsamplers = model.upsample if hasattr(model, "upsample") else [model.tail[0]]
        for upsampler in upsamplers:
            _set_bilinear_upsampler_(upsampler)
        tail_conv = model.tail[-1]
        tail_conv.weight.zero_()
        _set_copy_conv_(tail_conv)

        detail: list[torch.Tensor] = []
        handle = model.body.register_forward_hook(lambda m, i, out: detail.append(out[:, :3]))
        lr, _ = photo_pair(calibration_side)
        try:
            model(lr, SCALE) if hasattr(model, "scales") else model(lr)
        finally:
            handle.remove()
        gain = detail_rms / max(detail[0].square().mean().sqrt().item(), 1e-12)
        model.body[-1].weight.mul_(gain)
        model.body[-1].bias.mul_(gain)
    return model


def build_model(name: str, weights: str | None = None) -> nn.Module:
    """``name`` at x2 with bilinear-like weights, or with ``weights`` (edsr_baseline only)."""
    torch.manual_seed(0)
    if name.startswith("mdsr"):
        return bilinear_like_weights_(create_model(name, scales=(SCALE,))).eval()
    if weights is not None:
        return create_model(name, scale=SCALE, weights=weights).eval()
    return bilinear_like_weights_(create_model(name, scale=SCALE)).eval()


# --------------------------------------------------------------------------- measurement


def photo_pair(lr_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR (1, 3, s, s), HR (1, 3, 2s, 2s)): a centre crop of scikit-image's astronaut photo
    (resized with Pillow when the crop would exceed it) and its bicubic x2 downsampling."""
    from PIL import Image

    image = photo("astronaut.png")
    side = lr_side * SCALE
    if side > min(image.shape[:2]):
        image = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.LANCZOS))
    top = (image.shape[0] - side) // 2
    left = (image.shape[1] - side) // 2
    hr = np.ascontiguousarray(image[top : top + side, left : left + side])
    lr = bicubic_downsample(hr, SCALE)
    return to_tensor(lr)[None], to_tensor(hr)[None]


def measure_case(case: Case, weights: str | None, bf16: bool = True) -> dict[str, Any]:
    """Time ``enhance`` on ``case`` in float32 NCHW and (with ``bf16``) on the fast path,
    interleaved with the matmul peaks; PSNR of the outputs. Without ``bf16`` (emulated on this
    CPU) the fast path and the bf16 peak are left out and their entries are None."""
    reference_model = build_model(case.name, weights if case.name == "edsr_baseline" else None)
    fp32_model = prepare_model(copy.deepcopy(reference_model), "cpu", fast=False)
    fast_model = prepare_model(copy.deepcopy(reference_model), "cpu", fast=True)
    lr, hr = photo_pair(case.lr_side)
    flops = conv_flops(reference_model, lr, **({"scale": SCALE} if "mdsr" in case.name else {}))

    outputs: dict[str, torch.Tensor] = {}

    def enhance_with(label: str, model: nn.Module, fast: bool) -> Callable[[], None]:
        def go() -> None:
            outputs[label] = enhance(model, lr, scale=SCALE, fast=fast)

        return go

    peaks = matmul_candidates(flops_per_call=flops, bf16=bf16)
    candidates = {name: product for name, (product, _) in peaks.items()}
    if bf16:
        candidates["fast"] = enhance_with("fast", fast_model, True)
    candidates["fp32"] = enhance_with("fp32", fp32_model, False)
    timings = time_interleaved(
        candidates, repeats=case.repeats, balance=True, max_seconds=case.max_seconds
    )
    unsettled = unsettled_note(timings, case.name)

    peak = {name: flops_ / timings[name].best for name, (_, flops_) in peaks.items()}
    fp32_rate = flops / timings["fp32"].best
    psnr_fp32 = psnr_rgb(outputs["fp32"], hr, shave=SCALE, round_8bit=True).item()
    if not bf16:
        return {
            "lr_side": case.lr_side,
            "gflop": flops / 1e9,
            "fp32_gflops": fp32_rate / 1e9,
            "peak_fp32_gflops": peak["matmul_fp32"] / 1e9,
            "mfu_fp32_vs_fp32_peak": fp32_rate / peak["matmul_fp32"],
            "fp32_seconds_min": timings["fp32"].best,
            "fp32_seconds_median": timings["fp32"].median,
            "psnr_fp32_db": psnr_fp32,
            "fast_skipped": NO_BF16,
            "rounds": len(timings["fp32"].samples),
            "unsettled": unsettled,
        }
    fast_rate = flops / timings["fast"].best
    psnr_fast = psnr_rgb(outputs["fast"], hr, shave=SCALE, round_8bit=True).item()
    fast_8bit = torch.round(outputs["fast"] * 255)
    fp32_8bit = torch.round(outputs["fp32"] * 255)
    between = psnr_rgb(outputs["fast"], outputs["fp32"], round_8bit=True).item()
    return {
        "lr_side": case.lr_side,
        "gflop": flops / 1e9,
        "fast_gflops": fast_rate / 1e9,
        "fp32_gflops": fp32_rate / 1e9,
        "peak_bf16_gflops": peak["matmul_bf16"] / 1e9,
        "peak_fp32_gflops": peak["matmul_fp32"] / 1e9,
        "mfu_fast_vs_bf16_peak": fast_rate / peak["matmul_bf16"],
        "mfu_fp32_vs_fp32_peak": fp32_rate / peak["matmul_fp32"],
        "fast_over_fp32_speedup": timings["fp32"].best / timings["fast"].best,
        "fast_seconds_min": timings["fast"].best,
        "fast_seconds_median": timings["fast"].median,
        "fp32_seconds_min": timings["fp32"].best,
        "fp32_seconds_median": timings["fp32"].median,
        "psnr_fp32_db": psnr_fp32,
        "psnr_fast_db": psnr_fast,
        "psnr_change_db": psnr_fast - psnr_fp32,
        "psnr_fast_vs_fp32_db": between,  # +inf when the 8-bit outputs are identical
        "fraction_8bit_values_changed": (fast_8bit != fp32_8bit).float().mean().item(),
        "max_8bit_level_change": (fast_8bit - fp32_8bit).abs().max().item(),
        "rounds": len(timings["fast"].samples),
        "unsettled": unsettled,
    }


def _row(name: str, m: dict[str, Any]) -> list[Any]:
    head = [name, f"{m['lr_side']}x{m['lr_side']}", m["gflop"]]
    fp32 = [m["fp32_gflops"], f"{m['mfu_fp32_vs_fp32_peak']:.0%}"]
    if "fast_skipped" in m:
        return [*head, m["fast_skipped"], "-", *fp32, "-", "-", "-"]
    return [
        *head,
        m["fast_gflops"],
        f"{m['mfu_fast_vs_bf16_peak']:.0%}",
        *fp32,
        f"{m['fast_over_fp32_speedup']:.2f}x",
        f"{m['psnr_change_db']:+.4f}",
        m["psnr_fast_vs_fp32_db"],
    ]


def _targets(base: dict[str, Any]) -> list[Target]:
    mfu_name = "edsr_baseline 256x256 fast path / bf16 matmul peak"
    psnr_name = "edsr_baseline PSNR change from the fp32 output (8-bit), absolute"
    if "fast_skipped" in base:
        return [
            Target.skipped(mfu_name, MFU_TARGET, ">=", NOT_APPLICABLE_NO_BF16),
            Target.skipped(psnr_name, PSNR_TARGET_DB, "<=", NOT_APPLICABLE_NO_BF16, " dB"),
        ]
    return [
        Target(mfu_name, round(base["mfu_fast_vs_bf16_peak"], 3), MFU_TARGET, ">="),
        Target(psnr_name, round(abs(base["psnr_change_db"]), 4), PSNR_TARGET_DB, "<=", " dB"),
    ]


def run(quick: bool = False, weights: str | None = None) -> BenchResult:
    bf16 = bf16_native("cpu")
    measured = {case.name: measure_case(case, weights, bf16) for case in cases(quick, bf16)}
    peaks = ", ".join(
        (f"{m['peak_bf16_gflops']:.0f}/" if bf16 else "") + f"{m['peak_fp32_gflops']:.0f}"
        for m in measured.values()
    )
    weights_note = (
        f"weights: {os.path.basename(weights)} for edsr_baseline"
        if weights
        else "weights: bilinear-like (see bench/inference.py); no trained weights offline"
    )
    skipped_note = (
        []
        if bf16
        else [
            f"Fast path {NO_BF16} (bf16 autocast and bf16 matmuls are emulated here, 10-40x "
            "slower than float32): only float32 NCHW, which is what enhance(fast='auto') runs "
            "on this CPU, and the fp32 peak were measured; the bf16 targets do not apply."
        ]
    )
    return BenchResult(
        name="inference",
        title="Inference: model FLOP utilisation of nie_core.inference.enhance (x2)",
        headers=[
            "model",
            "LR input",
            "GFLOP",
            "fast GFLOP/s",
            "of bf16 peak",
            "fp32 GFLOP/s",
            "of fp32 peak",
            "fast speed-up",
            "PSNR change (dB)",
            "PSNR fast vs fp32 (dB)",
        ],  # fmt: skip
        rows=[_row(name, m) for name, m in measured.items()],
        targets=_targets(measured["edsr_baseline"]),
        notes=[
            *skipped_note,
            "fast = prepare_model(fast=True) + enhance(fast=True): channels_last weights, "
            "bfloat16 autocast; fp32 = enhance(fast=False) on the float32 NCHW model.",
            "FLOPs = convolution FLOPs, a multiply-add counted as 2 (elementwise work not "
            "counted); peaks = "
            + ("bf16/fp32" if bf16 else "fp32")
            + " 2048x2048 torch.matmul on all threads, as many "
            "products per call as the model's FLOPs, interleaved with each model: "
            + peaks
            + " GFLOP/s. Times are minima over interleaved rounds.",
            "PSNR change = PSNR(fast) - PSNR(fp32) against the original photo, 8-bit rounded, "
            f"shave {SCALE}; {weights_note}.",
            *[note for m in measured.values() for note in m["unsettled"]],
        ],
        details={"bf16_native": bf16, "models": measured},
    )


def main(argv: Sequence[str] | None = None) -> BenchResult:
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--weights", default=None)
    known, rest = parser.parse_known_args(argv)
    return run_and_report(
        lambda quick: run(quick, known.weights),
        rest,
        "Inference MFU and fast-path PSNR (--weights PATH: an edsr_baseline x2 checkpoint)",
    )


if __name__ == "__main__":
    main()
