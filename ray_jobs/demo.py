"""``nie demo``: the whole project on one machine, in one command.

1. data     the sample sets in the DIV2K and AVA layouts -> ``WORKDIR/data/sample``
2. Ray      an embedded local cluster with its dashboard (or the cluster this process, or
            ``$RAY_ADDRESS``, already points at)
3. training five jobs from ``ray_jobs/recipes/demo_*.yaml``: NIMA, EDSR-baseline x2 with the L2
            loss and with the hybrid loss, a small MDSR, and a grid sweep over gamma (Ray Tune);
            all tracked in ``WORKDIR/mlflow.db``, the models registered there
4. summary  PSNR (Y) and mean NIMA score of bicubic, the L2 model and the hybrid model on the
            validation images (printed; also ``WORKDIR/runs/demo_summary.json``)
5. report   ``nie report`` -> ``WORKDIR/runs/report/report.md``
6. service  the web page and HTTP API with both models, until Ctrl-C (not with ``--no-serve``)

A second call reuses what the first built: a training stage is skipped when its folder
``WORKDIR/runs/NAME`` holds the finished result (``best/``, or the sweep's table) and a marker
file with the hash of the stage's resolved config (and of the stages it depends on). An
interrupted stage resumes from its latest checkpoint; a stage whose settings changed starts
afresh. ``--fast`` shrinks every job to seconds and leaves out the MDSR run (tests, smoke
runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nie_core.config import config_from_dict, config_to_dict, load_config

from .common import ensure_ray, format_seconds
from .config import EnhancerJobConfig, NimaJobConfig, TuneJobConfig

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

RECIPES = Path(__file__).resolve().parent / "recipes"
MARKER_FILE = "demo_stage.json"
SUMMARY_FILE = "demo_summary.json"
APP_NAME = "nie"

# --fast: every job shrunk to a few optimizer steps of a tiny model, one worker each.
FAST_NIMA = (
    "model.backbone=mnasnet0_5", "data.resize=72", "data.crop=64", "data.max_valid_images=16",
    "run.epochs=1", "run.steps_per_epoch=2", "run.batch_size=8", "scaling.num_workers=1",
)  # fmt: skip
FAST_ENHANCER = (
    "model.n_resblocks=2", "model.n_feats=16", "data.patch_size=16", "data.repeat=4",
    "data.max_valid_images=2", "run.epochs=2", "run.steps_per_epoch=2", "run.batch_size=4",
    "scaling.num_workers=1",
)  # fmt: skip
FAST_SWEEP_GAMMAS = [0.0, 0.4]
FAST_SWEEP = (*(f"job.{o}" for o in FAST_ENHANCER), "job.run.epochs=1")


# --------------------------------------------------------------------------- where things go


@dataclass(frozen=True)
class DemoLayout:
    """Everything the demo writes, under one working directory."""

    workdir: Path

    @property
    def data(self) -> Path:
        return self.workdir / "data" / "sample"

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

    def nima_checkpoint(self, run_name: str) -> Path:
        return self.runs / run_name / "best"


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


def _path_overrides(layout: DemoLayout, nima_run: str | None, prefix: str = "") -> list[str]:
    """Absolute paths under the working directory (Ray workers do not share our cwd)."""
    out = [
        f"{prefix}data.root={layout.data / 'DIV2K'}",
        f"{prefix}data.cache_dir={layout.cache}",
        f"{prefix}tracking.tracking_uri={layout.tracking_uri}",
    ]
    if nima_run is not None:
        out.append(f"{prefix}loss.nima_checkpoint={layout.nima_checkpoint(nima_run)}")
    return out


def nima_config(layout: DemoLayout, fast: bool) -> NimaJobConfig:
    """The demo's NIMA job (``recipes/demo_nima.yaml``) with its paths under the workdir."""
    return load_config(
        NimaJobConfig,
        RECIPES / "demo_nima.yaml",
        [
            f"data.root={layout.data / 'AVA'}",
            f"run.storage_path={layout.runs}",
            f"tracking.tracking_uri={layout.tracking_uri}",
            *(FAST_NIMA if fast else ()),
        ],
    )


def enhancer_config(
    recipe: str, layout: DemoLayout, nima_run: str, fast: bool
) -> EnhancerJobConfig:
    """One of the demo's enhancer jobs (``recipes/<recipe>``) with its paths under the workdir."""
    return load_config(
        EnhancerJobConfig,
        RECIPES / recipe,
        [
            *_path_overrides(layout, nima_run),
            f"run.storage_path={layout.runs}",
            *(FAST_ENHANCER if fast else ()),
        ],
    )


def sweep_config(layout: DemoLayout, nima_run: str, fast: bool) -> TuneJobConfig:
    """The demo's gamma sweep (``recipes/demo_gamma_sweep.yaml``); --fast: two gammas."""
    import yaml

    data = yaml.safe_load((RECIPES / "demo_gamma_sweep.yaml").read_text(encoding="utf-8"))
    if fast:
        data["space"]["loss.gamma"] = {"grid": FAST_SWEEP_GAMMAS}
    return config_from_dict(
        TuneJobConfig,
        data,
        [
            *_path_overrides(layout, nima_run, prefix="job."),
            f"storage_path={layout.runs / 'tune'}",
            *(FAST_SWEEP if fast else ()),
        ],
    )


# --------------------------------------------------------------------------- the demo


@dataclass(frozen=True)
class DemoResult:
    """What ``run_demo`` built."""

    layout: DemoLayout
    stages: dict[str, StageResult]  # "nima", "l2", "hybrid", "mdsr" (not with fast), "sweep"
    summary: list[Any]  # report.ImageAssessment per validation image
    summary_table: str
    report: Path | None  # report.md (None when it was not asked for)
    training_seconds: float  # spent training in this call
    nima_backbone: str


def _log(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def run_demo(workdir: str | Path = ".", fast: bool = False, report: bool = True) -> DemoResult:
    """Build the data, train and track every model, print the summary table and write the
    report (see the module docstring). Connects to Ray (``ensure_ray``, dashboard on) unless
    this process already is. Returns what was built; serving is :func:`start_demo_service`."""
    from nie_core.data.sample import build_sample_data

    from . import tune
    from .enhancer import train_enhancer
    from .nima import train_nima

    layout = DemoLayout(Path(workdir).resolve())
    layout.workdir.mkdir(parents=True, exist_ok=True)
    mode = "fast (tiny models)" if fast else "full"
    _log(f"workdir {layout.workdir}, {mode} settings")

    nima_cfg = nima_config(layout, fast)
    l2_cfg = enhancer_config("demo_edsr_l2.yaml", layout, nima_cfg.run.name, fast)
    hybrid_cfg = enhancer_config("demo_edsr_hybrid.yaml", layout, nima_cfg.run.name, fast)
    mdsr_cfg = enhancer_config("demo_mdsr_hybrid.yaml", layout, nima_cfg.run.name, fast)
    sweep_cfg = sweep_config(layout, nima_cfg.run.name, fast)

    def train_result(result: Any) -> dict[str, Any]:
        return asdict(result)

    def sweep_result(result: Any) -> dict[str, Any]:
        keys = ("name", "sweep_dir", "mlflow_run_id", "best_trial", "best_config", "table",
                "gamma_plot", "pareto_plot", "errored")  # fmt: skip
        return {k: getattr(result, k) for k in keys}

    # (key, title, config, folder, file that proves it finished, how to run it)
    plan: list[tuple[str, str, Any, Path, str, Callable[[], Mapping[str, Any]]]] = [
        ("nima", "NIMA (MnasNet) on the sample AVA set", nima_cfg,
         layout.runs / nima_cfg.run.name, "best/checkpoint.pt",
         lambda: train_result(train_nima(nima_cfg))),
        ("l2", "EDSR-baseline x2, L2 loss", l2_cfg, layout.runs / l2_cfg.run.name,
         "best/checkpoint.pt", lambda: train_result(train_enhancer(l2_cfg))),
        ("hybrid", f"EDSR-baseline x2, hybrid loss (gamma {hybrid_cfg.loss.gamma:g})",
         hybrid_cfg, layout.runs / hybrid_cfg.run.name, "best/checkpoint.pt",
         lambda: train_result(train_enhancer(hybrid_cfg))),
        ("mdsr", "MDSR-baseline x2/x3, hybrid loss (for the EDSR-vs-MDSR figure)",
         mdsr_cfg, layout.runs / mdsr_cfg.run.name, "best/checkpoint.pt",
         lambda: train_result(train_enhancer(mdsr_cfg))),
        ("sweep", "gamma sweep (Ray Tune grid)", sweep_cfg,
         layout.runs / "tune" / sweep_cfg.name, tune.TABLE_FILE,
         lambda: sweep_result(tune.run_tune(sweep_cfg))),
    ]  # fmt: skip
    if fast:  # the test of the whole pipeline needs no second architecture
        plan = [step for step in plan if step[0] != "mdsr"]
    total = len(plan) + 3

    _log(f"[1/{total}] sample data (DIV2K and AVA layouts; the AVA ratings are synthetic)")
    build_sample_data(layout.data)

    _log(f"[2/{total}] Ray")
    ensure_ray(include_dashboard=True)
    dashboard = ray_dashboard_url()
    if dashboard:
        _log(f"Ray dashboard: {dashboard}")

    started = time.monotonic()
    stages: dict[str, StageResult] = {}
    for number, (key, title, cfg, folder, done_file, train) in enumerate(plan, start=3):
        _log(f"[{number}/{total}] {title} -> {folder}")
        upstream = [] if key == "nima" else [stages["nima"].config_hash]
        stage = run_stage(title, folder, config_to_dict(cfg), done_file, train, upstream, _log)
        stages[key] = stage
        if not stage.reused:
            _log(f"{title}: done in {format_seconds(stage.seconds)}")
    training_seconds = time.monotonic() - started
    _log(f"training finished in {format_seconds(training_seconds)}")

    _log(f"[{total}/{total}] summary" + (" and report" if report else ""))
    summary, table = demo_summary(layout, stages, l2_cfg, hybrid_cfg.loss.gamma)
    report_path = None
    if report:
        from .report import build_report

        report_path = build_report(layout.report, layout.tracking_uri).markdown
    return DemoResult(
        layout, stages, summary, table, report_path, training_seconds, nima_cfg.model.backbone
    )


def demo_summary(
    layout: DemoLayout,
    stages: Mapping[str, StageResult],
    valid_cfg: EnhancerJobConfig,
    gamma: float,
) -> tuple[list[Any], str]:
    """Assess bicubic, the L2 and the hybrid model on every validation image with the demo's
    NIMA; returns the per-image results and the printed table (also written as JSON)."""
    from nie_core.checkpoint import load_model
    from nie_core.models.nima import freeze_scorer

    from .enhancer import valid_dataset
    from .report import assess_outputs, format_summary_table, mean_assessment

    enhancers = {
        "baseline": load_model(stages["l2"].result["checkpoint_dir"]).eval(),
        "hybrid": load_model(stages["hybrid"].result["checkpoint_dir"]).eval(),
    }
    scorer = freeze_scorer(load_model(stages["nima"].result["checkpoint_dir"]))
    scale = valid_cfg.model.scales[0]
    dataset = valid_dataset(valid_cfg)
    items = assess_outputs(enhancers, scorer, dataset, scale)
    labels = {
        "bicubic": f"bicubic x{scale}",
        "baseline": f"EDSR-baseline x{scale}, L2",
        "hybrid": f"EDSR-baseline x{scale}, hybrid (gamma {gamma:g})",
        "reference": "reference (HR)",
    }
    table = format_summary_table(items, labels)
    summary_file = layout.runs / SUMMARY_FILE
    summary_file.parent.mkdir(parents=True, exist_ok=True)
    summary_file.write_text(
        json.dumps(
            {
                "images": [a.image for a in items],
                "mean": {labels[m]: v for m, v in mean_assessment(items).items()},
                "per_image": [{"image": a.image, "psnr_y": a.psnr_y, "nima_mean": a.nima_mean}
                              for a in items],
            },
            indent=1,
        ),
        encoding="utf-8",
    )  # fmt: skip
    return items, table


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
    from serve_app.cli import DEFAULT_SERVE_CONFIG
    from serve_app.config import service_config_from_args

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
            "scorer": {
                "source": _model_source(demo.stages["nima"].result),
                "backbone": demo.nima_backbone,
                "replicas": small,
            },
            "ingress": small,
            "enhancer": {**small, "num_cpus": 0.5},
            "mlflow_tracking_uri": demo.layout.tracking_uri,
        }
    )


def start_demo_service(demo: DemoResult, host: str = "127.0.0.1", port: int = 8000) -> str:
    """Deploy the service with the demo's models on the connected Ray cluster; returns its URL
    once every deployment runs. Stop it with ``ray.serve.shutdown()``."""
    from serve_app.cli import start_service

    return start_service(demo_service_config(demo), host=host, port=port, app_name=APP_NAME)


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


def _mlflow_command(uri: str) -> str:
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    program = str(mlflow_bin) if mlflow_bin.exists() else "mlflow"
    try:
        program = str(Path(program).relative_to(Path.cwd()))
    except ValueError:
        pass
    return f"{program} ui --backend-store-uri {uri} --port 5000"


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``nie demo``: train (or reuse), print the summary, then serve until Ctrl-C
    (or exit with ``--no-serve``)."""
    demo = run_demo(args.workdir, fast=args.fast)
    print()
    print("Validation images: PSNR (Y) and mean NIMA score (NIMA trained on SYNTHETIC ratings)")
    print(demo.summary_table)
    sweep = demo.stages["sweep"].result
    if sweep.get("best_trial"):
        print(f"gamma sweep: results {sweep.get('table')}, plot {sweep.get('gamma_plot')}")
    print()
    print(f"training: {format_seconds(demo.training_seconds)} in this call")
    if demo.report is not None:
        print(f"report:   {demo.report}")
    print(f"MLflow:   {_mlflow_command(demo.layout.tracking_uri)}  (then http://127.0.0.1:5000)")
    dashboard = ray_dashboard_url()
    if dashboard:
        print(f"Ray:      {dashboard}")
    if args.no_serve:
        return 0
    from serve_app.cli import serve_until_interrupted

    url = start_demo_service(demo, port=args.port)
    print(f"web page: {url}/   (API docs: {url}/docs)")
    print("serving until Ctrl-C", flush=True)
    serve_until_interrupted()
    return 0
