"""Headless Chromium for the web-page tests: where it is, how it is launched, and a record of
every request a browser context makes.

Debian's Chromium (``make chromium``) is driven by the ``playwright`` package; Playwright's own
browser download does not work offline. Without Chromium the page tests are skipped, except under
``CI=true``, where a missing browser is a failure: CI must not pass by testing less.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path(os.environ.get("NIE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_chromium() -> None:
    """Skip the calling test without Chromium or playwright; fail instead under CI=true."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Chromium at {CHROMIUM} (make chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (make venv)")
    if not missing:
        return
    reason = "the web-page tests need " + " and ".join(missing)
    if in_ci():
        pytest.fail(f"{reason}; under CI=true a missing browser fails the tests", pytrace=False)
    pytest.skip(reason)


# Tests marked with it are skipped (or fail under CI=true) before any service is deployed.
needs_chromium = pytest.mark.usefixtures("chromium_available")


def is_loopback(url: str) -> bool:
    """True for URLs served by this machine; data: URLs (no request) count as local."""
    scheme = urlsplit(url).scheme
    if scheme == "data":
        return True
    if scheme == "blob":  # blob:http://127.0.0.1:PORT/uuid, an object in the page itself
        url = url[len("blob:") :]
    return urlsplit(url).hostname in LOOPBACK


@dataclass
class NetworkLog:
    """Every request of a browser context (all its pages and tabs), the error responses, the
    failed requests and the console errors. With ``block_outside``, requests to other hosts are
    aborted (and still listed); Playwright's routing also stops the page from fetching
    /favicon.ico itself, so a test that loads the icon attaches without it."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # HTTP >= 400, failed requests, console errors

    def attach(self, context: Any, block_outside: bool = True) -> NetworkLog:
        def only_loopback(route: Any) -> None:
            if is_loopback(route.request.url):
                route.continue_()
            else:
                route.abort()

        if block_outside:
            context.route("**/*", only_loopback)
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("response", self._response)
        context.on("requestfailed", self._failed)
        context.on("page", self.watch_console)
        for page in context.pages:
            self.watch_console(page)
        return self

    def watch_console(self, page: Any) -> None:
        def console(message: Any) -> None:
            if message.type == "error":
                self.errors.append(f"console: {message.text}")

        page.on("console", console)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status} {response.url}")

    def _failed(self, request: Any) -> None:
        if urlsplit(request.url).scheme == "blob":
            return  # a blob: URL revoked by the page once read (ReDoc does this); no network
        self.errors.append(f"failed {request.url}: {request.failure}")

    @property
    def outside(self) -> list[str]:
        return [url for url in self.requests if not is_loopback(url)]
