"""Typed settings of the enhance-and-score service, read with ``nie_core.config``.

One :class:`ServiceConfig` describes the whole Ray Serve application: which enhancement models
to serve (each from a checkpoint or the MLflow model registry), the NIMA scorer, the inference
settings (tiling, fast path), the limits on what a request may send, and the production settings
of each deployment (replicas, autoscaling bounds, concurrency, health checks).

It is read from a plain YAML file mirroring the dataclasses, or from the ``args`` of the
``serve_app.app:build`` application in a Ray Serve config file (``serve_app/serve_config.yaml``):
see :func:`service_config_from_file`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from nie_core.config import ConfigError, config_from_dict, load_config

__all__ = [
    "DEFAULT_SERVE_CONFIG",
    "APP_IMPORT_PATH",
    "ModelSpec",
    "ReplicaSettings",
    "ScorerSpec",
    "ServiceConfig",
    "load_service_config",
    "serve_http_options",
    "service_config_from_args",
    "service_config_from_file",
]

DEFAULT_SERVE_CONFIG = Path(__file__).resolve().parent / "serve_config.yaml"  # the bundled one
APP_IMPORT_PATH = "serve_app.app:build"  # the application builder named in Serve config files
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Task = Literal["sr", "deblur"]


@dataclass(frozen=True)
class ModelSpec:
    """One enhancement model served under ``name`` (one Ray Serve deployment each)."""

    name: str  # public name: the `model` field of /v1/enhance, URL-safe
    # Checkpoint file or run folder, models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/latest.
    source: str = ""
    label: str = ""  # shown on the results page, e.g. "baseline" (L2) or "hybrid" (L2 + NIMA)
    task: Task | None = None  # None: read from the checkpoint's / MLflow run's config, else "sr"
    # Only with allow_untrained and no trained weights found: the architecture built with random
    # weights (a nie_core.models name) and its arguments, e.g. {scale: 2, n_resblocks: 2}.
    arch: str = "edsr_baseline"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    # Served instead when `source` has no trained weights yet (e.g. before any `nie demo`): any
    # source, typically the shipped zoo model zoo:edsr_baseline-x2@nie-photos. "" for none.
    fallback: str = ""

    def __post_init__(self) -> None:
        if not _MODEL_NAME.match(self.name):
            raise ValueError(
                f"model name {self.name!r} must be 1-64 characters of letters, digits, '_', '.' "
                "or '-' (it appears in URLs)"
            )
        if self.name == "input":
            raise ValueError("model name 'input' is reserved for the uploaded image")

    @property
    def deployment_name(self) -> str:
        """The name of this model's Enhancer deployment in Ray Serve."""
        return f"Enhancer_{self.name}"


@dataclass(frozen=True)
class ReplicaSettings:
    """Production settings of one deployment (Ray Serve deployment options)."""

    num_cpus: float = 0.5  # CPUs reserved per replica (fractions pack replicas on small hosts)
    min_replicas: int = 1  # autoscaling lower bound (also the initial count)
    max_replicas: int = 1  # autoscaling upper bound
    target_ongoing_requests: float = 2.0  # autoscaler's target of in-flight requests per replica
    max_ongoing_requests: int = 4  # requests a replica accepts at once; more queue at the router
    health_check_period_s: float = 10.0  # how often Serve calls the replica's check_health
    health_check_timeout_s: float = 30.0  # a check slower than this marks the replica unhealthy
    graceful_shutdown_timeout_s: float = 20.0  # on scale-down/redeploy, wait this long to drain

    def __post_init__(self) -> None:
        if self.num_cpus < 0:
            raise ValueError(f"num_cpus must be >= 0, got {self.num_cpus}")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError(
                f"need 0 <= min_replicas <= max_replicas and max_replicas >= 1, got "
                f"min_replicas={self.min_replicas}, max_replicas={self.max_replicas}"
            )
        if self.max_ongoing_requests < 1:
            raise ValueError(f"max_ongoing_requests must be >= 1, got {self.max_ongoing_requests}")
        if self.health_check_period_s <= 0 or self.health_check_timeout_s <= 0:
            raise ValueError(
                f"health check period and timeout must be > 0, got "
                f"{self.health_check_period_s} and {self.health_check_timeout_s}"
            )
        if self.graceful_shutdown_timeout_s < 0:
            raise ValueError(
                f"graceful_shutdown_timeout_s must be >= 0, got {self.graceful_shutdown_timeout_s}"
            )

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Deployment.options(...)``."""
        return {
            "ray_actor_options": {"num_cpus": self.num_cpus},
            "max_ongoing_requests": self.max_ongoing_requests,
            "autoscaling_config": {
                "min_replicas": self.min_replicas,
                "initial_replicas": max(self.min_replicas, 1),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            },
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
            "graceful_shutdown_timeout_s": self.graceful_shutdown_timeout_s,
        }


@dataclass(frozen=True)
class ScorerSpec:
    """The NIMA scorer (Talebi & Milanfar 2018) that rates inputs and outputs. How images are
    resized for it is the model's own (its ``scorer_input``), as in ``nie score``: not set here."""

    source: str = ""  # NIMA checkpoint file/folder or models:/NAME@ALIAS (as for ModelSpec)
    backbone: str = "mnasnet1_0"  # of the random-weight scorer only (allow_untrained)
    max_batch_size: int = 8  # @serve.batch: most images scored in one forward pass
    batch_wait_timeout_s: float = 0.02  # @serve.batch: how long a batch waits to fill up
    replicas: ReplicaSettings = field(
        default_factory=lambda: ReplicaSettings(num_cpus=0.5, max_ongoing_requests=16)
    )

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"scorer.max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.batch_wait_timeout_s < 0:
            raise ValueError(
                f"scorer.batch_wait_timeout_s must be >= 0, got {self.batch_wait_timeout_s}"
            )


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the Serve application needs. The default reservations (ingress 0.25 CPU,
    scorer 0.5, 0.5 per model) fit two models on a 2-core host; raise them on bigger ones."""

    models: tuple[ModelSpec, ...] = ()  # the enhancers; at least one
    scorer: ScorerSpec = field(default_factory=ScorerSpec)
    # Refuse to start when a model's trained weights cannot be found, unless this is true: then
    # the model is built from `arch` with random weights (tests and UI development only).
    allow_untrained: bool = False
    mlflow_tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    tile_size: int | None = 256  # tile side in input pixels; None: whole images in one pass
    tile_overlap: int | None = None  # None: the model's receptive radius (seamless output)
    fast: Literal["auto", "on", "off"] = "auto"  # channels_last + bf16 where the CPU/GPU has it
    torch_threads: int | None = None  # intra-op threads per Enhancer replica; None: Ray's default
    max_pixels: int = 4_194_304  # pixel budget of an uploaded image (2048 x 2048), header-checked
    max_upload_bytes: int = 25 * 1024 * 1024  # largest accepted upload
    request_timeout_s: float = 120.0  # per request; slower ones get 504 (also Serve's HTTP limit)
    results_max_entries: int = 64  # results kept for the web page (LRU)
    results_max_bytes: int = 512 * 1024 * 1024  # and at most this many PNG bytes in total
    ingress: ReplicaSettings = field(
        default_factory=lambda: ReplicaSettings(num_cpus=0.25, max_ongoing_requests=64)
    )
    enhancer: ReplicaSettings = field(default_factory=ReplicaSettings)  # for every model

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("models: configure at least one enhancement model")
        names = [spec.name for spec in self.models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"models: duplicate model names {duplicates}")
        if self.tile_size is not None and self.tile_size < 16:
            raise ValueError(f"tile_size must be >= 16 or null, got {self.tile_size}")
        if self.tile_overlap is not None and self.tile_overlap < 0:
            raise ValueError(f"tile_overlap must be >= 0 or null, got {self.tile_overlap}")
        for key in ("max_pixels", "max_upload_bytes", "results_max_entries", "results_max_bytes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1 or null, got {self.torch_threads}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")

    def model(self, name: str) -> ModelSpec:
        """The spec named ``name``; ``KeyError`` if there is none."""
        for spec in self.models:
            if spec.name == name:
                return spec
        raise KeyError(name)


def service_config_from_args(
    args: Mapping[str, Any], overrides: Iterable[str] = ()
) -> ServiceConfig:
    """Build the config from the ``args`` of a Serve application (or any mapping).

    ``args`` may name a YAML file under ``config`` (a plain service config or a Serve config
    file); its other keys override the file's. String values of dotted keys (as ``serve run
    serve_app.app:build allow_untrained=true`` passes them) are parsed like ``key=value``
    overrides, so ``tile_size=128`` gives an int.
    """
    data = dict(args)
    base: dict[str, Any] = {}
    config_path = data.pop("config", None)
    if config_path is not None:
        base = _service_mapping_from_file(Path(config_path))
    dotted = [f"{key}={value}" for key, value in data.items() if isinstance(value, str)]
    nested = {key: value for key, value in data.items() if not isinstance(value, str)}
    return config_from_dict(ServiceConfig, _merge(base, nested), [*dotted, *overrides])


def service_config_from_file(path: str | Path, overrides: Iterable[str] = ()) -> ServiceConfig:
    """Read a service config YAML, or the ``args`` of our application in a Serve config file."""
    return service_config_from_args({"config": str(path)}, overrides)


def load_service_config(path: str | Path | None, overrides: Iterable[str] = ()) -> ServiceConfig:
    """:func:`service_config_from_file`, or the defaults plus ``overrides`` when ``path`` is None
    (which fails unless the overrides configure a model)."""
    if path is None:
        return load_config(ServiceConfig, None, list(overrides))
    return service_config_from_file(path, overrides)


def serve_http_options(path: str | Path) -> dict[str, Any]:
    """The ``http_options`` of a Serve config file ({} for a plain service config)."""
    raw = _read_yaml(Path(path))
    options = raw.get("http_options") if "applications" in raw else None
    return dict(options or {})


def _service_mapping_from_file(path: Path) -> dict[str, Any]:
    raw = _read_yaml(path)
    if "applications" not in raw:
        return raw
    apps = [app for app in raw["applications"] or [] if isinstance(app, Mapping)]
    ours = [app for app in apps if app.get("import_path") == APP_IMPORT_PATH]
    if len(ours) != 1:
        raise ConfigError(
            f"Serve config '{path}' must hold exactly one application with import_path "
            f"{APP_IMPORT_PATH!r}, found {len(ours)}"
        )
    args = dict(ours[0].get("args") or {})
    nested_path = args.pop("config", None)
    if nested_path is not None:  # a path relative to the Serve config file
        nested = Path(nested_path)
        base = _service_mapping_from_file(nested if nested.is_absolute() else path.parent / nested)
        return _merge(base, args)
    return args


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: '{path}'")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file '{path}' is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping, got {type(data).__name__}")
    return data


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: mappings merge key by key, anything else in ``top`` wins."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
