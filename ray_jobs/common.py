"""Old import place of two names, kept only for importers outside this change's reach.

``nie_cli/demo`` imports ``ensure_ray`` and ``format_seconds`` and ``ray_jobs/tune``
imports ``ensure_ray`` from here. They live in :mod:`ray_jobs.driver` and
:mod:`ray_jobs.progress`; delete this module once those imports point there.
"""

from __future__ import annotations

from .driver import ensure_ray
from .progress import format_seconds

__all__ = ["ensure_ray", "format_seconds"]
