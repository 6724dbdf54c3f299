"""What the routes do, without HTTP routing: read and decode an upload, choose the models, call
the Enhancer and Scorer deployments, and put the answer of a request together."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from fastapi import UploadFile
from ray.serve.handle import DeploymentHandle

from nie_core.data.images import ImageDecodeError, ImageTooLargeError, decode_image, encode_png
from nie_core.evaluation import output_judges
from nie_core.judging import judge_outputs, winner
from serve_app.api.failures import ApiError
from serve_app.config import ServiceConfig
from serve_app.errors import InvalidRequestError

HEALTH_TIMEOUT_S = 5.0
_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")


class ModelRun(NamedTuple):
    """An Enhancer's answer: the uint8 output, the milliseconds it computed in its replica, and
    the milliseconds the call took as seen here (plus queueing and Ray's transfers)."""

    output: np.ndarray
    compute_ms: float
    call_ms: float


@dataclass(frozen=True)
class Enhanced:
    """An upload run through the models chosen for it (:meth:`ApiService.enhance`)."""

    image: np.ndarray  # the decoded upload, uint8 (H, W, 3)
    task: str
    scale: int
    ensemble: bool
    names: list[str]
    labels: list[str]
    runs: list[ModelRun]
    decode_ms: float  # read + decode, with the model lookup alongside

    @property
    def images(self) -> list[np.ndarray]:
        """The input, then each model's output."""
        return [self.image, *(run.output for run in self.runs)]


class ApiService:
    """What the routes need: the config, the deployment handles and the request helpers.

    ``scorer``, ``enhancers`` and ``results`` are Serve deployment handles (anything whose
    ``handle.method.remote(...)`` is awaitable works, which keeps the routes testable alone).
    """

    def __init__(
        self,
        config: ServiceConfig,
        scorer: DeploymentHandle,
        enhancers: dict[str, DeploymentHandle],
        results: DeploymentHandle,
    ) -> None:
        self.config = config
        self.scorer = scorer
        self.enhancers = enhancers
        self.results = results
        self.internal_errors = 0

    async def model_infos(self) -> dict[str, dict[str, Any]]:
        """Live description of every model (reflects reconfigured sources), in config order."""
        names = list(self.enhancers)
        infos = await asyncio.gather(*(self.enhancers[n].info.remote() for n in names))
        return dict(zip(names, infos, strict=True))

    async def deployment_states(self) -> dict[str, str]:
        """'ok' or 'unavailable: <error>' for the Scorer and every Enhancer deployment, each
        asked for its info within HEALTH_TIMEOUT_S."""
        handles = {
            "Scorer": self.scorer,
            **{self.config.model(n).deployment_name: h for n, h in self.enhancers.items()},
        }
        states = await asyncio.gather(*(_probe(h) for h in handles.values()))
        return dict(zip(handles, states, strict=True))

    async def read_image(self, upload: UploadFile) -> np.ndarray:
        """The upload decoded to uint8 (H, W, 3) RGB, or an ApiError (413 / 415)."""
        limit = self.config.max_upload_bytes
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise ApiError(413, f"upload exceeds the limit of {limit} bytes")
        try:
            return await asyncio.to_thread(decode_image, data, self.config.max_pixels)
        except ImageTooLargeError as error:
            raise ApiError(413, str(error)) from error
        except ImageDecodeError as error:
            reason = _OBJECT_REPR.sub("", str(error))  # Pillow names its BytesIO; drop that
            raise ApiError(415, f"not a readable image: {reason}") from error

    async def score(self, image: np.ndarray) -> dict[str, Any]:
        """NIMA mean, std and distribution of a uint8 (H, W, 3) image (batched by the Scorer)."""
        return await self.scorer.score.remote(image)

    async def score_all(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        """:meth:`score` of each image, concurrently."""
        return await asyncio.gather(*(self.score(image) for image in images))

    async def judge_all(self, enhanced: Enhanced) -> list[dict[str, Any]]:
        """The judges of each output that need no ground truth (NIQE, LR-consistency against
        the input, artifacts against the input's bicubic up-sampling; ``nie_core.evaluation.
        output_judges``, on a centre region of at most 512 px a side), in worker threads."""
        return await asyncio.gather(
            *(
                asyncio.to_thread(output_judges, enhanced.image, run.output, enhanced.scale)
                for run in enhanced.runs
            )
        )

    async def run_model(
        self, name: str, image: np.ndarray, scale: int, ensemble: bool, tile_size: int | None
    ) -> ModelRun:
        """One Enhancer call, timed; InvalidRequestError becomes a 422."""
        try:
            (output, compute_ms), call_ms = await timed(
                self.enhancers[name].enhance.remote(image, scale, ensemble, tile_size)
            )
        except InvalidRequestError as error:
            raise ApiError(422, str(error)) from error
        return ModelRun(output, compute_ms, call_ms)

    async def enhance(
        self,
        upload: UploadFile,
        requested: list[str] | None,
        task: str | None,
        scale: int | None,
        ensemble: bool,
        tile_size: int | None,
        first_only: bool = False,
    ) -> Enhanced:
        """Decode the upload, choose the models (:func:`choose_models`; only the first of them
        with ``first_only``) and run each on it."""
        # Decoding and the model lookup (one round trip to each Enhancer) run concurrently.
        (image, infos), decode_ms = await timed(
            asyncio.gather(self.read_image(upload), self.model_infos())
        )
        names, task, scale = choose_models(infos, requested, task, scale)
        if first_only:
            names = names[:1]
        runs = await asyncio.gather(
            *(self.run_model(n, image, scale, ensemble, tile_size) for n in names)
        )
        labels = [infos[n]["label"] for n in names]
        return Enhanced(image, task, scale, ensemble, names, labels, runs, decode_ms)

    async def keep_result(
        self,
        enhanced: Enhanced,
        scores: list[dict[str, Any]],
        judges: list[dict[str, Any]],
        pngs: list[bytes],
        root_path: str,
    ) -> dict[str, Any]:
        """Store a result (its :func:`result_summary` and PNGs, input first) in the ResultStore
        under a new id, for ``/v1/results/{id}``; returns the summary."""
        result_id = uuid.uuid4().hex
        summary = result_summary(result_id, root_path, enhanced, scores, judges)
        images = dict(zip(["input", *enhanced.names], pngs, strict=True))
        await self.results.put.remote(result_id, summary, images)
        return summary


async def _probe(handle: DeploymentHandle) -> str:
    try:
        await asyncio.wait_for(handle.info.remote(), HEALTH_TIMEOUT_S)
        return "ok"
    except Exception as error:  # any failure means "not healthy", never a 500
        return f"unavailable: {type(error).__name__}"


async def timed(awaitable: Awaitable[Any]) -> tuple[Any, float]:
    """(result of ``awaitable``, milliseconds it took)."""
    start = time.perf_counter()
    result = await awaitable
    return result, (time.perf_counter() - start) * 1000.0


async def encode_pngs(images: list[np.ndarray]) -> list[bytes]:
    """Each image as PNG, encoded concurrently in worker threads."""
    return await asyncio.gather(*(asyncio.to_thread(encode_png, image) for image in images))


def choose_models(
    infos: dict[str, dict[str, Any]],
    requested: list[str] | None,
    task: str | None,
    scale: int | None,
) -> tuple[list[str], str, int]:
    """Pick the models for a request: (names, task, scale).

    Named models must exist (404) and serve the task and scale (422). Without names: every
    model of the task (default: the first model's) that serves the scale (default: the first
    matching model's smallest scale).
    """
    if requested:
        unknown = [name for name in requested if name not in infos]
        if unknown:
            raise ApiError(404, f"unknown model(s) {unknown}; available: {list(infos)}")
        chosen = list(dict.fromkeys(requested))
        task = task or infos[chosen[0]]["task"]
        wrong_task = [n for n in chosen if infos[n]["task"] != task]
        if wrong_task:
            raise ApiError(422, f"model(s) {wrong_task} do not do task {task!r}")
        scale = scale or min(infos[chosen[0]]["scales"])
        wrong_scale = [n for n in chosen if scale not in infos[n]["scales"]]
        if wrong_scale:
            detail = ", ".join(f"{n} serves {infos[n]['scales']}" for n in wrong_scale)
            raise ApiError(422, f"scale {scale} not served: {detail}")
        return chosen, task, scale
    task = task or next(iter(infos.values()))["task"]
    of_task = [n for n, info in infos.items() if info["task"] == task]
    if not of_task:
        raise ApiError(422, f"no model does task {task!r}")
    scale = scale or min(infos[of_task[0]]["scales"])
    chosen = [n for n in of_task if scale in infos[n]["scales"]]
    if not chosen:
        raise ApiError(422, f"no {task!r} model serves scale {scale}")
    return chosen, task, scale


def result_summary(
    result_id: str,
    root_path: str,
    enhanced: Enhanced,
    scores: list[dict[str, Any]],
    judges: list[dict[str, Any]],
) -> dict[str, Any]:
    """A stored result, the body of a CompareResponse: the input and each output with the URL
    of its PNG (under the app's ``root_path``), its size and its score (``scores``: the input's
    first); each output with its judges (NIMA's mean and ``judges``, one dict per output from
    :meth:`ApiService.judge_all`) and, when there are several outputs, its verdict
    (``nie_core.judging``: "best" only when no judge rates it worse than another output); and
    the winner, the one output with that badge (None when the judges disagree)."""

    def url(name: str) -> str:
        return f"{root_path}/v1/results/{result_id}/{name}.png"

    outputs = [
        _image_result(name, label, url(name), run.output, score, run.compute_ms)
        for name, label, run, score in zip(
            enhanced.names, enhanced.labels, enhanced.runs, scores[1:], strict=True
        )
    ]
    for output, measured in zip(outputs, judges, strict=True):
        output["judges"] = {"nima": output["score"]["mean"], **measured}
    verdicts = None
    if len(outputs) >= 2:
        verdicts = judge_outputs(
            {o["name"]: {k: v for k, v in o["judges"].items() if k != "region"} for o in outputs}
        )
        for output in outputs:
            verdict = verdicts[output["name"]]
            output["verdict"] = {"best": verdict.best, "reason": verdict.reason}
    return {
        "result_id": result_id,
        "task": enhanced.task,
        "scale": enhanced.scale,
        "ensemble": enhanced.ensemble,
        "input": _image_result("input", "input", url("input"), enhanced.image, scores[0]),
        "outputs": outputs,
        "winner": winner(verdicts) if verdicts else None,
    }


def _image_result(
    name: str,
    label: str,
    url: str | None,
    image: np.ndarray,
    score: dict[str, Any] | None,
    elapsed_ms: float | None = None,
) -> dict[str, Any]:
    """An ImageResult body."""
    height, width = image.shape[:2]
    return {
        "name": name,
        "label": label,
        "url": url,
        "width": width,
        "height": height,
        "score": score,
        "elapsed_ms": elapsed_ms,
        "judges": None,
        "verdict": None,
    }
