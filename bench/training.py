"""Training benchmark: steps/s and patches/s of edsr_baseline x2 with the L2 and the hybrid loss,
and against a plain float32 NCHW loop of the same model.

Each step is ``nie_core.training.train_step``, the function ``ray_jobs.enhancer.train_loop``
calls: forward under the worker's autocast, the job's loss on the float32 output, ``zero_grad``,
backward, Adam step; then ``.item()`` of the loss. The losses are the demo's, built the way the
job builds them: ``load_config`` of ``ray_jobs/recipes/demo_edsr_l2.yaml`` (gamma 0) and
``demo_edsr_hybrid.yaml``, then ``ray_jobs.enhancer.load_scorer`` (the zoo's NIMA,
EfficientNet-Lite0, scoring the outputs unresized) and ``build_loss`` (with whatever remedies
against scorer gaming, ``loss.guard``, the recipe sets). The model is the recipe's, with its
zoo weights.

Batches are 16 random 48 x 48 LR crops (96 x 96 HR) of photographs, as in the EDSR paper and the
jobs' default ``run.batch_size``, not the demo's 8 (2 workers x 4): one process on all torch
threads runs them, and the batch of 16 keeps this benchmark's other rows (against the plain loop
and the matmul peaks) and the GPU benchmark comparable with their earlier runs. Data loading is
left out (see ``bench/data.py``). The variants run interleaved, one step each per round; each
one's time is its minimum over the rounds.

- plain: float32 NCHW, no autocast (``run.fast=off``), the L2 recipe's loss;
- the jobs' path here, L2 and hybrid: what ``run.fast=auto`` (the recipes' setting) trains in,
  as :func:`job_path` decides it with ``ray_jobs.worker.precision``: bf16 autocast +
  channels_last where the fast path is native, else float32 NCHW;
- the bf16 path (``run.fast=on``), L2 and hybrid, where the CPU computes bf16 natively (the
  same as the jobs' path there).

Targets: the hybrid step at most 1.3x the L2 step on the jobs' path and on the bf16 path; the
bf16 L2 step at least 2.5x as fast as the plain loop. On a CPU without native bf16 (detected,
:func:`bench.machine.bf16_native`) the bf16 variants are not run and their targets are not
applicable; the jobs train in float32 NCHW there, so that is where the hybrid step is measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.cli import run_and_report
from bench.flops import conv_flops, matmul_candidates
from bench.machine import NO_BF16, NOT_APPLICABLE_NO_BF16, bf16_native
from bench.photos import photo
from bench.report import BenchResult, Target
from bench.timing import time_interleaved, unsettled_note
from nie_core.config import load_config
from nie_core.data.images import to_tensor
from nie_core.losses import HybridLoss
from nie_core.models import create_model
from nie_core.training import fast_autocast, train_step
from ray_jobs.config import RECIPES, EnhancerJobConfig
from ray_jobs.enhancer import build_loss, load_scorer, model_kwargs
from ray_jobs.worker import precision

SCALE = 2
BATCH = 16
LR_PATCH = 48
L2_RECIPE = RECIPES / "demo_edsr_l2.yaml"
HYBRID_RECIPE = RECIPES / "demo_edsr_hybrid.yaml"
HYBRID_OVERHEAD_TARGET = 1.3
SPEEDUP_TARGET = 2.5


def recipe(path: Path = HYBRID_RECIPE) -> EnhancerJobConfig:
    """The job config of a bundled recipe, as ``nie train enhancer --config`` loads it."""
    return load_config(EnhancerJobConfig, path)


def job_loss(cfg: EnhancerJobConfig, device: str = "cpu", fast: bool = False) -> HybridLoss:
    """``cfg``'s loss as ``ray_jobs.enhancer.train_loop`` builds it: the job's scorer
    (``load_scorer``) on ``device``, in channels_last on the fast path, then ``build_loss``;
    in training mode (the guard's random views apply there)."""
    scorer = load_scorer(cfg)
    if scorer is not None:
        scorer = scorer.to(device)
        if fast:
            scorer = scorer.to(memory_format=torch.channels_last)
    return build_loss(cfg, scorer).to(device).train()


def describe_loss(cfg: EnhancerJobConfig) -> str:
    """``cfg``'s loss in a few words for the tables, e.g. ``L2 + 8 x (10 - NIMA mean),
    zoo:nima@nie-quality, guard off``."""
    loss, guard = cfg.loss, cfg.loss.guard
    if loss.gamma == 0:
        return loss.pixel.upper()
    remedies = []
    if guard.views > 1:
        remedies.append(f"{guard.views} views")
    if guard.view_crop < 1:
        remedies.append(f"crops {guard.view_crop:g}")
    if guard.flip:
        remedies.append("flips")
    if guard.subpixel:
        remedies.append("sub-pixel shifts")
    if tuple(guard.scales) != (1.0,):
        remedies.append("scales " + "/".join(f"{s:g}" for s in guard.scales))
    if guard.edge_weight > 0:
        remedies.append(f"edge anchor {guard.edge_weight:g}")
    if guard.warmup_steps > 0:
        remedies.append(f"gamma warm-up {guard.warmup_steps} steps")
    guarded = ", ".join(remedies) or "off"
    scored = f"{loss.gamma:g} x (10 - NIMA mean), {loss.nima_checkpoint}"
    return f"{loss.pixel.upper()} + {scored}, guard {guarded}"


def photo_batch(
    seed: int = 0, batch: int = BATCH, lr_patch: int = LR_PATCH, scale: int = SCALE
) -> tuple[torch.Tensor, torch.Tensor]:
    """LR (16, 3, 48, 48) and HR (16, 3, 96, 96) random crops of two photographs (by default);
    the LR crop is the HR crop averaged over s x s blocks (the exact degradation does not
    matter here)."""
    rng = np.random.default_rng(seed)
    images = [photo("astronaut.png"), photo("coffee.png")]
    side = lr_patch * scale
    crops = []
    for i in range(batch):
        image = images[i % len(images)]
        top = int(rng.integers(0, image.shape[0] - side))
        left = int(rng.integers(0, image.shape[1] - side))
        crops.append(to_tensor(np.ascontiguousarray(image[top : top + side, left : left + side])))
    hr = torch.stack(crops)
    lr = torch.nn.functional.avg_pool2d(hr, scale)
    return lr, hr


def make_step(
    fast: bool,
    cfg: EnhancerJobConfig,
    lr_batch: torch.Tensor,
    hr_batch: torch.Tensor,
    model_name: str | None = None,
    device: str = "cpu",
    compile_model: str | None = None,
    bf16: bool | None = None,
    **shape: Any,
) -> Callable[[], float]:
    """A closure running one training step on ``device`` with ``cfg``'s loss
    (:func:`job_loss`): ``nie_core.training.train_step``, as ``ray_jobs.enhancer.train_loop``
    calls it there. ``fast``: channels_last model, scorer and batches (the worker's
    ``WorkerEnv.fast``); ``bf16``: bf16 autocast of the forward pass (``WorkerEnv.bf16``; None:
    the same as ``fast``, i.e. ``run.fast=on``). The model is ``cfg``'s with its weights (the
    zoo checkpoint of the demo's recipes), or, given ``model_name`` or a ``shape``
    (``n_resblocks``, ``n_feats``, ``scale``), a fresh one of that name and shape (seed 0; x2
    unless ``scale=`` is given). ``compile_model``: a ``torch.compile`` backend to wrap the
    model in (default mode)."""
    autocast = fast if bf16 is None else bf16
    torch.manual_seed(0)
    if model_name is None and not shape:
        model = create_model(cfg.model.name, weights=cfg.model.weights, **model_kwargs(cfg))
    else:
        shape.setdefault("scale", SCALE)
        model = create_model(model_name or cfg.model.name, **shape)
    model = model.train().to(device)
    lr_batch, hr_batch = lr_batch.to(device), hr_batch.to(device)
    loss_fn = job_loss(cfg, device, fast)
    if fast:  # as train_loop does when the worker's fast path is on
        model = model.to(memory_format=torch.channels_last)
        lr_batch = lr_batch.contiguous(memory_format=torch.channels_last)
        hr_batch = hr_batch.contiguous(memory_format=torch.channels_last)
    optim = cfg.optim
    optimizer = torch.optim.Adam(model.parameters(), lr=optim.lr, betas=optim.betas,
                                 eps=optim.eps, weight_decay=optim.weight_decay)  # fmt: skip
    forward = torch.compile(model, backend=compile_model) if compile_model else model

    def step() -> float:  # the worker's autocast (WorkerEnv.autocast is fast_autocast)
        batch = (lr_batch, hr_batch)
        terms = train_step(forward, batch, loss_fn, optimizer, fast_autocast(device, autocast))
        return terms["loss"].item()

    return step


def make_conv_chain(fast: bool) -> tuple[Callable[[], None], int]:
    """Forward + backward through 33 stacked 64 -> 64 3x3 convolutions (the shapes of
    edsr_baseline's body) on a 16 x 64 x 48 x 48 batch, in the step's precision and layout:
    the convolution-kernel throughput that bounds a training step. Returns (run, FLOPs)."""
    torch.manual_seed(0)
    convs = torch.nn.Sequential(*[torch.nn.Conv2d(64, 64, 3, padding=1) for _ in range(33)])
    features = torch.randn(BATCH, 64, LR_PATCH, LR_PATCH)
    if fast:
        convs = convs.to(memory_format=torch.channels_last)
        features = features.contiguous(memory_format=torch.channels_last)
    features.requires_grad_(True)

    def run() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            out = convs(features)
        out.float().square().mean().backward()
        convs.zero_grad(set_to_none=True)
        features.grad = None

    return run, 3 * conv_flops(convs, features)


# The precisions and layouts a job's worker can train in: (channels_last, bf16 autocast).
PATHS = {"fp32": (False, False), "fp32_cl": (True, False), "bf16_cl": (True, True)}
PATH_LABELS = {
    "fp32": "float32 NCHW",
    "fp32_cl": "float32 channels_last",
    "bf16_cl": "bf16 autocast + channels_last",
}


def job_path(cfg: EnhancerJobConfig, device: str = "cpu") -> str:
    """The key of :data:`PATHS` that the enhancer job's workers train ``cfg`` in on ``device``,
    from ``ray_jobs.worker.precision`` (the one decision the workers make from ``run.fast``)."""
    channels_last, bf16 = precision(cfg.run.fast, device)
    if bf16:
        return "bf16_cl"
    return "fp32_cl" if channels_last else "fp32"


def run(quick: bool = False) -> BenchResult:
    # Without native bf16 (emulated: 10-40x slower than float32) the bf16 variants, the bf16
    # conv chain and the bf16 peak are skipped (never measured: detected, not assumed).
    bf16 = bf16_native("cpu")
    l2_cfg, hybrid_cfg = recipe(L2_RECIPE), recipe(HYBRID_RECIPE)
    job = job_path(hybrid_cfg)
    lr_batch, hr_batch = photo_batch()
    cfgs = {"l2": l2_cfg, "hybrid": hybrid_cfg}
    # Steps: plain (float32 NCHW, L2) always; L2 and hybrid on the jobs' path here and, where
    # bf16 is native, on the bf16 path (run.fast=on).
    wanted = [("fp32", "l2"), (job, "l2"), (job, "hybrid")]
    if bf16:
        wanted += [p for p in (("bf16_cl", "l2"), ("bf16_cl", "hybrid")) if p not in wanted]
    names = {pair: "plain" if pair == ("fp32", "l2") else "_".join(pair) for pair in wanted}
    steps = {
        name: make_step(PATHS[path][0], cfgs[loss], lr_batch, hr_batch, bf16=PATHS[path][1])
        for (path, loss), name in names.items()
    }
    chains = {"chain_fp32": make_conv_chain(False)}
    if bf16:
        chains["chain_fast"] = make_conv_chain(True)
    forward_flops = conv_flops(
        create_model(hybrid_cfg.model.name, **model_kwargs(hybrid_cfg)), lr_batch
    )
    # The machine's bf16 and fp32 matmul peaks, interleaved with the steps (one call lasts
    # about as long as a step's convolution work).
    peaks = matmul_candidates(flops_per_call=3 * forward_flops, bf16=bf16)
    candidates = {
        **steps,
        **{name: chain for name, (chain, _) in chains.items()},
        **{name: product for name, (product, _) in peaks.items()},
    }
    # In float32 a step takes 2-3x as long as in bf16: fewer rounds where only float32 runs.
    timings = time_interleaved(
        candidates,
        repeats=2 if quick else (4 if bf16 else 3),
        warmup=2 if bf16 else 1,
        balance=True,
        max_seconds=30 if quick else (150 if bf16 else 45),
    )
    seconds = {name: timing.best for name, timing in timings.items()}

    def overhead(path: str) -> float:
        return seconds[names[(path, "hybrid")]] / seconds[names[(path, "l2")]]

    chain_rate = {name: flops / seconds[name] / 1e9 for name, (_, flops) in chains.items()}
    peak_rate = {name: flops / seconds[name] / 1e9 for name, (_, flops) in peaks.items()}
    plain_rate = 3 * forward_flops / seconds["plain"] / 1e9
    losses = {
        "l2": f"L2 ({L2_RECIPE.name})",
        "hybrid": f"hybrid ({describe_loss(hybrid_cfg)}; {HYBRID_RECIPE.name})",
    }
    run_fast = {"fp32": "run.fast=off", "fp32_cl": "run.fast=auto", "bf16_cl": "run.fast=on"}

    def label(path: str, loss: str) -> str:
        where = (
            f"run.fast={hybrid_cfg.run.fast}: the jobs' path here"
            if path == job
            else run_fast[path]
        )
        return f"{PATH_LABELS[path]} ({where}), {losses[loss]}"

    rows = [
        [label(path, loss), 1.0 / seconds[name], BATCH / seconds[name],
         timings[name].best * 1000, timings[name].median * 1000,
         3 * forward_flops / seconds[name] / 1e9, f"{seconds['plain'] / seconds[name]:.2f}x"]
        for (path, loss), name in names.items()
    ]  # fmt: skip
    if not bf16:
        rows.append([f"{PATH_LABELS['bf16_cl']} (run.fast=on): {NO_BF16}", *["-"] * 6])
    rows += [
        [f"33 body convs only, fwd+bwd, {chain_label}", "-", "-", timings[name].best * 1000,
         timings[name].median * 1000, chain_rate[name],
         f"{seconds['chain_fp32'] / seconds[name]:.2f}x"]
        for name, chain_label in (("chain_fp32", PATH_LABELS["fp32"]),
                                  ("chain_fast", PATH_LABELS["bf16_cl"]))
        if name in chains
    ]  # fmt: skip
    rows += [
        [f"{name[7:]} 2048x2048 matmul (the machine's peak)", "-", "-", timings[name].best * 1000,
         timings[name].median * 1000, peak_rate[name], "-"]
        for name in peaks
    ]  # fmt: skip
    details: dict[str, Any] = {
        "bf16_native": bf16,
        "jobs_path": job,
        "step_seconds": {n: {"min": t.best, "median": t.median} for n, t in timings.items()},
        "hybrid_over_l2": overhead(job),
        "matmul_peak_gflops": peak_rate,
        "conv_chain_gflops": chain_rate,
        "forward_gflop": forward_flops / 1e9,
        "batch": BATCH,
        "demo_patches_per_step": hybrid_cfg.run.batch_size * hybrid_cfg.scaling.num_workers,
        "recipes": {"l2": L2_RECIPE.name, "hybrid": HYBRID_RECIPE.name},
        "hybrid_loss": describe_loss(hybrid_cfg),
        "hybrid_guard": dataclasses.asdict(hybrid_cfg.loss.guard),
    }
    notes = [
        "One process on all torch threads (`nie train` runs one DDP worker per core).",
        "Each step = forward (under bf16 autocast on the bf16 path), the job's loss, zero_grad, "
        "backward, Adam step, loss.item() (the step of ray_jobs.enhancer.train_loop). Minimum "
        "over interleaved rounds, faster variants repeated so that every turn lasts about as "
        "long; GFLOP/s counts a training step as 3x the forward convolution FLOPs.",
        f"Losses, model and optimiser settings are the demo's ({L2_RECIPE.name}, "
        f"{HYBRID_RECIPE.name}), built by ray_jobs.enhancer.load_scorer and build_loss as the "
        "job builds them: the zoo NIMA scores each 96x96 output patch unresized, with the "
        "recipe's remedies against scorer gaming (loss.guard); the EDSR starts from the "
        f"recipe's weights ({hybrid_cfg.model.weights}). Batch {BATCH} (the EDSR paper's and "
        "the jobs' default) rather than the demo's "
        f"{hybrid_cfg.run.batch_size * hybrid_cfg.scaling.num_workers} per step "
        f"({hybrid_cfg.scaling.num_workers} workers x {hybrid_cfg.run.batch_size}), so that "
        "the speed-up and peak rows stay comparable with earlier runs and the GPU benchmark.",
        f"The jobs' path here: {PATH_LABELS[job]} (the recipe's run.fast={hybrid_cfg.run.fast}, "
        "decided as ray_jobs.worker.WorkerEnv does: bf16 autocast only with run.fast=on, "
        "channels_last where the fast path is native).",
    ]
    overhead_name = "hybrid step / L2 step ({}, {})"
    targets = [
        Target(overhead_name.format(PATH_LABELS[job], "the jobs' path here"),
               round(overhead(job), 3), HYBRID_OVERHEAD_TARGET, "<="),
    ]  # fmt: skip
    bf16_overhead_name = overhead_name.format(PATH_LABELS["bf16_cl"], "run.fast=on")
    speedup_name = "bf16 L2 training (run.fast=on) / plain fp32 NCHW loop"
    if bf16:
        speedup = seconds["plain"] / seconds["bf16_cl_l2"]
        kernel_ceiling = seconds["chain_fp32"] / seconds["chain_fast"]
        # A bf16 step cannot run its convolutions faster than the bf16 matmul peak, so this is
        # the largest bf16/plain ratio possible against the plain loop as it ran here.
        speedup_ceiling = peak_rate["matmul_bf16"] / plain_rate
        rows.append(
            ["ceiling: bf16 matmul peak / plain step's GFLOP/s", "-", "-", "-", "-", "-",
             f"{speedup_ceiling:.2f}x"]
        )  # fmt: skip
        if job != "bf16_cl":
            targets.append(Target(bf16_overhead_name, round(overhead("bf16_cl"), 3),
                                  HYBRID_OVERHEAD_TARGET, "<="))  # fmt: skip
        targets.append(Target(speedup_name, round(speedup, 3), SPEEDUP_TARGET, ">="))
        details.update(fast_over_plain=speedup, conv_kernel_speedup_bound=kernel_ceiling,
                       speedup_ceiling_at_bf16_peak=speedup_ceiling,
                       bf16_hybrid_over_l2=overhead("bf16_cl"))  # fmt: skip
        notes += [
            "The two '33 body convs only' rows time only the 33 64->64 convolutions of the "
            "body (89% of the step's FLOPs; forward and backward, the step's batch, precision "
            f"and layout): their fp32-NCHW/bf16 ratio ({kernel_ceiling:.2f}x) is what oneDNN's "
            "kernels give for the bulk of a step on this CPU, so a whole bf16 step's speed-up "
            "stays close to it.",
            "The plain loop already runs its convolutions at "
            f"{plain_rate / peak_rate['matmul_fp32']:.0%} of the fp32 matmul peak at this "
            "batch, and the bf16 step at "
            f"{3 * forward_flops / seconds['bf16_cl_l2'] / 1e9 / peak_rate['matmul_bf16']:.0%} "
            "of the bf16 peak; even a step at 100% of the bf16 peak would be only "
            f"{speedup_ceiling:.2f}x the plain loop (the ceiling row).",
        ]
    else:
        targets += [
            Target.skipped(bf16_overhead_name, HYBRID_OVERHEAD_TARGET, "<=",
                           NOT_APPLICABLE_NO_BF16),
            Target.skipped(speedup_name, SPEEDUP_TARGET, ">=", NOT_APPLICABLE_NO_BF16),
        ]  # fmt: skip
        notes.append(
            f"bf16 path {NO_BF16}: bf16 autocast and bf16 matmuls are emulated here (10-40x "
            "slower than float32), and NIE's jobs train in float32 NCHW on such a CPU "
            "(fast_path_supported is False), so the hybrid overhead is measured in float32 and "
            "the bf16 targets do not apply. The plain loop runs its convolutions at "
            f"{plain_rate / peak_rate['matmul_fp32']:.0%} of the fp32 matmul peak."
        )
    return BenchResult(
        name="training",
        title=f"Training: {hybrid_cfg.model.name} x{SCALE}, batch {BATCH} x "
        f"{LR_PATCH}x{LR_PATCH} LR patches, Adam, the demo's losses",
        headers=[
            "variant",
            "steps/s",
            "patches/s",
            "step ms (min)",
            "step ms (median)",
            "~GFLOP/s (3x forward)",
            "vs plain",
        ],  # fmt: skip
        rows=rows,
        targets=targets,
        notes=[*notes, *unsettled_note(timings)],
        details=details,
    )


def main(argv: Sequence[str] | None = None) -> BenchResult:
    return run_and_report(run, argv, "Training steps/s: L2 vs hybrid loss, fast vs plain")


if __name__ == "__main__":
    main()
