"""The demo's steps in order: data, Ray, the three training stages, the summary and the report."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nie_cli.demo.guide import dashboard_sign_in, ray_dashboard_url
from nie_cli.demo.hardening import harden_scorer
from nie_cli.demo.layout import (
    SCORER,
    DemoLayout,
    enhancer_config,
    nima_config,
    prepare_data,
    sweep_config,
)
from nie_cli.demo.stages import StageResult, run_stage
from nie_cli.demo.summary import demo_summary
from nie_cli.interrupt import run_interruptible
from nie_core.config import config_to_dict
from ray_jobs.driver import ensure_ray
from ray_jobs.progress import format_seconds


@dataclass(frozen=True)
class DemoResult:
    """What ``run_demo`` built."""

    layout: DemoLayout
    stages: dict[str, StageResult]  # "l2", "probe", "scorer", "hybrid", "sweep"
    summary: Any  # nie_core.evaluation.EvalTable over the validation images
    summary_table: str  # its Markdown table, as printed
    report: Path | None  # report.md (None when it was not asked for)
    training_seconds: float  # spent training in this call
    gamma: float  # the hybrid model's gamma


def log(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def run_demo(workdir: str | Path = ".", fast: bool = False, report: bool = True) -> DemoResult:
    """Build the data, fine-tune and track every model, print the summary table and write the
    report (see the module docstring). Connects to Ray (``ensure_ray``, dashboard on) unless
    this process already is. Returns what was built; serving is :func:`start_demo_service`."""
    from ray_jobs import tune
    from ray_jobs.enhancer import train_enhancer

    layout = DemoLayout(Path(workdir).resolve(), fast)
    layout.workdir.mkdir(parents=True, exist_ok=True)
    mode = "fast (a few steps on the sample set)" if fast else "full"
    log(f"workdir {layout.workdir}, {mode} settings")

    l2_cfg = enhancer_config("demo_edsr_l2.yaml", layout)
    probe_cfg = enhancer_config("demo_edsr_gaming_probe.yaml", layout)
    nima_cfg = nima_config(layout)
    hardened = str(layout.runs / nima_cfg.run.name / "best")
    hybrid_cfg = enhancer_config("demo_edsr_hybrid.yaml", layout, scorer=hardened)
    sweep_cfg = sweep_config(layout, scorer=hardened)

    def train_result(result: Any) -> dict[str, Any]:
        return asdict(result)

    def sweep_result(result: Any) -> dict[str, Any]:
        if not result.best_trial:  # every trial failed: not a finished stage
            raise RuntimeError(
                f"every trial of the gamma sweep failed; see {result.table} and the errors above"
            )
        keys = ("name", "sweep_dir", "mlflow_run_id", "best_trial", "best_config", "table",
                "gamma_plot", "pareto_plot", "errored")  # fmt: skip
        return {k: getattr(result, k) for k in keys}

    start = f"from the zoo's {l2_cfg.model.name} x2 ({l2_cfg.model.weights})"

    def checkpoint(key: str) -> str:
        return str(stages[key].result["checkpoint_dir"])

    stages: dict[str, StageResult] = {}
    # (key, title, config, folder, file that proves it finished, how to run it, stages it uses)
    plan: list[tuple[str, str, Any, Path, str, Callable[[], Mapping[str, Any]], tuple]] = [
        ("l2", f"EDSR-baseline x2, L2 loss, fine-tuned {start}", l2_cfg,
         layout.runs / l2_cfg.run.name, "best/checkpoint.pt",
         lambda: train_result(train_enhancer(l2_cfg)), ()),
        ("probe", f"gaming probe: the report's plain hybrid loss (gamma "
         f"{probe_cfg.loss.gamma:g}) against the zoo NIMA, no remedies", probe_cfg,
         layout.runs / probe_cfg.run.name, "best/checkpoint.pt",
         lambda: train_result(train_enhancer(probe_cfg)), ()),
        ("scorer", "scorer hardening: the zoo NIMA fine-tuned with the probe's outputs rated as "
         "degraded (Ray Train)", nima_cfg, layout.runs / nima_cfg.run.name, "best/checkpoint.pt",
         lambda: harden_scorer(layout, checkpoint("l2"), checkpoint("probe")), ("l2", "probe")),
        ("hybrid", f"EDSR-baseline x2, hybrid loss with remedies (gamma "
         f"{hybrid_cfg.loss.gamma:g}) against the hardened scorer, the same steps from the same "
         "start", hybrid_cfg, layout.runs / hybrid_cfg.run.name, "best/checkpoint.pt",
         lambda: train_result(train_enhancer(hybrid_cfg)), ("scorer",)),
        ("sweep", "gamma sweep (Ray Tune grid, each trial fine-tuned from the zoo)", sweep_cfg,
         layout.runs / "tune" / sweep_cfg.name, tune.TABLE_FILE,
         lambda: sweep_result(tune.run_tune(sweep_cfg)), ("scorer",)),
    ]  # fmt: skip
    total = len(plan) + 3

    what = "the bundled sample set" if fast else "photographs (scikit-image, lomiri-wallpapers)"
    log(f"[1/{total}] data: {what}")
    prepare_data(layout)

    log(f"[2/{total}] Ray")
    ensure_ray(include_dashboard=True)
    dashboard = ray_dashboard_url()
    if dashboard:
        sign_in = dashboard_sign_in()
        log(f"Ray dashboard: {dashboard}" + (f" ({sign_in})" if sign_in else ""))

    def train_and_summarise() -> DemoResult:
        started = time.monotonic()
        for number, (key, title, cfg, folder, done_file, train, uses) in enumerate(plan, start=3):
            log(f"[{number}/{total}] {title} -> {folder}")
            upstream = [SCORER, *(stages[u].config_hash for u in uses)]
            stage = run_stage(title, folder, config_to_dict(cfg), done_file, train, upstream, log)
            stages[key] = stage
            if not stage.reused:
                log(f"{title}: done in {format_seconds(stage.seconds)}")
        training_seconds = time.monotonic() - started
        log(f"training finished in {format_seconds(training_seconds)}")
        # The summary states what training every model took, also those an earlier call trained.
        all_stages = sum(stage.trained_seconds for stage in stages.values())

        log(f"[{total}/{total}] summary" + (" and report" if report else ""))
        table, markdown = demo_summary(layout, stages, hybrid_cfg.loss.gamma, all_stages)
        report_path = None
        if report:
            from ray_jobs.report import build_report

            report_path = build_report(
                layout.report, layout.tracking_uri, summary_markdown=markdown
            ).markdown
        return DemoResult(
            layout, stages, table, markdown, report_path, training_seconds, hybrid_cfg.loss.gamma
        )

    if threading.current_thread() is not threading.main_thread():
        return train_and_summarise()  # no signals to handle off the main thread
    # Ray Train and Tune would install their own SIGINT handlers on the main thread and keep
    # them (Ctrl-C then failed to stop the demo): train on a worker thread (nie_cli.interrupt).
    return run_interruptible(train_and_summarise, "the demo")
