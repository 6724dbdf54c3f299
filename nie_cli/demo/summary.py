"""The demo's summary: bicubic, the zoo start, the L2 model, the gaming probe, the hybrid model
and the reference measured on the unseen crops of the held-out photographs, written with date
and machine to ``runs/demo_summary.{md,json}``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from nie_cli.demo.layout import SCORER, DemoLayout
from nie_cli.demo.stages import StageResult
from ray_jobs.progress import format_seconds

ZOO_MODEL = "zoo:edsr_baseline-x2@nie-photos"  # where the demo's enhancers start
ZOO_ROW = "EDSR x2, zoo (the start)"
PROBE_ROW = "EDSR x2, gaming probe (plain loss)"
SUMMARY_FILE = "demo_summary.json"
SUMMARY_MARKDOWN = "demo_summary.md"


def demo_summary(
    layout: DemoLayout,
    stages: Mapping[str, StageResult],
    gamma: float,
    training_seconds: float,
) -> tuple[Any, str]:
    """Measure bicubic, the zoo model the jobs start from, the L2 model, the gaming probe, the
    hybrid model and the reference on the unseen crops of the held-out photographs
    (``nie_core.evaluation``: PSNR-Y, SSIM-Y, NIQE, LR-consistency, NIMA of the zoo scorer,
    GMSD, artifacts); returns the table and its Markdown, also written to
    ``runs/demo_summary.{json,md}`` with date and machine.

    The JSON's ``verdict`` is what ``nie enhance`` follows without ``--model``: the hybrid model
    passes only when no judge rates it worse than the L2 model on the mean values
    (``nie_core.judging``; NIMA alone cannot carry it, as the hybrid loss optimises NIMA):
    ``{"hybrid_passed", "reason", "default_model": "hybrid" | "baseline" (the L2 model's
    label in the service config), "judges": {"L2": {...}, "hybrid": {...}}}``."""
    from datetime import datetime

    from nie_core.checkpoint import load_model
    from nie_core.evaluation import evaluate_images, list_images
    from nie_core.judging import JUDGES, judge_outputs
    from nie_core.machine import describe_machine
    from nie_core.models.nima import freeze_scorer
    from nie_core.models.zoo import load_zoo_uri

    l2, hybrid = "EDSR x2, L2", f"EDSR x2, hybrid (gamma {gamma:g})"
    enhancers = {ZOO_ROW: load_zoo_uri(ZOO_MODEL).eval()}
    enhancers[l2] = load_model(stages["l2"].result["checkpoint_dir"]).eval()
    if "probe" in stages:
        enhancers[PROBE_ROW] = load_model(stages["probe"].result["checkpoint_dir"]).eval()
    enhancers[hybrid] = load_model(stages["hybrid"].result["checkpoint_dir"]).eval()
    images = list_images(layout.unseen_root)
    table = evaluate_images(images, enhancers, 2, scorer=freeze_scorer(load_zoo_uri(SCORER)))
    stats = table.summary()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    took = format_seconds(training_seconds)
    title = f"nie demo summary ({date}, {describe_machine()}; training {took}, all stages)"
    judged = {
        name: {m: s["mean"] for m, s in stats[row].items() if m in JUDGES}
        for name, row in (("L2", l2), ("hybrid", hybrid))
    }
    passed = judge_outputs(judged)["hybrid"]
    verdict = {"hybrid_passed": passed.best, "reason": passed.reason,
               "default_model": "hybrid" if passed.best else "baseline", "judges": judged}  # fmt: skip
    choice = "the hybrid model" if passed.best else "the L2 model, not the hybrid"
    lines = [table.markdown(title), "", _comparison(stats, l2, hybrid), "",
             f"Verdict (nie_core.judging): {passed.reason}. `nie enhance` uses {choice}."]  # fmt: skip
    markdown = "\n".join(lines)
    layout.runs.mkdir(parents=True, exist_ok=True)
    (layout.runs / SUMMARY_MARKDOWN).write_text(markdown + "\n", encoding="utf-8")
    payload = {"date": date, "machine": describe_machine(), "training_seconds": training_seconds,
               "images": table.images, "scorer": SCORER, "summary": stats,
               "per_image": table.values, "verdict": verdict}  # fmt: skip
    (layout.runs / SUMMARY_FILE).write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return table, markdown


def _comparison(stats: Mapping[str, Any], l2: str, hybrid: str) -> str:
    """One sentence per metric: hybrid minus L2, and each against bicubic, from the numbers."""

    def mean(row: str, metric: str) -> float:
        return float(stats[row][metric]["mean"])

    parts = []
    for row in (l2, hybrid):
        gain = mean(row, "psnr_y") - mean("bicubic", "psnr_y")
        parts.append(f"{row}: {gain:+.2f} dB PSNR-Y over bicubic")
    metrics = ("psnr_y", "nima", "niqe", "lr_psnr_y", "gmsd", "artifacts")
    diff = {m: mean(hybrid, m) - mean(l2, m) for m in metrics}
    parts.append(
        f"hybrid minus L2: NIMA {diff['nima']:+.3f}, PSNR-Y {diff['psnr_y']:+.2f} dB, "
        f"NIQE {diff['niqe']:+.2f} (lower is better), LR-consistency {diff['lr_psnr_y']:+.2f} dB, "
        f"GMSD {diff['gmsd']:+.4f} (lower is better), artifacts {diff['artifacts']:+.2f} dB "
        "(lower is better)"
    )
    return "; ".join(parts) + "."
