"""``nie eval``: measure a model on any folder of HR photographs (argument parsing lives in
``nie_cli.main``).

An enhancer is compared with bicubic upsampling and the reference on PSNR-Y, SSIM-Y, NIQE,
LR-consistency and NIMA (protocol in ``nie_core.evaluation``); a NIMA scorer is checked for
ranking each reference above its x2 and x4 bicubic down-and-up copies. Prints the table and
writes ``results.json`` and ``results.md`` (with date, machine and protocol) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from nie_core.machine import describe_machine

__all__ = ["DEFAULT_SCORER", "describe_machine", "run_eval"]

DEFAULT_SCORER = "zoo:nima@nie-quality"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def run_eval(args: argparse.Namespace) -> int:
    """Handler of ``nie eval --model SRC --data FOLDER``."""
    from nie_core.evaluation import evaluate_images, list_images, scorer_ranking
    from nie_core.inference import prepare_model
    from nie_core.runtime import keep_freed_memory
    from nie_tracking.loading import load_enhancer, load_scorer

    images = list_images(args.data)
    if args.max_images is not None:
        images = images[: args.max_images]
    out_dir = Path(args.out or Path("eval") / _slug(args.model))
    keep_freed_memory()
    stamp = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "model": args.model,
        "data": str(Path(args.data).resolve()),
        "images": [p.name for p in images],
    }

    if _is_scorer(args.model):
        loaded = load_scorer(args.model)
        ranking = scorer_ranking(loaded.module, images, crop=args.crop or 384)
        text = (
            f"{args.model} ranks reference > x2 bicubic > x4 bicubic in "
            f"{ranking['correct']}/{ranking['pairs']} pairs ({100 * ranking['accuracy']:.1f} %) "
            f"on {len(images)} image(s) of {args.data} (centre crops of {args.crop or 384} px)"
        )
        result = {**stamp, "ranking": ranking}
    else:
        loaded = load_enhancer(args.model)
        scale = args.scale or loaded.scales[0]
        if scale not in loaded.scales:
            raise ValueError(f"{args.model} serves scales {loaded.scales}, not {scale}")
        if loaded.task != "sr":
            raise ValueError(f"nie eval measures super-resolution; {args.model} is {loaded.task}")
        scorer = None if args.no_nima else load_scorer(args.scorer).module
        model = prepare_model(loaded.module, "cpu", False)  # float32: machine-independent numbers
        label = f"model ({args.model})"
        table = evaluate_images(
            images, {label: model}, scale, scorer=scorer, crop=args.crop,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )  # fmt: skip
        title = f"nie eval x{scale} on {args.data}, {stamp['date']}, {stamp['machine']}"
        text = table.markdown(title)
        result = {
            **stamp,
            "scale": scale,
            "scorer": None if args.no_nima else args.scorer,
            "summary": table.summary(),
            "per_image": table.values,
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (out_dir / "results.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\nwritten: {out_dir / 'results.md'} and results.json")
    return 0


def _is_scorer(source: str) -> bool:
    """Whether ``source`` holds a NIMA scorer (zoo URI or checkpoint; registry names say so)."""
    if source.startswith("zoo:"):
        from nie_core.models.zoo import parse_zoo_uri

        return parse_zoo_uri(source).model == "nima"
    if source.startswith("models:/"):
        return "nima" in source.lower()
    from nie_core.checkpoint import load_checkpoint, resolve_checkpoint_path

    try:
        return load_checkpoint(resolve_checkpoint_path(source)).get("model_name") == "nima"
    except ValueError:
        return False  # load_enhancer then reports the missing source
