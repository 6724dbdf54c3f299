"""``nie enhance`` and ``nie score``: the same ``nie_core.inference`` code as the service, on
image files, in process, without Ray.

User errors raise ``ValueError`` / ``FileNotFoundError``, which the ``nie`` entry point reports as
one line with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve_app.config import DEFAULT_SERVE_CONFIG, load_service_config

__all__ = [
    "DefaultEnhancer",
    "default_enhancer",
    "default_enhancer_source",
    "demo_summary_path",
    "run_enhance",
    "run_score",
]


def _existing_files(paths: Sequence[str]) -> list[Path]:
    """The paths as ``Path``s; ``FileNotFoundError`` naming the first one that is not a file."""
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: '{path}'")
    return files


# How the printed line names a served model, by its label in the service config.
_LABEL_WORDS = {"hybrid": "the hybrid model", "baseline": "the L2 model"}


@dataclass(frozen=True)
class DefaultEnhancer:
    """The model ``nie enhance`` uses without ``--model``, and why (one line)."""

    source: str
    why: str


def demo_summary_path(tracking_uri: str | None) -> Path:
    """Where the ``nie demo`` that registered the served models wrote its summary: the demo's
    working directory holds both its MLflow store (``mlflow.db``) and ``runs/demo_summary.json``;
    for a store that is not a local SQLite file, the current directory's ``runs/``."""
    from nie_cli.demo.summary import SUMMARY_FILE
    from nie_tracking.uris import resolve_tracking_uri, sqlite_file

    store = sqlite_file(resolve_tracking_uri(tracking_uri))
    return (store.parent if store is not None else Path.cwd()) / "runs" / SUMMARY_FILE


def _demo_verdict(path: Path) -> dict[str, Any] | None:
    """The ``verdict`` of a demo summary (see ``nie_cli.demo.summary.demo_summary``); None when
    there is no summary, or one from before verdicts."""
    try:
        verdict = json.loads(path.read_text(encoding="utf-8")).get("verdict")
    except (OSError, ValueError, AttributeError):
        return None
    return verdict if isinstance(verdict, dict) and "default_model" in verdict else None


def default_enhancer() -> DefaultEnhancer:
    """The model ``nie enhance`` uses without ``--model``: the service config's hybrid model
    only when the demo's verdict says it passed the judges on the demo's validation
    (``nie_core.judging``: no judge rates it worse than the L2 model); otherwise the L2 model
    (label "baseline"), also when there is no verdict; a model whose weights are not there gives
    way to its fallback (the zoo model in the bundled config). ``why`` says which and why,
    naming the judges that disagreed."""
    from nie_tracking.loading import ModelUnavailableError, resolve_source

    config = load_service_config(DEFAULT_SERVE_CONFIG)
    summary = demo_summary_path(config.mlflow_tracking_uri)
    verdict = _demo_verdict(summary)
    if verdict is None:
        label = "baseline"
        why = f"there is no demo verdict on the hybrid model (in {summary})"
    elif verdict.get("hybrid_passed"):
        label = "hybrid"
        why = "the hybrid model passed the judges on the demo's validation"
    else:
        label = str(verdict["default_model"])
        why = f"the hybrid model failed the judges on the demo's validation: {verdict['reason']}"
    spec = next((m for m in config.models if m.label == label), config.models[0])
    what = _LABEL_WORDS.get(spec.label, spec.name)
    try:
        resolve_source(spec.source, config.mlflow_tracking_uri)
        return DefaultEnhancer(spec.source, f"{what}, as {why}")
    except ModelUnavailableError:
        if not spec.fallback:
            raise
        return DefaultEnhancer(
            spec.fallback,
            f"the fallback of {what} (not there: {spec.source}), as {why}",
        )


def default_enhancer_source() -> str:
    """The source of :func:`default_enhancer`."""
    return default_enhancer().source


def run_enhance(args: argparse.Namespace) -> int:
    """``nie enhance IMAGE... --model SRC --out DIR``: write ``STEM_TASK_xSCALE.png`` per image."""
    from nie_core.data.images import read_image, save_image, to_tensor
    from nie_core.inference import enhance, prepare_model
    from nie_core.runtime import keep_freed_memory
    from nie_tracking.loading import load_enhancer

    images = _existing_files(args.images)
    default = None if args.model else default_enhancer()
    source = args.model or default.source
    loaded = load_enhancer(source, allow_untrained=getattr(args, "allow_untrained", False))
    if default is not None:
        print(f"nie enhance: using {loaded.origin}: {default.why}", file=sys.stderr)
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
