"""The HTTP front door: a FastAPI app served by the :class:`ApiIngress` Serve deployment.

Endpoints (documented in docs/http_api.md and at /docs):

- ``POST /v1/enhance``: one image through one model; the PNG, or JSON with the PNG in base64 and
  the NIMA scores of input and output.
- ``POST /v1/compare``: one image through several models (baseline vs hybrid), all scored; the
  result is kept for the web page's results view.
- ``POST /v1/score``: NIMA mean, std and 10-bin distribution of an image.
- ``GET /v1/models``, ``GET /v1/results/{id}``, ``GET /v1/results/{id}/{name}.png``,
  ``GET /healthz``, and the web page at ``/``.

Error contract: every error is JSON ``{"detail": ...}``. Bytes that are not a readable image:
415. Over the pixel budget or the upload size: 413 (pixel counts are read from the header, so
decompression bombs are refused before decoding). Unknown model or result: 404. A parameter the
model cannot honour: 422, as are FastAPI's own validation errors. Slower than the request
timeout: 504. A model replica lost while serving the request (its process killed, its node
gone): 503 with ``Retry-After`` (the other replicas, or the one Serve starts in its place, take
the retry). Anything else is a bug: JSON 500, counted in ``/healthz``.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.resources
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
from fastapi import FastAPI, File, Form, Header, Request, UploadFile
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from nie_core.data.images import ImageDecodeError, ImageTooLargeError, decode_image, encode_png
from serve_app.config import ServiceConfig
from serve_app.errors import (
    REPLICA_LOST_DETAIL,
    REPLICA_LOST_RETRY_AFTER_S,
    InvalidRequestError,
    replica_lost_errors,
)

__all__ = ["ApiError", "ApiIngress", "ApiService", "choose_models", "create_api"]

logger = logging.getLogger("ray.serve")
STATIC_DIR = Path(__file__).resolve().parent / "static"
# Swagger UI and ReDoc assets shipped by the fastapi-offline package, so /docs and /redoc work
# without internet access (FastAPI's defaults load them from a CDN).
DOCS_ASSETS_DIR = Path(str(importlib.resources.files("fastapi_offline") / "static"))
# ReDoc's bundle shows a logo from cdn.redoc.ly; /redoc serves a copy pointing it at an empty data
# URL (the image fails, ReDoc hides it), so the docs pages make no request outside the service.
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
MULTIPART_SLACK_BYTES = 64 * 1024  # form fields and boundaries on top of the image itself
HEALTH_TIMEOUT_S = 5.0
_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")


# --------------------------------------------------------------------------- response models


class Score(BaseModel):
    """NIMA rating of one image (Talebi & Milanfar 2018)."""

    mean: float = Field(description="mean score, sum_i i * p_i, in [1, 10]")
    std: float = Field(description="standard deviation of the score distribution")
    distribution: list[float] = Field(description="probabilities of the scores 1..10 (sum 1)")


class ScoreResponse(Score):
    width: int
    height: int


class ImageResult(BaseModel):
    """One image of a result: the input or a model's output."""

    name: str = Field(description="'input' or the model name")
    label: str = Field(description="e.g. 'baseline' or 'hybrid'; 'input' for the upload")
    url: str | None = Field(description="full-resolution PNG (kept in a bounded LRU)")
    width: int
    height: int
    score: Score | None = None
    elapsed_ms: float | None = Field(
        None, description="milliseconds the model took on this output in its replica"
    )


class EnhanceResponse(BaseModel):
    result_id: str
    model: str
    label: str
    task: str
    scale: int
    ensemble: bool
    input: ImageResult
    output: ImageResult
    image_png_base64: str = Field(description="the output as a base64-encoded PNG")


class CompareResponse(BaseModel):
    result_id: str
    task: str
    scale: int
    ensemble: bool
    input: ImageResult
    outputs: list[ImageResult]
    winner: str | None = Field(description="the output with the highest NIMA mean")


class ModelInfo(BaseModel):
    name: str
    label: str
    kind: str = Field(description="'edsr' (one scale) or 'mdsr' (several)")
    task: str = Field(description="'sr' (super-resolution) or 'deblur'")
    scales: list[int]
    trained: bool = Field(description="false only for random weights (allow_untrained)")
    source: str
    origin: str = Field(description="what was loaded: checkpoint path or models:/NAME/VERSION")
    fingerprint: str = Field(description="hash of the weights; changes when the model is swapped")


class ScorerInfo(BaseModel):
    kind: str
    trained: bool
    source: str
    origin: str
    fingerprint: str
    max_batch_size: int


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    scorer: ScorerInfo
    max_pixels: int
    max_upload_bytes: int


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    deployments: dict[str, str]
    internal_errors: int = Field(description="requests answered with 500 by this replica")


class ErrorResponse(BaseModel):
    detail: str


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An expected failure with its HTTP status and a message for the client."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown model or result"},
    413: {"model": ErrorResponse, "description": "image over the pixel budget or upload size"},
    415: {"model": ErrorResponse, "description": "not a readable image (or truncated)"},
    422: {"description": "invalid parameter (JSON with 'detail')"},
    503: {
        "model": ErrorResponse,
        "description": "a model replica was lost mid-request; retry after Retry-After seconds",
    },
    504: {"model": ErrorResponse, "description": "slower than the request timeout"},
}


# --------------------------------------------------------------------------- the deployment


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

    # ----------------------------------------------------------------- helpers for the routes

    async def model_infos(self) -> dict[str, dict[str, Any]]:
        """Live description of every model (reflects reconfigured sources), in config order."""
        names = list(self.enhancers)
        infos = await asyncio.gather(*(self.enhancers[n].info.remote() for n in names))
        return dict(zip(names, infos, strict=True))

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

    async def run_model(
        self, name: str, image: np.ndarray, scale: int, ensemble: bool, tile_size: int | None
    ) -> ModelRun:
        """One Enhancer call, timed; InvalidRequestError becomes a 422."""
        try:
            (output, compute_ms), call_ms = await _timed(
                self.enhancers[name].enhance.remote(image, scale, ensemble, tile_size)
            )
        except InvalidRequestError as error:
            raise ApiError(422, str(error)) from error
        return ModelRun(output, compute_ms, call_ms)


class ModelRun(NamedTuple):
    """An Enhancer's answer: the uint8 output, the milliseconds it computed in its replica, and
    the milliseconds the call took as seen here (plus queueing and Ray's transfers)."""

    output: np.ndarray
    compute_ms: float
    call_ms: float


async def _timed(awaitable: Awaitable[Any]) -> tuple[Any, float]:
    """(result of ``awaitable``, milliseconds it took)."""
    start = time.perf_counter()
    result = await awaitable
    return result, (time.perf_counter() - start) * 1000.0


def server_timing(**durations_ms: float) -> str:
    """A ``Server-Timing`` header value (W3C Server Timing), e.g. ``decode;dur=1.9, ...``.
    Browsers show it in their network panel; the serving benchmark reads it."""
    return ", ".join(f"{name};dur={ms:.1f}" for name, ms in durations_ms.items())


@serve.deployment(name="ApiIngress")
@serve.ingress()
class ApiIngress(ApiService):
    """The ingress deployment: validates uploads, fans out to the Enhancer and Scorer
    deployments and answers in JSON or PNG. Its FastAPI app is built per replica by
    :func:`create_api`."""

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self)


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


def _image_result(
    name: str,
    label: str,
    url: str | None,
    image: np.ndarray,
    score: dict[str, Any] | None,
    elapsed_ms: float | None = None,
) -> dict[str, Any]:
    height, width = image.shape[:2]
    return {
        "name": name,
        "label": label,
        "url": url,
        "width": width,
        "height": height,
        "score": score,
        "elapsed_ms": elapsed_ms,
    }


def create_api(service: ApiService) -> FastAPI:
    """The FastAPI app of one ingress replica, closing over its config and handles."""
    config = service.config
    app = FastAPI(
        title="NIE: neural image enhancement and assessment",
        version="0.1.0",
        docs_url=None,  # /docs and /redoc are defined below, with local assets
        redoc_url=None,
        description="Super-resolution / deblurring with EDSR and MDSR, rated with NIMA. "
        "Upload pages at `/`; full reference in docs/http_api.md.",
    )

    # ----------------------------------------------------------------- middleware and errors

    @app.middleware("http")
    async def refuse_large_bodies(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """413 from the Content-Length header alone, before the body is read."""
        length = request.headers.get("content-length")
        if length and length.isdigit():
            if int(length) > config.max_upload_bytes + MULTIPART_SLACK_BYTES:
                return JSONResponse(
                    {"detail": f"upload exceeds the limit of {config.max_upload_bytes} bytes"},
                    status_code=413,
                )
        return await call_next(request)

    @app.middleware("http")
    async def answer_bugs_with_json(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Catch-all: an unexpected exception is a bug; answer JSON 500 and count it."""
        try:
            return await call_next(request)
        except Exception:
            service.internal_errors += 1
            logger.exception("internal error on %s %s", request.method, request.url.path)
            return JSONResponse({"detail": "internal server error"}, status_code=500)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    @app.exception_handler(TimeoutError)
    async def timeout_error(_: Request, error: TimeoutError) -> JSONResponse:
        detail = f"request took longer than {config.request_timeout_s} s"
        return JSONResponse({"detail": detail}, status_code=504)

    async def replica_lost(request: Request, error: Exception) -> JSONResponse:
        """A replica died under this request (serve_app.errors.replica_lost_errors): 503."""
        logger.warning("%s %s: replica lost (%s); answering 503", request.method,
                       request.url.path, type(error).__name__)  # fmt: skip
        return JSONResponse(
            {"detail": REPLICA_LOST_DETAIL},
            status_code=503,
            headers={"Retry-After": str(REPLICA_LOST_RETRY_AFTER_S)},
        )

    for error_type in replica_lost_errors():
        app.add_exception_handler(error_type, replica_lost)

    def result_url(request: Request, result_id: str, name: str) -> str:
        return f"{request.scope.get('root_path', '')}/v1/results/{result_id}/{name}.png"

    # ----------------------------------------------------------------- web page

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        """Browsers ask for it on pages without an icon link (a PNG opened in its own tab)."""
        return FileResponse(
            STATIC_DIR / "favicon.ico",
            media_type="image/x-icon",
            headers={"Cache-Control": "max-age=86400"},
        )

    redoc_js = (DOCS_ASSETS_DIR / "redoc.standalone.js").read_bytes()
    redoc_js = redoc_js.replace(REDOC_CDN_LOGO.encode(), b"data:,")

    # Registered before the /docs-assets mount, which would otherwise answer this path.
    @app.get("/docs-assets/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(
            redoc_js, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")

    def docs_urls(request: Request) -> tuple[str, str]:
        """(OpenAPI schema URL, assets folder URL) under the app's route prefix."""
        root = request.scope.get("root_path", "").rstrip("/")
        return f"{root}{app.openapi_url}", f"{root}/docs-assets"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        schema, assets = docs_urls(request)
        return get_swagger_ui_html(
            openapi_url=schema,
            title=f"{app.title} - API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        schema, assets = docs_urls(request)
        return get_redoc_html(
            openapi_url=schema,
            title=f"{app.title} - API reference",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )

    # ----------------------------------------------------------------- API

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz() -> JSONResponse:
        """Liveness of every deployment (each asked for its info within 5 s)."""
        handles = {
            "Scorer": service.scorer,
            **{config.model(n).deployment_name: h for n, h in service.enhancers.items()},
        }

        async def probe(handle: DeploymentHandle) -> str:
            try:
                await asyncio.wait_for(handle.info.remote(), HEALTH_TIMEOUT_S)
                return "ok"
            except Exception as error:  # any failure means "not healthy", never a 500
                return f"unavailable: {type(error).__name__}"

        states = await asyncio.gather(*(probe(h) for h in handles.values()))
        deployments = dict(zip(handles, states, strict=True))
        healthy = all(state == "ok" for state in states)
        body = HealthResponse(
            status="ok" if healthy else "degraded",
            deployments=deployments,
            internal_errors=service.internal_errors,
        )
        return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)

    @app.get("/v1/models", response_model=ModelsResponse)
    async def models() -> ModelsResponse:
        """The served models (live: a reconfigured source shows here) and the scorer."""
        infos, scorer = await asyncio.gather(service.model_infos(), service.scorer.info.remote())
        return ModelsResponse(
            models=[ModelInfo(**info) for info in infos.values()],
            scorer=ScorerInfo(**scorer),
            max_pixels=config.max_pixels,
            max_upload_bytes=config.max_upload_bytes,
        )

    @app.post("/v1/score", response_model=ScoreResponse, responses=_ERRORS)
    async def score_image(
        image: Annotated[UploadFile, File(description="an image file (PNG, JPEG, ...)")],
    ) -> ScoreResponse:
        """NIMA mean, std and distribution of the uploaded image."""
        async with asyncio.timeout(config.request_timeout_s):
            array = await service.read_image(image)
            result = await service.score(array)
        return ScoreResponse(**result, width=array.shape[1], height=array.shape[0])

    @app.post(
        "/v1/enhance",
        responses={
            **_ERRORS,
            200: {
                "content": {"image/png": {}, "application/json": {}},
                "model": EnhanceResponse,
                "description": "the output PNG, or JSON with format=json",
            },
        },
    )
    async def enhance_image(
        request: Request,
        image: Annotated[UploadFile, File(description="an image file (PNG, JPEG, ...)")],
        model: Annotated[str | None, Form(description="model name (GET /v1/models)")] = None,
        scale: Annotated[int | None, Form(ge=1, le=4, description="upscaling factor")] = None,
        task: Annotated[Literal["sr", "deblur"] | None, Form()] = None,
        ensemble: Annotated[bool, Form(description="x8 geometric self-ensemble")] = False,
        tile_size: Annotated[
            int | None, Form(ge=16, le=4096, description="tile side in input pixels")
        ] = None,
        format: Annotated[Literal["png", "json"] | None, Form()] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Enhance one image with one model: the PNG, or JSON (``format=json`` or ``Accept:
        application/json``) with the base64 PNG and the NIMA scores of input and output."""
        wants_json = format == "json" or (format is None and "application/json" in (accept or ""))
        async with asyncio.timeout(config.request_timeout_s):
            # Decoding and the model lookup (one round trip to each Enhancer) run concurrently.
            (array, infos), decode_ms = await _timed(
                asyncio.gather(service.read_image(image), service.model_infos())
            )
            names, task, scale = choose_models(infos, [model] if model else None, task, scale)
            name = names[0]
            run = await service.run_model(name, array, scale, ensemble, tile_size)
            output = run.output
            timings = {
                "decode": decode_ms,  # read + decode, with the model lookup alongside
                "model": run.compute_ms,  # in the Enhancer's replica
                "transfer": run.call_ms - run.compute_ms,  # queueing and Ray's transfers
            }
            headers = {"X-NIE-Model": name, "X-NIE-Scale": str(scale)}
            if not wants_json:
                png, timings["encode"] = await _timed(asyncio.to_thread(encode_png, output))
                headers["Server-Timing"] = server_timing(**timings)
                return Response(png, media_type="image/png", headers=headers)
            (input_score, output_score), timings["score"] = await _timed(
                asyncio.gather(service.score(array), service.score(output))
            )
            (input_png, output_png), timings["encode"] = await _timed(
                asyncio.gather(
                    asyncio.to_thread(encode_png, array), asyncio.to_thread(encode_png, output)
                )
            )
            headers["Server-Timing"] = server_timing(**timings)
        result_id = uuid.uuid4().hex
        label = infos[name]["label"]
        body = {
            "result_id": result_id,
            "model": name,
            "label": label,
            "task": task,
            "scale": scale,
            "ensemble": ensemble,
            "input": _image_result(
                "input", "input", result_url(request, result_id, "input"), array, input_score
            ),
            "output": _image_result(
                name,
                label,
                result_url(request, result_id, name),
                output,
                output_score,
                run.compute_ms,
            ),
        }
        await service.results.put.remote(
            result_id, _compare_summary(body), {"input": input_png, name: output_png}
        )
        body["image_png_base64"] = base64.b64encode(output_png).decode("ascii")
        return JSONResponse(EnhanceResponse(**body).model_dump(), headers=headers)

    @app.post("/v1/compare", response_model=CompareResponse, responses=_ERRORS)
    async def compare(
        request: Request,
        image: Annotated[UploadFile, File(description="an image file (PNG, JPEG, ...)")],
        models: Annotated[
            str | None, Form(description="comma-separated model names; default: all of the task")
        ] = None,
        scale: Annotated[int | None, Form(ge=1, le=4)] = None,
        task: Annotated[Literal["sr", "deblur"] | None, Form()] = None,
        ensemble: Annotated[bool, Form()] = False,
    ) -> CompareResponse:
        """Enhance one image with several models and score input and outputs (the web page's
        request). The result stays available at ``/v1/results/{result_id}`` for a while."""
        requested = [n.strip() for n in models.split(",") if n.strip()] if models else None
        async with asyncio.timeout(config.request_timeout_s):
            # Decoding and the model lookup (one round trip to each Enhancer) run concurrently.
            array, infos = await asyncio.gather(service.read_image(image), service.model_infos())
            names, task, scale = choose_models(infos, requested, task, scale)
            runs = await asyncio.gather(
                *(service.run_model(n, array, scale, ensemble, None) for n in names)
            )
            outputs = [run.output for run in runs]
            scores = await asyncio.gather(*(service.score(a) for a in [array, *outputs]))
            pngs = await asyncio.gather(
                *(asyncio.to_thread(encode_png, a) for a in [array, *outputs])
            )
        result_id = uuid.uuid4().hex
        output_results = [
            _image_result(
                name,
                infos[name]["label"],
                result_url(request, result_id, name),
                run.output,
                output_score,
                run.compute_ms,
            )
            for name, run, output_score in zip(names, runs, scores[1:], strict=True)
        ]
        winner = max(output_results, key=lambda r: r["score"]["mean"])["name"]
        body = {
            "result_id": result_id,
            "task": task,
            "scale": scale,
            "ensemble": ensemble,
            "input": _image_result(
                "input", "input", result_url(request, result_id, "input"), array, scores[0]
            ),
            "outputs": output_results,
            "winner": winner,
        }
        await service.results.put.remote(
            result_id, body, dict(zip(["input", *names], pngs, strict=True))
        )
        return CompareResponse(**body)

    @app.get("/v1/results/{result_id}", response_model=CompareResponse, responses=_ERRORS)
    async def result(result_id: str) -> CompareResponse:
        """A stored result (from /v1/compare or a JSON /v1/enhance); 404 once evicted."""
        summary = await service.results.summary.remote(result_id)
        if summary is None:
            raise ApiError(404, f"no result {result_id!r} (unknown or evicted)")
        return CompareResponse(**summary)

    @app.get(
        "/v1/results/{result_id}/{name}.png",
        responses={**_ERRORS, 200: {"content": {"image/png": {}}}},
        response_class=Response,
    )
    async def result_image(result_id: str, name: str) -> Response:
        """The full-resolution PNG ``name`` ('input' or a model name) of a stored result."""
        png = await service.results.image.remote(result_id, name)
        if png is None:
            raise ApiError(404, f"no image {name!r} in result {result_id!r}")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    return app


def _compare_summary(enhance_body: dict[str, Any]) -> dict[str, Any]:
    """A one-output compare summary for a JSON /v1/enhance result (for /v1/results/{id})."""
    return {
        "result_id": enhance_body["result_id"],
        "task": enhance_body["task"],
        "scale": enhance_body["scale"],
        "ensemble": enhance_body["ensemble"],
        "input": enhance_body["input"],
        "outputs": [enhance_body["output"]],
        "winner": enhance_body["model"],
    }
