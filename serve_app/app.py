"""Assembling the Ray Serve application from a :class:`ServiceConfig`.

Three ways to run it, all reading the same settings:

- ``nie serve --config serve_app/serve_config.yaml`` (``nie_cli.serve.run_serve``);
- ``serve run serve_app/serve_config.yaml`` or ``serve deploy serve_app/serve_config.yaml``,
  whose application names ``import_path: serve_app.app:build`` with the service settings as
  ``args``;
- ``serve run serve_app.app:build config=my_service.yaml allow_untrained=true`` (args on the
  command line; string values are parsed like ``key=value`` overrides).

Before anything is deployed, :func:`build_app` checks that every configured model exists, so a
missing checkpoint or registry entry is one clear error at start-up (unless ``allow_untrained``).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray.serve import Application

from nie_core.runtime import MODEL_PROCESS_ENV
from nie_tracking.loading import REGISTRY_PREFIX, ModelUnavailableError, resolve_source
from serve_app.api import ApiIngress
from serve_app.config import ReplicaSettings, ServiceConfig, service_config_from_args
from serve_app.deployments import (
    Enhancer,
    Scorer,
    enhancer_settings,
    enhancer_user_config,
    scorer_settings,
    scorer_user_config,
)
from serve_app.results import ResultStore

logger = logging.getLogger(__name__)

__all__ = ["APP_NAME", "apply_fallbacks", "build", "build_app", "check_sources", "start_service"]

APP_NAME = "nie"  # the Serve application name of `nie serve` and `nie demo`


def check_sources(config: ServiceConfig) -> list[str]:
    """Check every model source (weights are not read); returns warnings for sources that will
    fall back to random weights. Raises :class:`ModelUnavailableError` listing every missing
    source unless ``config.allow_untrained``."""
    problems: list[str] = []
    sources = [(f"model '{spec.name}'", spec.source, spec.arch) for spec in config.models]
    sources.append(("scorer", config.scorer.source, "nima"))
    for what, source, arch in sources:
        try:
            resolve_source(source, config.mlflow_tracking_uri)
        except ModelUnavailableError as error:
            problems.append(f"{what}: {error}" if source else f"{what}: no source ({arch})")
    if problems and not config.allow_untrained:
        raise ModelUnavailableError(
            "no trained weights for " + "; ".join(problems) + ". Train the models (nie train "
            "... / nie demo) and point the service config at their checkpoints or models:/ "
            "URIs, or set allow_untrained: true to serve random weights (tests only)."
        )
    return [f"{problem} -> RANDOM weights (allow_untrained)" for problem in problems]


def apply_fallbacks(config: ServiceConfig) -> ServiceConfig:
    """Serve each model's ``fallback`` (e.g. the zoo model) when its ``source`` does not exist
    yet; a warning names every swap."""
    models = []
    for spec in config.models:
        if spec.fallback:
            try:
                resolve_source(spec.source, config.mlflow_tracking_uri)
            except ModelUnavailableError as error:
                logger.warning("model %r: %s; serving its fallback %s", spec.name, error,
                               spec.fallback)  # fmt: skip
                spec = replace(spec, source=spec.fallback)
        models.append(spec)
    return replace(config, models=tuple(models))


def build_app(config: ServiceConfig) -> Application:
    """The Serve application: ApiIngress -> {Enhancer per model, Scorer, ResultStore}.

    Raises :class:`ModelUnavailableError` (see :func:`check_sources`) before deploying anything.
    Each Enhancer's ``user_config`` is ``{"source": ...}``: a Serve config file that overrides
    it for one deployment (``deployments: [{name: Enhancer_NAME, user_config: {source: ...}}]``)
    and is deployed again with ``serve deploy`` swaps that model in place (``reconfigure``),
    with the same replicas.
    """
    config = apply_fallbacks(config)
    check_sources(config)
    config = _pin_locations(config)
    scorer = Scorer.options(
        user_config=scorer_user_config(config), **_model_replica_options(config.scorer.replicas)
    ).bind(scorer_settings(config))
    enhancers = {
        spec.name: Enhancer.options(
            name=spec.deployment_name,
            user_config=enhancer_user_config(spec),
            **_model_replica_options(config.enhancer),
        ).bind(enhancer_settings(spec, config))
        for spec in config.models
    }
    results = ResultStore.bind(config.results_max_entries, config.results_max_bytes)
    return ApiIngress.options(**config.ingress.deployment_options()).bind(
        config, scorer, enhancers, results
    )


def _model_replica_options(settings: ReplicaSettings) -> dict[str, Any]:
    """Deployment options of a model-running deployment: its settings, plus glibc's allocator
    told to keep freed activation memory (``nie_core.runtime.MODEL_PROCESS_ENV``: without it
    every request page-faults its activations back in, ~15% of a 256 x 256 enhance)."""
    options = settings.deployment_options()
    actor_options = dict(options["ray_actor_options"])
    actor_options["runtime_env"] = {"env_vars": dict(MODEL_PROCESS_ENV)}
    return {**options, "ray_actor_options": actor_options}


def _pin_locations(config: ServiceConfig) -> ServiceConfig:
    """Make relative checkpoint paths and the MLflow store absolute, as seen from here: the
    replicas' working directory may differ from the one the config was written for."""
    from nie_tracking import resolve_tracking_uri

    def pinned(source: str) -> str:
        if not source or source.startswith(REGISTRY_PREFIX) or not Path(source).exists():
            return source
        return str(Path(source).resolve())

    return replace(
        config,
        models=tuple(replace(spec, source=pinned(spec.source)) for spec in config.models),
        scorer=replace(config.scorer, source=pinned(config.scorer.source)),
        mlflow_tracking_uri=resolve_tracking_uri(config.mlflow_tracking_uri),
    )


def build(args: dict[str, Any]) -> Application:
    """Application builder for ``serve run`` / ``serve deploy`` (``import_path:
    serve_app.app:build``): ``args`` holds the service settings, or ``config: FILE`` plus
    overrides."""
    return build_app(service_config_from_args(args))


def start_service(
    config: ServiceConfig, host: str = "127.0.0.1", port: int = 8000, app_name: str = APP_NAME
) -> str:
    """Deploy the service on the current Ray cluster (started locally if none is connected)
    and return its base URL. Raises ``ModelUnavailableError`` before deploying when a model is
    missing; returns once every deployment is running."""
    import ray
    from ray import serve

    served = apply_fallbacks(config)
    for spec, now in zip(config.models, served.models, strict=True):
        if now.source != spec.source:
            print(f"nie serve: note: model {spec.name!r}: {spec.source} does not exist yet; "
                  f"serving {now.source}", file=sys.stderr)  # fmt: skip
    config = served
    for warning in check_sources(config):
        print(f"nie serve: warning: {warning}", file=sys.stderr)
    application = build_app(config)
    if not ray.is_initialized():
        ray.init(log_to_driver=False)
    serve.start(
        http_options={"host": host, "port": port, "request_timeout_s": config.request_timeout_s}
    )
    serve.run(application, name=app_name, route_prefix="/", blocking=False)
    return f"http://{host}:{port}"
