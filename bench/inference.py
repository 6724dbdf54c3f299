"""Inference benchmark: model FLOP utilisation of ``nie_core.inference.enhance`` and the PSNR cost
of its fast path.

For edsr_baseline, edsr and mdsr (x2), the fast path (channels_last weights from
``prepare_model`` + bfloat16 autocast) and the float32 NCHW path (``fast=False``) are timed,
interleaved with square matrix products in bfloat16 and float32 that give the machine's practical
peak in the same run. Utilisation = convolution FLOP/s of ``enhance`` / matmul FLOP/s (a
multiply-add counts as 2 FLOPs; see :mod:`bench.flops`).

PSNR: no trained weights can be downloaded here, and a randomly initialised EDSR outputs a
near-constant image, whose bfloat16 rounding errors would be unrealistically small. So each
model gets *bilinear-like* weights (:func:`bench.bilinear_weights.bilinear_like_weights_`):
bilinear upsampling plus a small random detail computed through every layer, so that the network
carries image-scale values like a trained one and outputs a plausible upscaled photograph (about
bilinear quality). ``--weights`` uses a real edsr_baseline x2 checkpoint instead. The PSNR of
each path's output against the original photograph is taken after rounding both to 8 bits
(shave = scale, as in EDSR's evaluation); the target is the difference between the two paths.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.bilinear_weights import bilinear_like_weights_
from bench.cli import run_and_report
from bench.flops import conv_flops, matmul_candidates
from bench.machine import NO_BF16, NOT_APPLICABLE_NO_BF16, bf16_native
from bench.photos import photo_pair
from bench.report import BenchResult, Target
from bench.timing import time_interleaved, unsettled_note
from nie_core.inference import enhance, prepare_model
from nie_core.metrics import psnr_rgb
from nie_core.models import create_model

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


def build_model(name: str, weights: str | None = None) -> nn.Module:
    """``name`` at x2 with bilinear-like weights, or with ``weights`` (edsr_baseline only)."""
    torch.manual_seed(0)
    if name.startswith("mdsr"):
        return bilinear_like_weights_(create_model(name, scales=(SCALE,))).eval()
    if weights is not None:
        return create_model(name, scale=SCALE, weights=weights).eval()
    return bilinear_like_weights_(create_model(name, scale=SCALE)).eval()


def measure_case(case: Case, weights: str | None, bf16: bool = True) -> dict[str, Any]:
    """Time ``enhance`` on ``case`` in float32 NCHW and (with ``bf16``) on the fast path,
    interleaved with the matmul peaks; PSNR of the outputs. Without ``bf16`` (emulated on this
    CPU) the fast path and the bf16 peak are left out and their entries are None."""
    reference_model = build_model(case.name, weights if case.name == "edsr_baseline" else None)
    fp32_model = prepare_model(copy.deepcopy(reference_model), "cpu", fast=False)
    fast_model = prepare_model(copy.deepcopy(reference_model), "cpu", fast=True)
    lr, hr = photo_pair(case.lr_side, SCALE)
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
