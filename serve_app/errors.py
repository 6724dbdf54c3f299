"""Errors shared by the deployments and the ingress (kept free of heavy imports)."""

from __future__ import annotations

__all__ = ["InvalidRequestError"]


class InvalidRequestError(ValueError):
    """The request does not fit the model (e.g. a scale it does not serve); the ingress answers
    422 with the message."""
