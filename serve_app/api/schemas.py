"""The JSON bodies the API answers with, as pydantic models (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Score(BaseModel):
    """NIMA rating of one image (Talebi & Milanfar 2018)."""

    mean: float = Field(description="mean score, sum_i i * p_i, in [1, 10]")
    std: float = Field(description="standard deviation of the score distribution")
    distribution: list[float] = Field(description="probabilities of the scores 1..10 (sum 1)")


class ScoreResponse(Score):
    width: int
    height: int


class ImageResult(BaseModel):
    """One image of a result: the input or a model's output."""

    name: str = Field(description="'input' or the model name")
    label: str = Field(description="e.g. 'baseline' or 'hybrid'; 'input' for the upload")
    url: str | None = Field(description="full-resolution PNG (kept in a bounded LRU)")
    width: int
    height: int
    score: Score | None = None
    elapsed_ms: float | None = Field(
        None, description="milliseconds the model took on this output in its replica"
    )


class EnhanceResponse(BaseModel):
    result_id: str
    model: str
    label: str
    task: str
    scale: int
    ensemble: bool
    input: ImageResult
    output: ImageResult
    image_png_base64: str = Field(description="the output as a base64-encoded PNG")


class CompareResponse(BaseModel):
    result_id: str
    task: str
    scale: int
    ensemble: bool
    input: ImageResult
    outputs: list[ImageResult]
    winner: str | None = Field(description="the output with the highest NIMA mean")


class ModelInfo(BaseModel):
    name: str
    label: str
    kind: str = Field(description="'edsr' (one scale) or 'mdsr' (several)")
    task: str = Field(description="'sr' (super-resolution) or 'deblur'")
    scales: list[int]
    trained: bool = Field(description="false only for random weights (allow_untrained)")
    source: str
    origin: str = Field(description="what was loaded: checkpoint path or models:/NAME/VERSION")
    fingerprint: str = Field(description="hash of the weights; changes when the model is swapped")


class ScorerInfo(BaseModel):
    kind: str
    trained: bool
    source: str
    origin: str
    fingerprint: str
    max_batch_size: int


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    scorer: ScorerInfo
    max_pixels: int
    max_upload_bytes: int


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    deployments: dict[str, str]
    internal_errors: int = Field(description="requests answered with 500 by this replica")


class ErrorResponse(BaseModel):
    detail: str
