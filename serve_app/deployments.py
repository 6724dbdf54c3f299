"""The model-serving Ray Serve deployments: one Enhancer per model and the Scorer.

- :class:`Enhancer` runs ``nie_core.inference.enhance`` (seamless tiling, optional x8
  self-ensemble, channels_last + bf16 where the hardware has it) for one model. Its weights come
  from the deployment's ``user_config`` (``{"source": ...}``), so ``reconfigure`` swaps them in
  place: ``serve deploy`` of a config whose only change is that deployment's ``user_config``
  keeps every replica (and the rest of the application) running.
- :class:`Scorer` rates images with NIMA (Talebi & Milanfar 2018) through
  ``nie_core.inference.score_images``, which prepares each image as the scorer itself declares
  (the same path as ``nie score``); ``@serve.batch`` groups concurrent requests, and those of
  the same prepared size share one forward pass.

Arguments and results are NumPy uint8 (H, W, 3) RGB arrays and plain dicts (``Enhancer.enhance``
also returns the milliseconds its computation took in the replica). Request-level
mistakes (a scale the model lacks) raise :class:`InvalidRequestError`, which the ingress turns
into a 422; the replica is unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ray import serve

from nie_core.data.images import to_tensor, to_uint8
from nie_core.inference import enhance, prepare_model, score_images
from nie_core.models.nima import mean_score, std_score
from nie_tracking.loading import LoadedModel, load_enhancer, load_scorer
from serve_app.config import ModelSpec, ServiceConfig
from serve_app.errors import InvalidRequestError

__all__ = [
    "Enhancer",
    "Scorer",
    "enhancer_settings",
    "enhancer_user_config",
    "scorer_settings",
    "scorer_user_config",
]

logger = logging.getLogger("ray.serve")

_FAST = {"auto": "auto", "on": True, "off": False}


def enhancer_settings(spec: ModelSpec, config: ServiceConfig) -> dict[str, Any]:
    """The fixed settings of ``spec``'s Enhancer (its constructor argument)."""
    return {
        "name": spec.name,
        "label": spec.label,
        "task": spec.task,
        "arch": spec.arch,
        "arch_kwargs": dict(spec.arch_kwargs),
        "allow_untrained": config.allow_untrained,
        "tracking_uri": config.mlflow_tracking_uri,
        "tile_size": config.tile_size,
        "tile_overlap": config.tile_overlap,
        "fast": config.fast,
        "torch_threads": config.torch_threads,
    }


def enhancer_user_config(spec: ModelSpec) -> dict[str, Any]:
    """The swappable part of an Enhancer: its ``user_config``, ``{"source": ...}``, optionally
    also ``label`` and ``task`` (a Serve config file may override it per deployment)."""
    return {"source": spec.source}


def scorer_settings(config: ServiceConfig) -> dict[str, Any]:
    """The fixed settings of the Scorer (its constructor argument)."""
    return {
        "backbone": config.scorer.backbone,
        "allow_untrained": config.allow_untrained,
        "tracking_uri": config.mlflow_tracking_uri,
    }


def scorer_user_config(config: ServiceConfig) -> dict[str, Any]:
    """The Scorer's ``user_config``: its source and the batching parameters."""
    return {
        "source": config.scorer.source,
        "max_batch_size": config.scorer.max_batch_size,
        "batch_wait_timeout_s": config.scorer.batch_wait_timeout_s,
    }


@serve.deployment(name="Enhancer")
class Enhancer:
    """One enhancement model (EDSR/MDSR, Lim et al. 2017) behind a Serve deployment.

    ``settings`` (:func:`enhancer_settings`) are fixed; the ``user_config``
    (:func:`enhancer_user_config`) names the weights and can change while the replica runs.
    Inference runs in a worker thread, one request at a time per replica (requests beyond that
    wait; more replicas come from autoscaling), so the event loop stays free for health checks.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._settings = dict(settings)
        self._current: dict[str, Any] = {}
        self._model: LoadedModel | None = None
        self._lock = asyncio.Lock()
        self._loaded_at = 0.0
        if settings.get("torch_threads"):
            torch.set_num_threads(int(settings["torch_threads"]))

    def reconfigure(self, user_config: Mapping[str, Any]) -> None:
        """Load the weights named by ``user_config["source"]`` (skipped when source and task
        are unchanged). A source that cannot be found raises ``ModelUnavailableError``: Serve
        then reports the deployment as failed instead of serving something else."""
        wanted = {
            "source": user_config.get("source", ""),
            "task": user_config.get("task", self._settings.get("task")),
            "label": user_config.get("label", self._settings.get("label") or ""),
        }
        changed = any(wanted[k] != self._current.get(k) for k in ("source", "task"))
        if self._model is None or changed:
            loaded = load_enhancer(
                wanted["source"],
                allow_untrained=bool(self._settings.get("allow_untrained")),
                arch=self._settings.get("arch") or "edsr_baseline",
                arch_kwargs=self._settings.get("arch_kwargs") or {},
                task=wanted["task"],
                tracking_uri=self._settings.get("tracking_uri"),
            )
            prepare_model(loaded.module, "cpu", _FAST[self._settings.get("fast", "auto")])
            self._model = loaded
            self._loaded_at = time.time()
            logger.info("model %r loaded from %s", self._settings.get("name"), loaded.origin)
        self._current = wanted

    def info(self) -> dict[str, Any]:
        """What this replica serves: name, label, kind, scales, task, origin, fingerprint, ..."""
        model = self._require_model()
        return {
            "name": self._settings.get("name"),
            "label": self._current.get("label", ""),
            **model.describe(),
            "receptive_radius": int(getattr(model.module, "receptive_radius", 0)),
            "tile_size": self._settings.get("tile_size"),
            "torch_threads": torch.get_num_threads(),
            "loaded_at": self._loaded_at,
            "replica_pid": os.getpid(),
        }

    async def enhance(
        self,
        image: np.ndarray,
        scale: int | None = None,
        self_ensemble: bool = False,
        tile_size: int | None = None,
    ) -> tuple[np.ndarray, float]:
        """uint8 (H, W, 3) RGB -> (uint8 (H*s, W*s, 3) RGB, milliseconds the computation took in
        this replica, waiting for the lock excluded). ``tile_size`` None: the configured size.
        Raises :class:`InvalidRequestError` for a scale the model does not serve."""
        model = self._require_model()
        if scale is not None and scale not in model.scales:
            raise InvalidRequestError(
                f"model {self._settings.get('name')!r} serves scales {list(model.scales)}, "
                f"not {scale}"
            )
        if scale is None and model.kind == "mdsr":
            scale = model.scales[0]
        tile = tile_size if tile_size is not None else self._settings.get("tile_size")
        async with self._lock:
            return await asyncio.to_thread(
                self._enhance_array, model, image, scale, self_ensemble, tile
            )

    def _enhance_array(
        self,
        model: LoadedModel,
        image: np.ndarray,
        scale: int | None,
        self_ensemble: bool,
        tile_size: int | None,
    ) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        batch = to_tensor(image).unsqueeze(0)
        output = enhance(
            model.module,
            batch,
            scale=scale,
            tile_size=tile_size,
            tile_overlap=self._settings.get("tile_overlap"),
            self_ensemble=self_ensemble,
            fast=_FAST[self._settings.get("fast", "auto")],
        )
        return to_uint8(output[0]), (time.perf_counter() - start) * 1000.0

    def check_health(self) -> None:
        """Serve's periodic health check: unhealthy without a loaded model."""
        self._require_model()

    def _require_model(self) -> LoadedModel:
        if self._model is None:
            raise RuntimeError("no model loaded (reconfigure was never called)")
        return self._model


@serve.deployment(name="Scorer")
class Scorer:
    """NIMA aesthetic scorer with dynamic batching: concurrent ``score`` calls are grouped (up to
    ``max_batch_size``, waiting at most ``batch_wait_timeout_s``) into one forward pass."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._settings = dict(settings)
        self._current: dict[str, Any] = {}
        self._model: LoadedModel | None = None
        self._largest_batch = 0
        self._batches = 0

    def reconfigure(self, user_config: Mapping[str, Any]) -> None:
        """Apply :func:`scorer_user_config`: (re)load the scorer when its source changed, and
        set the batching parameters."""
        if self._model is None or user_config["source"] != self._current.get("source"):
            self._model = load_scorer(
                user_config["source"],
                allow_untrained=bool(self._settings["allow_untrained"]),
                backbone=self._settings["backbone"],
                tracking_uri=self._settings["tracking_uri"],
            )
            logger.info("scorer loaded from %s", self._model.origin)
        self._score_batch.set_max_batch_size(int(user_config["max_batch_size"]))
        self._score_batch.set_batch_wait_timeout_s(float(user_config["batch_wait_timeout_s"]))
        self._current = dict(user_config)

    def info(self) -> dict[str, Any]:
        """The scorer's description plus batching statistics of this replica."""
        if self._model is None:
            raise RuntimeError("no scorer loaded")
        return {
            **self._model.describe(),
            "max_batch_size": self._current["max_batch_size"],
            "largest_batch": self._largest_batch,
            "batches": self._batches,
            "replica_pid": os.getpid(),
        }

    async def score(self, image: np.ndarray) -> dict[str, Any]:
        """uint8 (H, W, 3) RGB -> {"mean", "std", "distribution" (10 probabilities of 1..10)}."""
        return await self._score_batch(image)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _score_batch(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        self._batches += 1
        self._largest_batch = max(self._largest_batch, len(images))
        return await asyncio.to_thread(self._score_arrays, images)

    def _score_arrays(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        if self._model is None:
            raise RuntimeError("no scorer loaded")
        # Prepared as the scorer itself declares (nie_core's one path, as `nie score`); those
        # of the same prepared size share a forward pass.
        probs = score_images(self._model.module, [to_tensor(image) for image in images])
        means, stds = mean_score(probs), std_score(probs)
        return [
            {"mean": float(m), "std": float(s), "distribution": [float(p) for p in row]}
            for m, s, row in zip(means, stds, probs, strict=True)
        ]

    def check_health(self) -> None:
        """Serve's periodic health check: unhealthy without a loaded scorer."""
        if self._model is None:
            raise RuntimeError("no scorer loaded")
