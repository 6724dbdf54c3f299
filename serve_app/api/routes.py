"""The JSON API (``/healthz`` and ``/v1/*``) and :func:`create_api`, which builds the FastAPI
app of one ingress replica from it, the error handling and the browser pages."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Literal

from fastapi import FastAPI, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from nie_core.data.images import encode_png
from serve_app.api.failures import ERROR_RESPONSES, ApiError, install_error_handling
from serve_app.api.pages import add_api_docs, add_web_page
from serve_app.api.schemas import (
    CompareResponse,
    EnhanceResponse,
    HealthResponse,
    ModelInfo,
    ModelsResponse,
    ScoreResponse,
    ScorerInfo,
)
from serve_app.api.service import ApiService, encode_pngs, timed


def create_api(service: ApiService) -> FastAPI:
    """The FastAPI app of one ingress replica, closing over its config and handles."""
    app = FastAPI(
        title="NIE: neural image enhancement and assessment",
        version="0.1.0",
        docs_url=None,  # /docs and /redoc are added by add_api_docs, with local assets
        redoc_url=None,
        description="Super-resolution / deblurring with EDSR and MDSR, rated with NIMA. "
        "Upload pages at `/`; full reference in docs/http_api.md.",
    )
    install_error_handling(app, service)
    add_web_page(app)
    add_api_docs(app)
    add_status_routes(app, service)
    add_image_routes(app, service)
    add_result_routes(app, service)
    return app


def server_timing(**durations_ms: float) -> str:
    """A ``Server-Timing`` header value (W3C Server Timing), e.g. ``decode;dur=1.9, ...``.
    Browsers show it in their network panel; the serving benchmark reads it."""
    return ", ".join(f"{name};dur={ms:.1f}" for name, ms in durations_ms.items())


def root_path(request: Request) -> str:
    """The app's route prefix, under which the result URLs are answered."""
    return request.scope.get("root_path", "")


def add_status_routes(app: FastAPI, service: ApiService) -> None:
    """``GET /healthz`` and ``GET /v1/models``."""
    config = service.config

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz() -> JSONResponse:
        """Liveness of every deployment (each asked for its info within 5 s)."""
        deployments = await service.deployment_states()
        healthy = all(state == "ok" for state in deployments.values())
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


def add_image_routes(app: FastAPI, service: ApiService) -> None:
    """The routes that take an upload: ``POST /v1/score``, ``/v1/enhance`` and ``/v1/compare``."""
    config = service.config

    @app.post("/v1/score", response_model=ScoreResponse, responses=ERROR_RESPONSES)
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
            **ERROR_RESPONSES,
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
        application/json``) with the base64 PNG, the NIMA scores of input and output and the
        output's other judges (NIQE, LR-consistency, artifacts)."""
        wants_json = format == "json" or (format is None and "application/json" in (accept or ""))
        requested = [model] if model else None
        async with asyncio.timeout(config.request_timeout_s):
            done = await service.enhance(
                image, requested, task, scale, ensemble, tile_size, first_only=True
            )
            name, run = done.names[0], done.runs[0]
            timings = {
                "decode": done.decode_ms,  # read + decode, with the model lookup alongside
                "model": run.compute_ms,  # in the Enhancer's replica
                "transfer": run.call_ms - run.compute_ms,  # queueing and Ray's transfers
            }
            headers = {"X-NIE-Model": name, "X-NIE-Scale": str(done.scale)}
            if not wants_json:
                png, timings["encode"] = await timed(asyncio.to_thread(encode_png, run.output))
                headers["Server-Timing"] = server_timing(**timings)
                return Response(png, media_type="image/png", headers=headers)
            # NIMA (the Scorer) and the other judges (threads here) run side by side.
            (scores, timings["score"]), (judges, timings["judges"]) = await asyncio.gather(
                timed(service.score_all(done.images)), timed(service.judge_all(done))
            )
            pngs, timings["encode"] = await timed(encode_pngs(done.images))
            headers["Server-Timing"] = server_timing(**timings)
        summary = await service.keep_result(done, scores, judges, pngs, root_path(request))
        body = EnhanceResponse(
            result_id=summary["result_id"],
            model=name,
            label=done.labels[0],
            task=done.task,
            scale=done.scale,
            ensemble=ensemble,
            input=summary["input"],
            output=summary["outputs"][0],
            image_png_base64=base64.b64encode(pngs[1]).decode("ascii"),
        )
        return JSONResponse(body.model_dump(), headers=headers)

    @app.post("/v1/compare", response_model=CompareResponse, responses=ERROR_RESPONSES)
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
        """Enhance one image with several models, score input and outputs with NIMA and judge
        each output (NIQE, LR-consistency, artifacts; the "best" verdict when no judge
        disagrees): the web page's request. The result stays available at
        ``/v1/results/{result_id}`` for a while."""
        requested = [n.strip() for n in models.split(",") if n.strip()] if models else None
        async with asyncio.timeout(config.request_timeout_s):
            done = await service.enhance(image, requested, task, scale, ensemble, None)
            scores, judges = await asyncio.gather(
                service.score_all(done.images), service.judge_all(done)
            )
            pngs = await encode_pngs(done.images)
        summary = await service.keep_result(done, scores, judges, pngs, root_path(request))
        return CompareResponse(**summary)


def add_result_routes(app: FastAPI, service: ApiService) -> None:
    """``GET /v1/results/{id}`` and ``GET /v1/results/{id}/{name}.png``: stored results."""

    @app.get("/v1/results/{result_id}", response_model=CompareResponse, responses=ERROR_RESPONSES)
    async def result(result_id: str) -> CompareResponse:
        """A stored result (from /v1/compare or a JSON /v1/enhance); 404 once evicted."""
        summary = await service.results.summary.remote(result_id)
        if summary is None:
            raise ApiError(404, f"no result {result_id!r} (unknown or evicted)")
        return CompareResponse(**summary)

    @app.get(
        "/v1/results/{result_id}/{name}.png",
        responses={**ERROR_RESPONSES, 200: {"content": {"image/png": {}}}},
        response_class=Response,
    )
    async def result_image(result_id: str, name: str) -> Response:
        """The full-resolution PNG ``name`` ('input' or a model name) of a stored result."""
        png = await service.results.image.remote(result_id, name)
        if png is None:
            raise ApiError(404, f"no image {name!r} in result {result_id!r}")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})
