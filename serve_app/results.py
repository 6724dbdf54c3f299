"""Recent results for the web page: a bounded LRU of PNGs, served by one Serve replica.

The store is its own deployment (one replica, no CPU reserved) so that every ingress replica sees
the same results, and it imports neither torch nor the models, so its replica starts fast.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ray import serve

__all__ = ["ResultCache", "ResultStore"]


class ResultCache:
    """A least-recently-used store of results: ``id -> (summary dict, {name: PNG bytes})``,
    bounded by both the number of entries and the total PNG bytes (oldest dropped first)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"limits must be >= 1, got {max_entries=} and {max_bytes=}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[dict[str, Any], dict[str, bytes]]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def put(self, result_id: str, summary: dict[str, Any], images: dict[str, bytes]) -> None:
        """Store (or replace) a result, then evict the least recently used ones over the
        limits. A result larger than ``max_bytes`` on its own is not kept."""
        self.pop(result_id)
        size = sum(len(data) for data in images.values())
        if size > self.max_bytes:
            return
        self._entries[result_id] = (summary, dict(images))
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self.pop(next(iter(self._entries)))

    def pop(self, result_id: str) -> None:
        entry = self._entries.pop(result_id, None)
        if entry is not None:
            self._bytes -= sum(len(data) for data in entry[1].values())

    def summary(self, result_id: str) -> dict[str, Any] | None:
        entry = self._entries.get(result_id)
        if entry is None:
            return None
        self._entries.move_to_end(result_id)
        return entry[0]

    def image(self, result_id: str, name: str) -> bytes | None:
        entry = self._entries.get(result_id)
        if entry is None:
            return None
        self._entries.move_to_end(result_id)
        return entry[1].get(name)


@serve.deployment(name="ResultStore", ray_actor_options={"num_cpus": 0})
class ResultStore:
    """The web page's recent results, shared by all ingress replicas (one replica, no CPU)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._cache = ResultCache(max_entries, max_bytes)

    def put(self, result_id: str, summary: dict[str, Any], images: dict[str, bytes]) -> None:
        self._cache.put(result_id, summary, images)

    def summary(self, result_id: str) -> dict[str, Any] | None:
        return self._cache.summary(result_id)

    def image(self, result_id: str, name: str) -> bytes | None:
        return self._cache.image(result_id, name)
