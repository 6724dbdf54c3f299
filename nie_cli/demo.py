"""``nie demo``: the whole project on one machine, in one command.

1. data     real photographs in the DIV2K layout (``nie data photos``: scikit-image and Debian's
            lomiri-wallpapers packages) -> ``WORKDIR/data/photos``, and 384 px centre crops of
            its validation photographs
2. Ray      an embedded local cluster with its dashboard (or the cluster this process, or
            ``$RAY_ADDRESS``, already points at)
3. training three jobs from ``ray_jobs/recipes/demo_*.yaml``, every one fine-tuned from the
            same zoo checkpoint (``edsr_baseline`` x2, ``nie-photos``) for the same steps:
            the L2 loss, the hybrid loss with the zoo's technical-quality NIMA
            (``zoo:nima@nie-quality``, frozen), and a grid sweep over gamma (Ray Tune); all
            tracked in ``WORKDIR/mlflow.db``, the models registered there
4. summary  bicubic, L2, hybrid and the reference on the validation crops: PSNR-Y, SSIM-Y,
            NIMA, and two judges the hybrid loss never saw, NIQE and LR-consistency, as mean
            and standard deviation (``WORKDIR/runs/demo_summary.{md,json}``, date and machine)
5. report   ``nie report`` -> ``WORKDIR/runs/report/report.md`` (the summary included)
6. service  the web page and HTTP API with both models, until Ctrl-C (not with ``--no-serve``)

A second call reuses what the first built: a training stage is skipped when its folder
``WORKDIR/runs/NAME`` holds the finished result (``best/``, or the sweep's table) and a marker
file with the hash of the stage's resolved config (and of the scorer it uses). An interrupted
stage resumes from its latest checkpoint; a stage whose settings changed starts afresh.
``--fast`` uses the bundled sample set and a few steps per job (seconds; the tests).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from nie_cli.interrupt import run_interruptible
from nie_core.config import config_from_dict, config_to_dict, load_config
from ray_jobs.common import ensure_ray, format_seconds
from ray_jobs.config import RECIPES, EnhancerJobConfig, TuneJobConfig

__all__ = [
    "DemoLayout",
    "DemoResult",
    "StageResult",
    "config_hash",
    "demo_service_config",
    "ray_dashboard_url",
    "run_cli",
    "run_demo",
    "run_stage",
    "start_demo_service",
]

MARKER_FILE = "demo_stage.json"
SUMMARY_FILE = "demo_summary.json"
LOG_FILE = "demo.log"  # in runs/: every line of every `nie demo`, appended
SUMMARY_MARKDOWN = "demo_summary.md"
# The frozen scorer of the hybrid loss, of validation and of the summary: the zoo's NIMA.
SCORER = "zoo:nima@nie-quality"
SCORER_BACKBONE = "efficientnet_lite0"
VALID_CROP = 384  # the summary and validation use centre crops of the validation photographs

# --fast: a few optimizer steps on the bundled sample set, one worker each (tests, smoke runs).
FAST_ENHANCER = (
    "data.patch_size=16", "data.repeat=4", "data.max_valid_images=2", "run.epochs=2",
    "run.steps_per_epoch=2", "run.batch_size=4", "scaling.num_workers=1",
)  # fmt: skip
FAST_SWEEP_GAMMAS = [0.0, 0.4]
FAST_SWEEP = (*(f"job.{o}" for o in FAST_ENHANCER), "job.run.epochs=1")


# --------------------------------------------------------------------------- where things go


@dataclass(frozen=True)
class DemoLayout:
    """Everything the demo writes, under one working directory. ``fast`` uses the bundled
    sample set (scikit-image photographs only, nothing fetched) instead of the photo set."""

    workdir: Path
    fast: bool = False

    @property
    def data(self) -> Path:
        return self.workdir / "data" / "sample"

    @property
    def photos(self) -> Path:
        return self.workdir / "data" / "photos"

    @property
    def train_root(self) -> Path:
        """The DIV2K-layout training set."""
        return (self.data if self.fast else self.photos) / "DIV2K"

    @property
    def valid_root(self) -> Path:
        """Folder of HR validation images (centre crops of the validation photographs)."""
        if self.fast:
            return self.data / "DIV2K" / "DIV2K_valid_HR"
        return self.photos / f"valid_crops_{VALID_CROP}"

    @property
    def runs(self) -> Path:
        return self.workdir / "runs"

    @property
    def cache(self) -> Path:
        return self.workdir / ".nie_cache"

    @property
    def report(self) -> Path:
        return self.runs / "report"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.workdir / 'mlflow.db'}"


# --------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class StageResult:
    """One training stage: its folder, whether it was reused, and what the job returned."""

    name: str
    folder: str
    config_hash: str
    reused: bool
    seconds: float  # time spent in this call (0 when reused)
    result: dict[str, Any]  # TrainResult / TuneResult fields, JSON-ready


def config_hash(config: Mapping[str, Any], upstream: Sequence[str] = ()) -> str:
    """16 hex digits of SHA-256 over the resolved config and the hashes of the stages it uses."""
    text = json.dumps({"config": config, "upstream": list(upstream)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_marker(folder: Path, marker: Mapping[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MARKER_FILE + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1, default=str), encoding="utf-8")
    tmp.replace(folder / MARKER_FILE)


def run_stage(
    name: str,
    folder: Path,
    config: Mapping[str, Any],
    done_file: str,
    train: Callable[[], Mapping[str, Any]],
    upstream: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> StageResult:
    """Run one stage unless ``folder`` already holds its finished result.

    Reused when the marker in ``folder`` has the same :func:`config_hash` and says finished, and
    ``folder/done_file`` exists. A folder written with other settings (or by something else) is
    removed first; one left by an interrupted attempt with the same settings is kept, so the job
    resumes from its latest checkpoint.
    """
    digest = config_hash(config, upstream)
    marker = _read_marker(folder)
    same = marker is not None and marker.get("config_hash") == digest
    if same and marker.get("finished") and (folder / done_file).exists():
        log(f"{name}: reusing the finished run in {folder}")
        return StageResult(name, str(folder), digest, True, 0.0, dict(marker.get("result") or {}))
    if folder.exists() and not same:
        log(f"{name}: {folder} was written with other settings; starting afresh")
        shutil.rmtree(folder)
    elif same:
        log(f"{name}: resuming the unfinished run in {folder}")
    _write_marker(folder, {"config_hash": digest, "finished": False})
    start = time.monotonic()
    result = json.loads(json.dumps(dict(train()), default=str))
    _write_marker(folder, {"config_hash": digest, "finished": True, "result": result})
    return StageResult(name, str(folder), digest, False, time.monotonic() - start, result)


def _path_overrides(layout: DemoLayout, prefix: str = "") -> list[str]:
    """Absolute paths under the working directory (Ray workers do not share our cwd)."""
    return [
        f"{prefix}data.root={layout.train_root}",
        f"{prefix}data.valid_root={layout.valid_root}",
        f"{prefix}data.cache_dir={layout.cache}",
        f"{prefix}tracking.tracking_uri={layout.tracking_uri}",
        f"{prefix}loss.nima_checkpoint={SCORER}",
    ]


def enhancer_config(recipe: str, layout: DemoLayout) -> EnhancerJobConfig:
    """One of the demo's enhancer jobs (``recipes/<recipe>``) with its paths under the workdir."""
    return load_config(
        EnhancerJobConfig,
        RECIPES / recipe,
        [
            *_path_overrides(layout),
            f"run.storage_path={layout.runs}",
            *(FAST_ENHANCER if layout.fast else ()),
        ],
    )


def sweep_config(layout: DemoLayout) -> TuneJobConfig:
    """The demo's gamma sweep (``recipes/demo_gamma_sweep.yaml``); --fast: two gammas."""
    import yaml

    data = yaml.safe_load((RECIPES / "demo_gamma_sweep.yaml").read_text(encoding="utf-8"))
    if layout.fast:
        data["space"]["loss.gamma"] = {"grid": FAST_SWEEP_GAMMAS}
    return config_from_dict(
        TuneJobConfig,
        data,
        [
            *_path_overrides(layout, prefix="job."),
            f"storage_path={layout.runs / 'tune'}",
            *(FAST_SWEEP if layout.fast else ()),
        ],
    )


def prepare_data(layout: DemoLayout) -> None:
    """The training and validation images: the bundled sample set (--fast), else the photo set
    (scikit-image + Debian's lomiri-wallpapers photographs, ``nie data photos``) and the centre
    crops of its validation photographs."""
    if layout.fast:
        from nie_core.data.sample import build_sample_data

        build_sample_data(layout.data)
        return
    from nie_core.data.photos import build_photo_set, write_centre_crops

    build_photo_set(layout.photos, log=lambda line: None)
    write_centre_crops(layout.photos / "DIV2K" / "DIV2K_valid_HR", layout.valid_root, VALID_CROP)


# --------------------------------------------------------------------------- the demo


@dataclass(frozen=True)
class DemoResult:
    """What ``run_demo`` built."""

    layout: DemoLayout
    stages: dict[str, StageResult]  # "l2", "hybrid", "sweep"
    summary: Any  # nie_core.evaluation.EvalTable over the validation images
    summary_table: str  # its Markdown table, as printed
    report: Path | None  # report.md (None when it was not asked for)
    training_seconds: float  # spent training in this call
    gamma: float  # the hybrid model's gamma


def _log(message: str) -> None:
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
    _log(f"workdir {layout.workdir}, {mode} settings")

    l2_cfg = enhancer_config("demo_edsr_l2.yaml", layout)
    hybrid_cfg = enhancer_config("demo_edsr_hybrid.yaml", layout)
    sweep_cfg = sweep_config(layout)

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
    # (key, title, config, folder, file that proves it finished, how to run it)
    plan: list[tuple[str, str, Any, Path, str, Callable[[], Mapping[str, Any]]]] = [
        ("l2", f"EDSR-baseline x2, L2 loss, fine-tuned {start}", l2_cfg,
         layout.runs / l2_cfg.run.name, "best/checkpoint.pt",
         lambda: train_result(train_enhancer(l2_cfg))),
        ("hybrid", f"EDSR-baseline x2, hybrid loss (gamma {hybrid_cfg.loss.gamma:g}), the same "
         "steps from the same start", hybrid_cfg, layout.runs / hybrid_cfg.run.name,
         "best/checkpoint.pt", lambda: train_result(train_enhancer(hybrid_cfg))),
        ("sweep", "gamma sweep (Ray Tune grid, each trial fine-tuned from the zoo)", sweep_cfg,
         layout.runs / "tune" / sweep_cfg.name, tune.TABLE_FILE,
         lambda: sweep_result(tune.run_tune(sweep_cfg))),
    ]  # fmt: skip
    total = len(plan) + 3

    what = "the bundled sample set" if fast else "photographs (scikit-image, lomiri-wallpapers)"
    _log(f"[1/{total}] data: {what}")
    prepare_data(layout)

    _log(f"[2/{total}] Ray")
    ensure_ray(include_dashboard=True)
    dashboard = ray_dashboard_url()
    if dashboard:
        sign_in = dashboard_sign_in()
        _log(f"Ray dashboard: {dashboard}" + (f" ({sign_in})" if sign_in else ""))

    def train_and_summarise() -> DemoResult:
        started = time.monotonic()
        stages: dict[str, StageResult] = {}
        for number, (key, title, cfg, folder, done_file, train) in enumerate(plan, start=3):
            _log(f"[{number}/{total}] {title} -> {folder}")
            stage = run_stage(title, folder, config_to_dict(cfg), done_file, train, [SCORER], _log)
            stages[key] = stage
            if not stage.reused:
                _log(f"{title}: done in {format_seconds(stage.seconds)}")
        training_seconds = time.monotonic() - started
        _log(f"training finished in {format_seconds(training_seconds)}")

        _log(f"[{total}/{total}] summary" + (" and report" if report else ""))
        table, markdown = demo_summary(layout, stages, hybrid_cfg.loss.gamma, training_seconds)
        report_path = None
        if report:
            from .report import build_report

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


def demo_summary(
    layout: DemoLayout,
    stages: Mapping[str, StageResult],
    gamma: float,
    training_seconds: float,
) -> tuple[Any, str]:
    """Measure bicubic, the L2 and the hybrid model and the reference on every validation
    image (``nie_core.evaluation``: PSNR-Y, SSIM-Y, NIQE, LR-consistency, NIMA); returns the
    table and its Markdown, also written to ``runs/demo_summary.{json,md}`` with date and
    machine."""
    from datetime import datetime

    from nie_core.checkpoint import load_model
    from nie_core.evaluation import evaluate_images, list_images
    from nie_core.machine import describe_machine
    from nie_core.models.nima import freeze_scorer
    from nie_core.models.zoo import load_zoo_uri

    l2, hybrid = "EDSR x2, L2", f"EDSR x2, hybrid (gamma {gamma:g})"
    enhancers = {
        l2: load_model(stages["l2"].result["checkpoint_dir"]).eval(),
        hybrid: load_model(stages["hybrid"].result["checkpoint_dir"]).eval(),
    }
    images = list_images(layout.valid_root)
    table = evaluate_images(images, enhancers, 2, scorer=freeze_scorer(load_zoo_uri(SCORER)))
    stats = table.summary()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    title = f"nie demo summary ({date}, {describe_machine()}; training {format_seconds(training_seconds)})"
    lines = [table.markdown(title), "", _comparison(stats, l2, hybrid)]
    markdown = "\n".join(lines)
    layout.runs.mkdir(parents=True, exist_ok=True)
    (layout.runs / SUMMARY_MARKDOWN).write_text(markdown + "\n", encoding="utf-8")
    payload = {"date": date, "machine": describe_machine(), "training_seconds": training_seconds,
               "images": table.images, "scorer": SCORER, "summary": stats,
               "per_image": table.values}  # fmt: skip
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
    diff = {m: mean(hybrid, m) - mean(l2, m) for m in ("psnr_y", "nima", "niqe", "lr_psnr_y")}
    parts.append(
        f"hybrid minus L2: NIMA {diff['nima']:+.3f}, PSNR-Y {diff['psnr_y']:+.2f} dB, "
        f"NIQE {diff['niqe']:+.2f} (lower is better), LR-consistency {diff['lr_psnr_y']:+.2f} dB"
    )
    return "; ".join(parts) + "."


# --------------------------------------------------------------------------- serving


def _model_source(result: Mapping[str, Any]) -> str:
    """The registered version (``models:/NAME/VERSION``) of a training result, else its best
    checkpoint folder."""
    if result.get("registered_name") and result.get("registered_version"):
        return f"models:/{result['registered_name']}/{result['registered_version']}"
    return str(result["checkpoint_dir"])


def demo_service_config(demo: DemoResult) -> Any:
    """The service config of the demo: ``serve_app/serve_config.yaml`` with the demo's two
    models and scorer, its MLflow store, and replicas small enough for a 2-core machine."""
    from serve_app.config import DEFAULT_SERVE_CONFIG, service_config_from_args

    small = {
        "num_cpus": 0.25,
        "min_replicas": 1,
        "max_replicas": 1,
        "graceful_shutdown_timeout_s": 2.0,  # Ctrl-C should not wait for idle replicas
    }
    models = [
        {"name": "edsr_x2_baseline", "label": "baseline",
         "source": _model_source(demo.stages["l2"].result)},
        {"name": "edsr_x2_hybrid", "label": "hybrid",
         "source": _model_source(demo.stages["hybrid"].result)},
    ]  # fmt: skip
    return service_config_from_args(
        {
            "config": str(DEFAULT_SERVE_CONFIG),
            "models": models,
            "scorer": {"source": SCORER, "backbone": SCORER_BACKBONE, "replicas": small},
            "ingress": small,
            "enhancer": {**small, "num_cpus": 0.5},
            "mlflow_tracking_uri": demo.layout.tracking_uri,
        }
    )


def start_demo_service(demo: DemoResult, host: str = "127.0.0.1", port: int = 8000) -> str:
    """Deploy the service with the demo's models on the connected Ray cluster; returns its URL
    once every deployment runs. Stop it with ``ray.serve.shutdown()``."""
    from serve_app.app import start_service

    return start_service(demo_service_config(demo), host=host, port=port)


def ray_dashboard_url() -> str | None:
    """The dashboard URL of the Ray cluster this process is connected to (None without one)."""
    import ray

    if not ray.is_initialized():
        return None
    # Ray keeps the connected node's dashboard address here; it has no public accessor once
    # ray.init() has returned.
    from ray._private import worker

    node = getattr(worker, "_global_node", None)
    url = getattr(node, "webui_url", None)
    if not url:
        return None
    return url if "://" in url else f"http://{url}"


def dashboard_sign_in() -> str | None:
    """How to open the dashboard of a cluster with token authentication (Ray 2.60 turns it on
    for a new local cluster): the page asks for the token that ``ray get-auth-token`` prints.
    None when authentication is off."""
    import os

    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return None
    return f"it asks for a token: paste what `{_program('ray')} get-auth-token` prints"


def _program(name: str) -> str:
    """``name`` as the user can type it: the virtualenv's copy, relative when under the cwd."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        return name
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _mlflow_command(uri: str) -> str:
    return f"{_program('mlflow')} ui --backend-store-uri {uri} --port 5000"


def next_commands(demo: DemoResult, served: bool) -> list[str]:
    """Commands to try after the demo, with paths and names that exist now (and that point
    at this demo's models and MLflow store from the current directory)."""
    nie = _program("nie")
    layout = demo.layout
    lines = []
    lr_dir = layout.train_root / "DIV2K_valid_LR_bicubic" / "X2"
    inputs = sorted(lr_dir.glob("*.png"))
    hybrid = demo.stages["hybrid"].result.get("checkpoint_dir")
    if inputs and hybrid:
        lines.append(f"{nie} enhance {_relative(inputs[0])} --model {_relative(Path(hybrid))} "
                     "--out enhanced/")  # fmt: skip
        lines.append(f"{nie} score {_relative(inputs[0])}   (the zoo's NIMA)")
    lines.append(f"{nie} eval --data {_relative(layout.valid_root)}")
    if not served:
        here = layout.workdir == Path.cwd().resolve()
        store = "" if here else f" mlflow_tracking_uri={layout.tracking_uri}"
        lines.append(f"{nie} serve{store}   (the web page with the models just trained)")
    lines.append(f"{nie} report --out {_relative(layout.report)}")
    return lines


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``nie demo``: train (or reuse), print the summary, then serve until Ctrl-C
    (or exit with ``--no-serve``). The terminal shows NIE's own lines; everything, Ray's and
    MLflow's lines included, goes to ``runs/demo.log`` (``--verbose``: the terminal too)."""
    from nie_cli.console import log_to_file, verbose_requested

    log_path = Path(args.workdir).resolve() / "runs" / LOG_FILE
    with log_to_file(log_path, "nie demo", verbose_requested(args.verbose)):
        _log(f"full log (Ray's and MLflow's lines too): {_relative(log_path)}")
        return _run_cli(args, log_path)


def _run_cli(args: argparse.Namespace, log_path: Path) -> int:
    demo = run_demo(args.workdir, fast=args.fast)
    print()
    print(demo.summary_table)
    print("(NIMA here is the zoo's technical-quality scorer, trained on SYNTHETIC ratings.)")
    print(f"summary:  {demo.layout.runs / SUMMARY_MARKDOWN}")
    sweep = demo.stages["sweep"].result
    if sweep.get("best_trial"):
        print(f"gamma sweep: results {sweep.get('table')}, plot {sweep.get('gamma_plot')}")
    print()
    print(f"training: {format_seconds(demo.training_seconds)} in this call")
    if demo.report is not None:
        print(f"report:   {demo.report}")
    print(f"log:      {log_path}")
    print(f"MLflow:   {_mlflow_command(demo.layout.tracking_uri)}  (then http://127.0.0.1:5000)")
    dashboard = ray_dashboard_url()
    if dashboard:
        sign_in = dashboard_sign_in()
        print(f"Ray:      {dashboard}" + (f"  ({sign_in})" if sign_in else ""))
    print("next:")
    for line in next_commands(demo, served=not args.no_serve):
        print(f"  {line}")
    if args.no_serve:
        return 0
    from serve_app.shutdown import say, serve_until_interrupted

    url = start_demo_service(demo, port=args.port)
    print(f"web page: {url}/   (API docs: {url}/docs)")
    print("serving until Ctrl-C", flush=True)
    serve_until_interrupted("the demo's service")
    say("nie demo: stopped; the service and Ray have shut down")
    return 0
