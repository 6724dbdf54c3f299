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


class Judges(BaseModel):
    """What each judge says of one output (``nie_core.judging`` holds which way is better)."""

    nima: float | None = Field(description="NIMA mean score (higher is better; = score.mean)")
    niqe: float | None = Field(
        description="NIQE of the region (lower is better); null below 192 px a side"
    )
    lr_psnr_y: float | None = Field(
        description="LR-consistency, dB: PSNR-Y of the input and the bicubic-downscaled "
        "output (higher is better; at most 100)"
    )
    artifacts: float | None = Field(
        description="dB of fine detail the region adds on the smooth areas of the bicubic "
        "up-sampling of the input (lower is better, 0 = none)"
    )
    region: list[int] | None = Field(
        description="[left, top, width, height] in output pixels: the centre region (at most "
        "512 px a side) that NIQE and artifacts measure"
    )


class Verdict(BaseModel):
    """Whether an output earns the "best" badge: only when no judge rates it worse than
    another output of the result (beyond the judge's tolerance)."""

    best: bool
    reason: str = Field(description="why; when not best, the judge(s) that disagree")


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
    judges: Judges | None = Field(None, description="outputs only")
    verdict: Verdict | None = Field(None, description="outputs of a result with several only")


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
    winner: str | None = Field(
        description="the one output with the 'best' verdict: no judge rates it worse than "
        "another; null when the judges disagree (or tie) or there is one output"
    )


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
