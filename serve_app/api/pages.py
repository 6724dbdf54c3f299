"""What a browser gets besides the JSON API, all served from local files so that nothing is
fetched from outside the service: the web page at ``/`` with its static files, and the API
docs at ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc). None of it is in the OpenAPI schema."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Swagger UI and ReDoc assets shipped by the fastapi-offline package, so /docs and /redoc work
# without internet access (FastAPI's defaults load them from a CDN).
DOCS_ASSETS_DIR = Path(str(importlib.resources.files("fastapi_offline") / "static"))
# ReDoc's bundle shows a logo from cdn.redoc.ly; /redoc serves a copy pointing it at an empty data
# URL (the image fails, ReDoc hides it), so the docs pages make no request outside the service.
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def add_web_page(app: FastAPI) -> None:
    """``/`` (the upload and comparison page), ``/static/*`` and ``/favicon.ico``."""

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


def add_api_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` for ``app``'s OpenAPI schema, with their assets at
    ``/docs-assets/*`` (create the app with ``docs_url=None, redoc_url=None``)."""
    redoc_js = (DOCS_ASSETS_DIR / "redoc.standalone.js").read_bytes()
    redoc_js = redoc_js.replace(REDOC_CDN_LOGO.encode(), b"data:,")

    # Registered before the /docs-assets mount, which would otherwise answer this path.
    @app.get("/docs-assets/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(
            redoc_js, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")

    def add_docs_page(
        path: str, name: str, html: Callable[..., HTMLResponse], title: str, **assets: str
    ) -> None:
        """Serve at ``path`` (route ``name``) the page ``html`` makes (FastAPI's Swagger UI or
        ReDoc page, its other options bound) for the app's OpenAPI schema, titled ``title``;
        ``assets`` are its files in /docs-assets by keyword. The URLs are under the app's route
        prefix."""

        @app.get(path, include_in_schema=False, name=name)
        async def docs_page(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            return html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} - {title}",
                **{key: f"{root}/docs-assets/{file}" for key, file in assets.items()},
            )

    add_docs_page(
        "/docs",
        "swagger_ui",
        # validatorUrl None: no badge from validator.swagger.io
        partial(get_swagger_ui_html, swagger_ui_parameters={"validatorUrl": None}),
        "API",
        swagger_js_url="swagger-ui-bundle.js",
        swagger_css_url="swagger-ui.css",
        swagger_favicon_url="favicon.png",
    )
    add_docs_page(
        "/redoc",
        "redoc",
        partial(get_redoc_html, with_google_fonts=False),
        "API reference",
        redoc_js_url="redoc.standalone.js",
        redoc_favicon_url="favicon.png",
    )
