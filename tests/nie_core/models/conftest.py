"""Fixtures shared by the model tests."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail like an offline machine whenever torch hub would download. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("no_downloads")``."""

    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise URLError(f"offline test: refused to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
