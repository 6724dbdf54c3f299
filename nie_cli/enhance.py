"""``nie enhance`` and ``nie score``: the same ``nie_core.inference`` code as the service, on
image files, in process, without Ray.

User errors raise ``ValueError`` / ``FileNotFoundError``, which the ``nie`` entry point reports as
one line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from serve_app.config import DEFAULT_SERVE_CONFIG, load_service_config

__all__ = ["default_enhancer_source", "run_enhance", "run_score"]


def _existing_files(paths: Sequence[str]) -> list[Path]:
    """The paths as ``Path``s; ``FileNotFoundError`` naming the first one that is not a file."""
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: '{path}'")
    return files


def default_enhancer_source() -> str:
    """The model ``nie enhance`` uses without ``--model``: the service config's hybrid model
    (what ``nie demo`` registers) when it exists, else its fallback, the zoo model."""
    from nie_tracking.loading import ModelUnavailableError, resolve_source

    config = load_service_config(DEFAULT_SERVE_CONFIG)
    spec = next((m for m in config.models if m.label == "hybrid"), config.models[0])
    try:
        resolve_source(spec.source, config.mlflow_tracking_uri)
        return spec.source
    except ModelUnavailableError:
        if not spec.fallback:
            raise
        return spec.fallback


def run_enhance(args: argparse.Namespace) -> int:
    """``nie enhance IMAGE... --model SRC --out DIR``: write ``STEM_TASK_xSCALE.png`` per image."""
    from nie_core.data.images import read_image, save_image, to_tensor
    from nie_core.inference import enhance, prepare_model
    from nie_core.runtime import keep_freed_memory
    from nie_tracking.loading import load_enhancer

    images = _existing_files(args.images)
    source = args.model or default_enhancer_source()
    loaded = load_enhancer(source, allow_untrained=getattr(args, "allow_untrained", False))
    if args.model is None:
        print(f"nie enhance: using {loaded.origin}", file=sys.stderr)
    if not loaded.trained:
        print(f"nie enhance: warning: RANDOM weights ({loaded.origin})", file=sys.stderr)
    fast = False if args.no_fast else "auto"
    keep_freed_memory()  # one image after another: reuse the activations' memory
    model = prepare_model(loaded.module, "cpu", fast)
    scale = args.scale if args.scale is not None else loaded.scales[0]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in images:
        x = to_tensor(read_image(path)).unsqueeze(0)
        start = time.perf_counter()
        y = enhance(
            model, x, scale=scale, tile_size=args.tile_size, self_ensemble=args.ensemble, fast=fast
        )
        seconds = time.perf_counter() - start
        target = out_dir / f"{path.stem}_{loaded.task}_x{scale}.png"
        save_image(target, y[0])
        print(
            f"{path} -> {target} ({x.shape[3]}x{x.shape[2]} -> {y.shape[3]}x{y.shape[2]}, "
            f"{seconds:.2f} s)"
        )
    return 0


def run_score(args: argparse.Namespace) -> int:
    """``nie score IMAGE... [--model SRC]``: a table of NIMA mean and std per image. Without
    ``--model``, the scorer of the bundled service config is used."""
    from nie_core.data.images import read_image, to_tensor
    from nie_core.inference import score
    from nie_core.models.nima import mean_score, std_score
    from nie_tracking.loading import load_scorer

    images = _existing_files(args.images)
    source = args.model
    if source is None:
        source = load_service_config(DEFAULT_SERVE_CONFIG).scorer.source
    loaded = load_scorer(source, allow_untrained=getattr(args, "allow_untrained", False))
    if not loaded.trained:
        print(f"nie score: warning: RANDOM weights ({loaded.origin})", file=sys.stderr)
    width = max(len("image"), *(len(str(p)) for p in images))
    print(f"{'image':<{width}}  {'mean':>6}  {'std':>6}")
    for path in images:
        probs = score(loaded.module, to_tensor(read_image(path)).unsqueeze(0))
        mean, std = float(mean_score(probs)[0]), float(std_score(probs)[0])
        print(f"{str(path):<{width}}  {mean:6.3f}  {std:6.3f}")
    return 0
