"""CUDA benchmark (``python -m bench.run_all --device cuda``): NIE's training and inference against
a plain EDSR-style reference (:mod:`bench.reference`), each a ratio measured in one run.

NIE's side is NIE's real code: the training step of ``ray_jobs.enhancer.train_loop`` as
:func:`bench.training.make_step` runs it (bf16 autocast + channels_last where
``fast_path_supported``), ``nie_core.inference.enhance`` on ``prepare_model(..., "auto")`` and
``nie_core.inference.score``. Every candidate ends with a device synchronisation, so wall time
covers the GPU's work. ``--device cpu --quick`` runs the same code at tiny sizes (the tests).

    python -m bench.gpu --device cuda            # the table of issue 13 (a few minutes)
    python -m bench.gpu --device cpu --quick     # smoke run of every code path, tiny sizes
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from bench.cli import timed_run
from bench.flops import conv_flops, matmul_candidates
from bench.machine import NO_CUDA, bf16_native
from bench.reference import reference_infer, reference_model, reference_train_step
from bench.report import BenchResult, Target, results_dir, write_result
from bench.timing import time_interleaved, unsettled_note
from bench.training import HYBRID_RECIPE, L2_RECIPE, describe_loss, make_step, photo_batch, recipe
from nie_core.inference import enhance, fast_path_supported, prepare_model, score
from nie_core.models import create_model


@dataclass(frozen=True)
class Sizes:
    batch: int = 16
    lr_patch: int = 48
    small: dict[str, int] | None = None  # edsr_baseline's shape (None: 16 blocks x 64 features)
    big: dict[str, int] | None = None  # full EDSR's shape (None: 32 blocks x 256 features)
    infer_side: int = 512
    nima_side: int = 224
    nima_batches: tuple[int, ...] = (1, 16, 64)
    peak_side: int = 8192
    repeats: int = 5
    max_seconds: float = 60.0


QUICK = Sizes(
    2, 12, {"n_resblocks": 1, "n_feats": 8}, {"n_resblocks": 1, "n_feats": 16}, 16, 32, (1, 2),
    128, 1, 0.0,
)  # fmt: skip


def _synced(device: torch.device, run: Callable[[], object]) -> Callable[[], None]:
    def go() -> None:
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return go


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _time(device: torch.device, sizes: Sizes, candidates: dict[str, Callable[[], object]]):
    synced = {name: _synced(device, run) for name, run in candidates.items()}
    for run in synced.values():  # compilation, cuDNN's algorithm search, allocator growth:
        run()  # kept out of time_interleaved's warm-up, which sets each one's repetitions
    return time_interleaved(
        synced, repeats=sizes.repeats, balance=True, max_seconds=sizes.max_seconds
    )


def measure_training(device: torch.device, sizes: Sizes, backend: str) -> dict[str, Any]:
    """edsr_baseline x2: reference, NIE L2, NIE hybrid, NIE L2 under torch.compile; full EDSR:
    reference and NIE, with the bf16 (or fp32) matmul peak."""
    fast = fast_path_supported(device)
    lr, hr = photo_batch(batch=sizes.batch, lr_patch=sizes.lr_patch)
    on: dict[str, Any] = {"device": str(device), **(sizes.small or {})}
    l2, hybrid = recipe(L2_RECIPE), recipe(HYBRID_RECIPE)
    base = {
        "reference": reference_train_step(
            reference_model("edsr_baseline", 2, **(sizes.small or {})).to(device),
            lr.to(device),
            hr.to(device),
        ),
        "nie_l2": make_step(fast, l2, lr, hr, **on),
        "nie_hybrid": make_step(fast, hybrid, lr, hr, **on),
        "nie_l2_compiled": make_step(fast, l2, lr, hr, compile_model=backend, **on),
    }
    base_t = _time(device, sizes, base)
    del base
    _free(device)
    big_shape = sizes.big or {}
    big_model = create_model("edsr", scale=2, **big_shape)
    step_flops = 3 * conv_flops(big_model, lr)
    bf16 = bf16_native(device) and fast
    peaks = matmul_candidates(step_flops, sizes.peak_side, bf16=bf16, device=str(device))
    big = {
        "reference_edsr": reference_train_step(
            reference_model("edsr", 2, **big_shape).to(device), lr.to(device), hr.to(device)
        ),
        "nie_edsr": make_step(fast, l2, lr, hr, "edsr", str(device), **big_shape),
        **{name: run for name, (run, _) in peaks.items()},
    }
    big_t = _time(device, sizes, big)
    del big
    _free(device)
    peak_name = "matmul_bf16" if bf16 else "matmul_fp32"
    peak = peaks[peak_name][1] / big_t[peak_name].best
    return {
        "fast": fast,
        "hybrid_loss": describe_loss(hybrid),
        "steps_per_s": {n: 1 / t.best for n, t in {**base_t, **big_t}.items() if "matmul" not in n},
        "edsr_step_gflop": step_flops / 1e9,
        "peak": peak_name,
        "peak_gflops": peak / 1e9,
        "edsr_fraction_of_peak": step_flops / big_t["nie_edsr"].best / peak,
        "unsettled": unsettled_note(base_t, "training") + unsettled_note(big_t, "full EDSR"),
    }


def measure_inference(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """Images/s of enhance (NIE's path on this device) against the reference in fp32 and
    half, for edsr_baseline x2 and full EDSR x4."""
    x = torch.rand(1, 3, sizes.infer_side, sizes.infer_side, generator=torch.manual_seed(0))
    x = x.to(device)
    rates: dict[str, dict[str, float]] = {}
    unsettled: list[str] = []
    for name, factor, shape in (
        ("edsr_baseline", 2, sizes.small or {}),
        ("edsr", 4, sizes.big or {}),
    ):
        torch.manual_seed(0)
        nie = prepare_model(create_model(name, scale=factor, **shape), device, "auto")
        candidates = {
            "nie": lambda nie=nie, factor=factor: enhance(nie, x, scale=factor),
            "reference_fp32": reference_infer(
                reference_model(name, factor, **shape).to(device), x, half=False
            ),
            "reference_half": reference_infer(
                reference_model(name, factor, **shape).to(device), x, half=True
            ),
        }
        timings = _time(device, sizes, candidates)
        rates[f"{name}_x{factor}"] = {n: 1 / t.best for n, t in timings.items()}
        unsettled += unsettled_note(timings, f"{name} x{factor} inference")
        del candidates, nie
        _free(device)
    return {"images_per_s": rates, "unsettled": unsettled}


def measure_scoring(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """Images/s of ``score`` in float32 (its default, NIE's choice everywhere) and with bf16
    autocast (``fast=True``; left out where bf16 is emulated) at each batch size."""
    torch.manual_seed(0)
    scorer = create_model("nima", backbone="mnasnet1_0").to(device).eval()
    bf16 = bf16_native(device)
    candidates = {}
    for batch in sizes.nima_batches:
        x = torch.rand(batch, 3, sizes.nima_side, sizes.nima_side, device=device)
        candidates[f"fp32_b{batch}"] = lambda x=x: score(scorer, x, resize=None, fast=False)
        if bf16:
            candidates[f"bf16_b{batch}"] = lambda x=x: score(scorer, x, resize=None, fast=True)
    timings = _time(device, sizes, candidates)
    rates = {n: int(n.rsplit("_b", 1)[1]) / t.best for n, t in timings.items()}
    return {"images_per_s": rates, "bf16": bf16, "unsettled": unsettled_note(timings, "NIMA")}


def _shape(shape: dict[str, int]) -> str:
    return f"{shape['n_resblocks']} blocks x {shape['n_feats']} feats"


def _ratio_target(name: str, value: float, limit: float, op: str, applies: str = "") -> Target:
    if applies:
        return Target.skipped(name, limit, op, applies)  # type: ignore[arg-type]
    return Target(name, round(value, 3), limit, op)  # type: ignore[arg-type]


def run(device: str = "cuda", quick: bool = False, backend: str = "inductor") -> BenchResult:
    dev = torch.device(device)
    sizes = QUICK if quick else Sizes()
    train = measure_training(dev, sizes, backend)
    infer = measure_inference(dev, sizes)
    nima = measure_scoring(dev, sizes)
    steps = train["steps_per_s"]
    base_x2, big_x4 = infer["images_per_s"]["edsr_baseline_x2"], infer["images_per_s"]["edsr_x4"]
    shape = "32 blocks x 256 feats" if sizes.big is None else _shape(sizes.big)
    base_shape = "" if sizes.small is None else f" ({_shape(sizes.small)})"
    nie_path = "bf16 autocast + channels_last" if train["fast"] else "float32 (no fast path)"
    b, p, s = sizes.batch, sizes.lr_patch, sizes.infer_side
    rows: list[list[Any]] = [
        [f"train edsr_baseline{base_shape} x2, batch {b}, LR {p} (steps/s)", steps["reference"],
         steps["nie_l2"], f"{steps['nie_l2'] / steps['reference']:.2f}x"],
        ["hybrid step (NIE, the demo's hybrid loss) vs L2 step (NIE) (steps/s)", steps["nie_l2"],
         steps["nie_hybrid"], f"{steps['nie_l2'] / steps['nie_hybrid']:.2f}x the L2 time"],
        [f"train EDSR ({shape}) x2 (steps/s)", steps["reference_edsr"], steps["nie_edsr"],
         f"{steps['nie_edsr'] / steps['reference_edsr']:.2f}x; "
         f"{train['edsr_fraction_of_peak']:.0%} of the {train['peak'][7:]} matmul peak "
         f"({train['peak_gflops']:,.0f} GFLOP/s)"],
        [f"infer edsr_baseline{base_shape} x2 {s}x{s} (img/s), reference fp32 / half", base_x2["reference_fp32"],
         base_x2["nie"], f"{base_x2['nie'] / base_x2['reference_fp32']:.2f}x fp32, "
         f"{base_x2['nie'] / base_x2['reference_half']:.2f}x half ({base_x2['reference_half']:.3g} img/s)"],
        [f"infer EDSR ({shape}) x4 {s}x{s} (img/s), reference fp32 / half", big_x4["reference_fp32"],
         big_x4["nie"], f"{big_x4['nie'] / big_x4['reference_fp32']:.2f}x fp32, "
         f"{big_x4['nie'] / big_x4['reference_half']:.2f}x half ({big_x4['reference_half']:.3g} img/s)"],
        [f"train step under torch.compile ({backend}, default mode) vs eager, NIE L2 (steps/s)",
         steps["nie_l2"], steps["nie_l2_compiled"],
         f"{steps['nie_l2_compiled'] / steps['nie_l2']:.2f}x (compiled / eager)"],
    ]  # fmt: skip
    worst_nima = 1.0
    for batch in sizes.nima_batches:
        fp32 = nima["images_per_s"][f"fp32_b{batch}"]
        bf16 = nima["images_per_s"].get(f"bf16_b{batch}")
        if bf16 is not None:
            worst_nima = min(worst_nima, fp32 / max(fp32, bf16))
        rows.append(
            [f"NIMA MnasNet scoring {sizes.nima_side}x{sizes.nima_side}, batch {batch} (img/s): "
             "fp32 (score()'s default) / bf16", fp32, bf16 if bf16 is not None else "skipped",
             f"bf16 {bf16 / fp32:.2f}x fp32" if bf16 is not None else "bf16 emulated here"]
        )  # fmt: skip
    compile_best = max(steps["nie_l2"], steps["nie_l2_compiled"])
    needs_bf16 = "" if train["fast"] else "not applicable on this machine: no native bf16"
    no_bf16_score = "" if nima["bf16"] else "not applicable on this machine: no native bf16"
    targets = [
        _ratio_target(f"train edsr_baseline x2 b{b}: NIE / reference steps/s",
                      steps["nie_l2"] / steps["reference"], 3.0, ">="),
        _ratio_target("hybrid step / L2 step (NIE, this device)",
                      steps["nie_l2"] / steps["nie_hybrid"], 1.3, "<="),
        _ratio_target("train full EDSR x2: NIE step / bf16 matmul peak",
                      train["edsr_fraction_of_peak"], 0.6, ">=", needs_bf16),
        _ratio_target(f"infer edsr_baseline x2 {s}^2: NIE / reference fp32 img/s",
                      base_x2["nie"] / base_x2["reference_fp32"], 3.0, ">="),
        _ratio_target(f"infer EDSR x4 {s}^2: NIE / reference half img/s",
                      big_x4["nie"] / big_x4["reference_half"], 1.0, ">="),
        _ratio_target("NIMA scoring: NIE's precision (fp32) / the faster one, worst batch",
                      worst_nima, 0.95, ">=", no_bf16_score),
        _ratio_target("torch.compile: NIE's choice (eager) / the faster of eager and compiled",
                      steps["nie_l2"] / compile_best, 0.95, ">="),
    ]  # fmt: skip
    return BenchResult(
        name="gpu",
        title=f"Device speed against an EDSR-style reference ({dev.type}"
        + (", tiny sizes" if quick else "")
        + ")",
        headers=["what", "reference (or the first variant)", "NIE", "ratio"],
        rows=rows,
        targets=targets,
        notes=[
            f"NIE's path on this device: {nie_path} (fast_path_supported). Reference: "
            "bench/reference.py, float32 NCHW, L1 loss, Adam with torch's defaults, eager; "
            "the same layer shapes as NIE's models.",
            "NIE's training step is bench/training.py's make_step (the step of "
            "ray_jobs.enhancer.train_loop: autocast forward, HybridLoss in float32, zero_grad, "
            "backward, Adam, loss.item()), with the demo's L2 loss (demo_edsr_l2.yaml); the "
            f"hybrid step has the demo's hybrid loss ({train['hybrid_loss']}; "
            "demo_edsr_hybrid.yaml), built by ray_jobs.enhancer.build_loss.",
            "Every variant ends with a device synchronisation; minima over interleaved rounds. "
            "NIE uses neither torch.compile nor bf16 scoring today: the last targets say whether "
            "that is the faster choice on this device.",
            *train["unsettled"],
            *infer["unsettled"],
            *nima["unsettled"],
        ],
        details={"training": train, "inference": infer, "scoring": nima, "sizes": vars(sizes)},
    )


def main(argv: Sequence[str] | None = None) -> BenchResult | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few rounds")
    parser.add_argument(
        "--compile-backend", default="inductor", help="torch.compile backend (default inductor)"
    )
    parser.add_argument("--out", default=None, help="results folder")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        raise SystemExit(2)
    result = timed_run(
        lambda quick: run(args.device, quick, args.compile_backend), args.quick, args.device
    )
    from pathlib import Path

    write_result(result, results_dir(Path(args.out) if args.out else None, args.quick))
    print(result.to_markdown())
    return result


if __name__ == "__main__":
    main()
