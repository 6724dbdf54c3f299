"""Finding and loading models for the service, `nie enhance` and the report: checkpoints, the zoo,
the MLflow registry, or random weights.

A model *source* is one of

- a checkpoint file or a run folder holding ``checkpoint.pt`` (``nie_core.checkpoint``);
- ``zoo:MODEL[-xSCALE]@TAG``, weights shipped with the package (``nie_core.models.zoo``), e.g.
  ``zoo:edsr_baseline-x2@nie-photos``;
- ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME/latest`` in the MLflow model
  registry (the training jobs log models with ``serialization_format="pickle"``, so the loaded
  module takes any batch and image size); :func:`registered_run_model` names the version a run
  registered;
- with ``allow_untrained`` only: a ``nie_core.models`` architecture built with random weights.

A source that cannot be found is a :class:`ModelUnavailableError` that says what to do, unless
``allow_untrained`` opts in to random weights: a service must never serve them silently.
MLflow is imported only for ``models:/`` sources.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nie_core.checkpoint import load_checkpoint, load_model, resolve_checkpoint_path
from nie_core.models import create_model, list_models
from nie_core.models.zoo import ZOO_PREFIX, load_zoo_uri, parse_zoo_uri
from nie_tracking.uris import missing_sqlite_store, resolve_tracking_uri

__all__ = [
    "REGISTRY_PREFIX",
    "LoadedModel",
    "ModelUnavailableError",
    "ResolvedSource",
    "load_enhancer",
    "load_scorer",
    "registered_run_model",
    "resolve_source",
]

logger = logging.getLogger(__name__)

REGISTRY_PREFIX = "models:/"


class ModelUnavailableError(ValueError):
    """A configured model source does not exist (no checkpoint, no registry entry)."""


@dataclass(frozen=True)
class ResolvedSource:
    """Where a source points, checked to exist, before any weights are read."""

    source: str  # as configured
    kind: str  # "checkpoint" or "registry"
    location: str  # the checkpoint file, or models:/NAME/VERSION
    task: str | None  # the training task recorded with the weights, if any
    run_id: str | None = None  # the MLflow run that produced a registered version


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference, with what the service reports about it."""

    module: nn.Module  # in eval mode, on the CPU
    kind: str  # "edsr" (one scale, forward(x)), "mdsr" (forward(x, scale)) or "nima"
    scales: tuple[int, ...]  # upscaling factors it serves; (1,) for same-size restoration
    task: str  # "sr" or "deblur" ("assess" for the scorer)
    source: str  # as configured
    origin: str  # what was loaded: a checkpoint path, models:/NAME/VERSION, or "untrained ..."
    trained: bool  # False only for random weights (allow_untrained)
    fingerprint: str  # short hash of the weights: changes when the model is swapped

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (everything but the module)."""
        return {
            "kind": self.kind,
            "scales": list(self.scales),
            "task": self.task,
            "source": self.source,
            "origin": self.origin,
            "trained": self.trained,
            "fingerprint": self.fingerprint,
        }


def resolve_source(source: str, tracking_uri: str | None = None) -> ResolvedSource:
    """Check that ``source`` exists and say where it points; reads no weights (for a registry
    source, it asks the registry for the version and its run's task).

    Raises :class:`ModelUnavailableError` naming the source when it does not exist.
    """
    if not source:
        raise ModelUnavailableError("no model source configured (empty 'source')")
    if source.startswith(ZOO_PREFIX):
        try:
            entry = parse_zoo_uri(source)
        except ValueError as error:
            raise ModelUnavailableError(str(error)) from error
        return ResolvedSource(source, "zoo", entry.uri, None if entry.model == "nima" else "sr")
    if source.startswith(REGISTRY_PREFIX):
        return _resolve_registry(source, tracking_uri)
    try:
        path = resolve_checkpoint_path(source)
    except ValueError as error:
        raise ModelUnavailableError(f"no checkpoint at '{source}' ({error})") from error
    return ResolvedSource(source, "checkpoint", str(path.resolve()), None)


def load_enhancer(
    source: str,
    *,
    allow_untrained: bool = False,
    arch: str = "edsr_baseline",
    arch_kwargs: Mapping[str, Any] | None = None,
    task: str | None = None,
    tracking_uri: str | None = None,
) -> LoadedModel:
    """Load an EDSR/MDSR-like enhancer from ``source`` (see the module docstring).

    ``source`` may also be a ``nie_core.models`` name (e.g. ``"edsr_baseline"``), which builds that
    architecture with random weights and so needs ``allow_untrained``, like a missing source
    does (then ``arch(**arch_kwargs)`` is built). ``task`` overrides the task recorded with the
    weights (default "sr").
    """
    loaded = _load(source, allow_untrained, tracking_uri, arch, dict(arch_kwargs or {}))
    module, origin, trained, recorded_task = loaded
    scales_attr = getattr(module, "scales", None)
    if scales_attr is not None:
        kind, scales = "mdsr", tuple(int(s) for s in scales_attr)
    elif isinstance(getattr(module, "scale", None), int):
        kind, scales = "edsr", (int(module.scale),)
    else:
        raise ModelUnavailableError(
            f"model from '{source or arch}' ({type(module).__name__}) is not an enhancer: it has "
            "neither a `scale` nor a `scales` attribute"
        )
    final_task = task or recorded_task or "sr"
    if final_task not in ("sr", "deblur"):
        raise ValueError(f"task must be 'sr' or 'deblur', got {final_task!r}")
    return LoadedModel(
        module, kind, scales, final_task, source, origin, trained, _fingerprint(module)
    )


def load_scorer(
    source: str,
    *,
    allow_untrained: bool = False,
    backbone: str = "mnasnet1_0",
    tracking_uri: str | None = None,
) -> LoadedModel:
    """Load a NIMA scorer (Talebi & Milanfar 2018) from ``source``; random weights with the
    given ``backbone`` only with ``allow_untrained``. Checks that it maps images to 10 bucket
    probabilities."""
    module, origin, trained, _ = _load(
        source, allow_untrained, tracking_uri, "nima", {"backbone": backbone, "weights": None}
    )
    with torch.inference_mode():
        probs = module(torch.full((1, 3, 64, 64), 0.5))
    if tuple(probs.shape) != (1, 10):
        raise ModelUnavailableError(
            f"model from '{source}' ({type(module).__name__}) is not a NIMA scorer: it maps a "
            f"1x3x64x64 image to shape {tuple(probs.shape)}, not (1, 10)"
        )
    return LoadedModel(module, "nima", (), "assess", source, origin, trained, _fingerprint(module))


def registered_run_model(run_id: str, tracking_uri: str | None = None) -> str:
    """The source ``models:/NAME/VERSION`` of the newest model version that MLflow run ``run_id``
    registered (the training jobs register their best model).

    Raises :class:`ModelUnavailableError` when the run registered none.
    """
    client, uri = _registry_client(tracking_uri, f"run {run_id}")
    versions = client.search_model_versions(f"run_id = '{run_id}'")
    if not versions:
        raise ModelUnavailableError(f"run {run_id} registered no model in {uri}")
    newest = max(versions, key=lambda v: int(v.version))
    return f"{REGISTRY_PREFIX}{newest.name}/{newest.version}"


# --------------------------------------------------------------------------- internals


def _load(
    source: str,
    allow_untrained: bool,
    tracking_uri: str | None,
    arch: str,
    arch_kwargs: dict[str, Any],
) -> tuple[nn.Module, str, bool, str | None]:
    """(module in eval mode, origin, trained, recorded task)."""
    if source in list_models():  # an architecture name: random weights by definition
        arch, source = source, ""
    try:
        resolved = resolve_source(source, tracking_uri)
    except ModelUnavailableError as error:
        if not allow_untrained:
            hint = (
                "train one (nie train ...) and point the config at its checkpoint or "
                "models:/NAME@ALIAS, or set allow_untrained (tests only) to serve random weights"
            )
            if not source:
                raise ModelUnavailableError(
                    f"'{arch}' would have random weights: {hint}"
                ) from error
            raise ModelUnavailableError(f"{error}: {hint}") from error
        logger.warning("%s; serving %s with RANDOM weights (allow_untrained)", error, arch)
        module = create_model(arch, **arch_kwargs)
        details = ", ".join(f"{k}={v}" for k, v in arch_kwargs.items() if k != "weights")
        return module.eval(), f"untrained {arch}({details})", False, None

    if resolved.kind == "zoo":
        return load_zoo_uri(resolved.location), resolved.location, True, resolved.task
    if resolved.kind == "registry":
        return (
            _load_registered(resolved.location, tracking_uri).cpu().eval(),
            resolved.location,
            True,
            resolved.task,
        )
    # The task the weights were trained for is in the training config saved with them.
    task = _task_from_config(load_checkpoint(resolved.location).get("config"))
    return load_model(resolved.location).cpu().eval(), resolved.location, True, task


def _resolve_registry(source: str, tracking_uri: str | None) -> ResolvedSource:
    """``models:/NAME@ALIAS`` | ``models:/NAME/VERSION`` | ``models:/NAME/latest`` ->
    the concrete ``models:/NAME/VERSION`` and its run's task."""
    from mlflow.exceptions import MlflowException

    rest = source[len(REGISTRY_PREFIX) :]
    client, uri = _registry_client(tracking_uri, source)
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        elif "/" in rest:
            name, which = rest.rsplit("/", 1)
            if which == "latest":
                versions = client.search_model_versions(f"name = '{name}'")
                if not versions:
                    raise ModelUnavailableError(
                        f"registered model '{name}' has no versions in {uri}"
                    )
                version = max(versions, key=lambda v: int(v.version))
            else:
                version = client.get_model_version(name, which)
        else:
            raise ModelUnavailableError(
                f"model URI {source!r} must be models:/NAME@ALIAS, models:/NAME/VERSION or "
                "models:/NAME/latest"
            )
        task = None
        if version.run_id:
            try:
                task = _task_from_params(client.get_run(version.run_id).data.params)
            except MlflowException:
                task = None
    except MlflowException as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelUnavailableError(
            f"{source} not found in the MLflow registry at {uri} ({first_line})"
        ) from error
    return ResolvedSource(
        source, "registry", f"models:/{version.name}/{version.version}", task, version.run_id
    )


def _registry_client(tracking_uri: str | None, what: str) -> tuple[Any, str]:
    """(``MlflowClient`` on the store and its registry, the resolved URI); refuses a local store
    that does not exist (asking would create it), naming ``what`` was looked up."""
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    if missing_sqlite_store(uri) is not None:
        raise ModelUnavailableError(f"{what}: there is no MLflow store at {uri}")
    return MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def _load_registered(location: str, tracking_uri: str | None) -> nn.Module:
    import mlflow
    import mlflow.pytorch

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    module = mlflow.pytorch.load_model(location, map_location="cpu")
    if not isinstance(module, nn.Module):
        raise ModelUnavailableError(f"{location} did not load as a torch nn.Module")
    return module


def _task_from_config(config: Any) -> str | None:
    if isinstance(config, Mapping):
        data = config.get("data")
        if isinstance(data, Mapping) and data.get("task") in ("sr", "deblur"):
            return str(data["task"])
    return None


def _task_from_params(params: Mapping[str, str]) -> str | None:
    task = params.get("data.task")
    return task if task in ("sr", "deblur") else None


def _fingerprint(module: nn.Module) -> str:
    """First 12 hex digits of a BLAKE2 hash over the parameters and buffers."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:12]
