"""``nie zoo list`` and ``nie zoo export``: the shipped model zoo (``nie_core.models.zoo``).

``export`` turns a trained checkpoint into a zoo file (float16; for a NIMA on ImageNet weights,
only the tensors that training changed) and writes its model card from what the checkpoint,
its recipe and a ``nie eval`` result say: data, recipe, steps, wall time, machine, validation
numbers and the command that retrains it. Nothing in a card is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["run_export", "run_list", "write_card"]


def run_list(args: argparse.Namespace) -> int:
    """Print every zoo entry: URI, file size, and its card's first line."""
    from nie_core.models.zoo import ZOO

    for entry in ZOO:
        size = f"{entry.path.stat().st_size / 1e6:.1f} MB" if entry.path.is_file() else "missing"
        print(f"{entry.uri:<40} {size:>9}  card: {entry.card}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``nie zoo export CHECKPOINT --uri zoo:...@TAG --recipe FILE``."""
    from nie_core.checkpoint import load_checkpoint, load_model, resolve_checkpoint_path
    from nie_core.models import create_model
    from nie_core.models.zoo import export_zoo_file, parse_zoo_uri

    entry = parse_zoo_uri(args.uri)
    path = resolve_checkpoint_path(args.checkpoint)
    state = load_checkpoint(path)
    if state.get("model_name") != entry.model:
        raise ValueError(f"{path} holds {state.get('model_name')!r}, not {entry.model!r}")
    model = load_model(path)
    base = None
    if entry.base_weights is not None:
        base = create_model(entry.model, **entry.kwargs, weights=entry.base_weights)
    extra = {"base_weights": entry.base_weights} if entry.base_weights else {}
    export_zoo_file(model, entry.model, entry.kwargs, entry.path, base=base, extra=extra)
    evaluation = json.loads(Path(args.eval).read_text()) if args.eval else None
    command = args.command or f"nie train {_job(entry.model)} --config {args.recipe}"
    write_card(entry, state, args.recipe, command, evaluation, args.note)
    print(f"wrote {entry.path} ({entry.path.stat().st_size / 1e6:.2f} MB) and {entry.card}")
    return 0


def _relative(path: str | None) -> str | None:
    """``path`` relative to the current folder when it lies below it."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _job(model_name: str) -> str:
    return "nima" if model_name == "nima" else "enhancer"


def _machine() -> str:
    from nie_core.machine import describe_machine as machine

    return f"{machine()}, {platform.system()} {platform.release()}"


def write_card(
    entry: Any,
    state: dict[str, Any],
    recipe: str,
    command: str,
    evaluation: dict[str, Any] | None,
    note: str | None = None,
) -> Path:
    """Write ``entry.card`` (Markdown) from the checkpoint ``state`` and an evaluation."""
    metrics = state.get("metrics") or {}
    seconds = state.get("train_seconds")
    config = state.get("config") or {}
    data = config.get("data") or {}
    data_path = _relative(data.get("csv") or data.get("root"))
    build = "nie data photos data/photos"
    if entry.model == "nima":
        build += " && nie data ratings data/quality --photos data/photos/DIV2K"
    lines = [
        f"# {entry.uri}",
        "",
        f"- **Architecture:** `create_model({entry.model!r}, "
        + ", ".join(f"{k}={v!r}" for k, v in entry.kwargs.items())
        + f", weights={entry.tag!r})`",
        f"- **File:** `{entry.file}` ({entry.path.stat().st_size / 1e6:.2f} MB, float16"
        + (
            f"; only the tensors trained on top of `{entry.base_weights}` weights"
            if entry.base_weights
            else ""
        )
        + ")",
        f"- **Data:** `{data_path}`, built by `{build}`",
        f"- **Recipe:** `{recipe}`",
        f"- **Steps:** {state.get('global_step')} ({state.get('epoch')} epochs)",
        f"- **Wall time:** {seconds / 60:.1f} min of training"
        if seconds
        else "- **Wall time:** not recorded",
        f"- **Machine:** {_machine()}",
        f"- **Exported:** {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- **Retrain:** `{command}` then "
        f"`nie zoo export runs/{(config.get('run') or {}).get('name')}/best --uri {entry.uri} "
        f"--recipe {recipe}`",
        "",
        "## Validation metrics logged by the training job (last epoch)",
        "",
    ]
    shown = {k: v for k, v in metrics.items() if k.startswith(("val_", "bicubic_"))}
    lines += [f"- `{k}`: {v:.4f}" for k, v in sorted(shown.items())] or ["- none recorded"]
    if evaluation is not None:
        lines += ["", f"## `nie eval` ({evaluation.get('date')}, {evaluation.get('machine')})", ""]
        if "ranking" in evaluation:
            r = evaluation["ranking"]
            lines.append(
                f"Ranks reference > x2 bicubic > x4 bicubic in {r['correct']}/{r['pairs']} pairs "
                f"({100 * r['accuracy']:.1f} %) on {len(evaluation['images'])} unseen photographs."
            )
        else:
            lines.append("| method | metric | mean | std | n |")
            lines.append("|---|---|---:|---:|---:|")
            for row, stats in evaluation["summary"].items():
                for metric, s in stats.items():
                    lines.append(
                        f"| {row} | {metric} | {s['mean']:.4f} | {s['std']:.4f} | {s['n']} |"
                    )
        lines.append(
            f"\nData: `{_relative(evaluation.get('data'))}` ({', '.join(evaluation['images'])})."
        )
    if note:
        lines += ["", f"Note: {note}"]
    if entry.model == "nima":
        lines += [
            "",
            "**The ratings this scorer learned are SYNTHETIC** (`nie data ratings`): a score set by",
            "the degradation of each crop (bicubic down-and-up, blur, noise, JPEG, contrast). It",
            "measures technical quality, not human aesthetic taste; train on AVA for that.",
        ]
    entry.card.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return entry.card
