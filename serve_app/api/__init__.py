"""The HTTP front door: a FastAPI app served by the :class:`ApiIngress` Serve deployment.

Endpoints (documented in docs/http_api.md and at /docs):

- ``POST /v1/enhance``: one image through one model; the PNG, or JSON with the PNG in base64 and
  the NIMA scores of input and output.
- ``POST /v1/compare``: one image through several models (baseline vs hybrid), all scored; the
  result is kept for the web page's results view.
- ``POST /v1/score``: NIMA mean, std and 10-bin distribution of an image.
- ``GET /v1/models``, ``GET /v1/results/{id}``, ``GET /v1/results/{id}/{name}.png``,
  ``GET /healthz``, and the web page at ``/``.

The modules: :mod:`~serve_app.api.routes` (the endpoints and :func:`create_api`),
:mod:`~serve_app.api.service` (what they do, without HTTP routing),
:mod:`~serve_app.api.schemas` (the JSON bodies), :mod:`~serve_app.api.failures` (the error
contract: every error is JSON ``{"detail": ...}`` with its status), :mod:`~serve_app.api.pages`
(the web page and the offline API docs) and :mod:`~serve_app.api.ingress` (the deployment).
"""

from serve_app.api.failures import ApiError
from serve_app.api.ingress import ApiIngress
from serve_app.api.routes import create_api
from serve_app.api.service import ApiService, choose_models

__all__ = ["ApiError", "ApiIngress", "ApiService", "choose_models", "create_api"]
