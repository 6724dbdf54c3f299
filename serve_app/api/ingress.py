"""The ingress as a Ray Serve deployment: :class:`ApiIngress` serves :func:`create_api`'s app."""

from __future__ import annotations

from fastapi import FastAPI
from ray import serve

from serve_app.api.routes import create_api
from serve_app.api.service import ApiService


@serve.deployment(name="ApiIngress")
@serve.ingress()
class ApiIngress(ApiService):
    """The ingress deployment: validates uploads, fans out to the Enhancer and Scorer
    deployments and answers in JSON or PNG. Its FastAPI app is built per replica by
    :func:`create_api`."""

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self)
