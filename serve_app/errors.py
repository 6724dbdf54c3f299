"""Errors shared by the deployments and the ingress (kept free of heavy imports: Ray's
exception classes are imported when asked for)."""

from __future__ import annotations

__all__ = [
    "REPLICA_LOST_DETAIL",
    "REPLICA_LOST_RETRY_AFTER_S",
    "InvalidRequestError",
    "replica_lost_errors",
]

# Seconds a client should wait before retrying a request that a lost replica took down. The
# other replicas keep serving at once (Serve stops routing to a dead replica on its first
# failed call); with a single replica, Serve's replacement takes 12-25 s on a 2-core host.
REPLICA_LOST_RETRY_AFTER_S = 1
REPLICA_LOST_DETAIL = (
    "the model replica serving this request stopped (process or node lost); Serve is "
    "replacing it: retry the request"
)


class InvalidRequestError(ValueError):
    """The request does not fit the model (e.g. a scale it does not serve); the ingress answers
    422 with the message."""


def replica_lost_errors() -> tuple[type[Exception], ...]:
    """What a deployment handle raises when the replica a call went to died or cannot be
    reached (SIGKILL, OOM kill, a lost node) or the deployment has no replica to take it:
    Ray's ``RayActorError`` (``ActorDiedError``, ``ActorUnavailableError``) and Serve's
    ``ReplicaUnavailableError`` / ``DeploymentUnavailableError``. The ingress answers these
    503 with ``Retry-After`` (the request was fine; the service was briefly short of a
    replica), never 500.

    The ingress does not retry such a call itself: a request that crashed its replica (a
    "query of death") would take the next replica down with it."""
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import DeploymentUnavailableError, ReplicaUnavailableError

    return (RayActorError, ReplicaUnavailableError, DeploymentUnavailableError)
