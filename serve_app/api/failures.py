"""The error contract: how every failure reaches the client as JSON ``{"detail": ...}``.

Bytes that are not a readable image: 415. Over the pixel budget or the upload size: 413 (pixel
counts are read from the header, so decompression bombs are refused before decoding). Unknown
model or result: 404. A parameter the model cannot honour: 422, as are FastAPI's own
validation errors. Slower than the request timeout: 504. A model replica lost while serving
the request (its process killed, its node gone): 503 with ``Retry-After`` (the other replicas,
or the one Serve starts in its place, take the retry). Anything else is a bug: JSON 500,
counted in ``/healthz``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from serve_app.api.schemas import ErrorResponse
from serve_app.errors import REPLICA_LOST_DETAIL, REPLICA_LOST_RETRY_AFTER_S, replica_lost_errors

if TYPE_CHECKING:
    from serve_app.api.service import ApiService

logger = logging.getLogger("ray.serve")
MULTIPART_SLACK_BYTES = 64 * 1024  # form fields and boundaries on top of the image itself


class ApiError(Exception):
    """An expected failure with its HTTP status and a message for the client."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# The error answers of the routes that take an upload or a result id, for the OpenAPI doc.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
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


def install_error_handling(app: FastAPI, service: ApiService) -> None:
    """The middleware and exception handlers of the contract above, on ``app``."""
    config = service.config

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

    for error_type in replica_lost_errors():
        app.add_exception_handler(error_type, replica_lost)


async def replica_lost(request: Request, error: Exception) -> JSONResponse:
    """A replica died under this request (serve_app.errors.replica_lost_errors): 503."""
    logger.warning("%s %s: replica lost (%s); answering 503", request.method,
                   request.url.path, type(error).__name__)  # fmt: skip
    return JSONResponse(
        {"detail": REPLICA_LOST_DETAIL},
        status_code=503,
        headers={"Retry-After": str(REPLICA_LOST_RETRY_AFTER_S)},
    )
