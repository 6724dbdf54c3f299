"""Calls the service tests make: a multipart POST, the same computation in process (what the
service must equal), the health endpoint's count of internal errors, and the test images."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import skimage.data

from nie_core.checkpoint import load_model
from nie_core.data.images import to_tensor, to_uint8
from nie_core.inference import enhance, score
from nie_core.models.nima import mean_score

CHELSEA = skimage.data.chelsea()  # 300 x 451 RGB photograph
COFFEE_SMALL = skimage.data.coffee()[100:196, 200:328]  # 96 x 128 crop


def post(service, path: str, image: bytes | None, timeout: float = 60, **fields) -> httpx.Response:
    files = {"image": ("photo.png", image, "image/png")} if image is not None else None
    data = {key: str(value) for key, value in fields.items()}
    return httpx.post(f"{service.url}{path}", files=files, data=data, timeout=timeout)


def in_process_enhance(checkpoint: Path, image: np.ndarray, **kwargs) -> np.ndarray:
    model = load_model(checkpoint)
    out = enhance(model, to_tensor(image).unsqueeze(0), fast=False, **kwargs)
    return to_uint8(out[0])


def in_process_score(checkpoint: Path, image: np.ndarray) -> float:
    probs = score(load_model(checkpoint), to_tensor(image).unsqueeze(0))
    return float(mean_score(probs)[0])


def internal_errors(service) -> int:
    return httpx.get(f"{service.url}/healthz", timeout=30).json()["internal_errors"]
