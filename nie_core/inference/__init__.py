"""Inference: seamless tiled super-resolution, geometric self-ensemble and NIMA scoring.

Images are float32 (N, 3, H, W) tensors in [0, 1]. Tiling bounds memory for large images without
changing the result: every tile is run with a margin of the model's receptive radius, so the part
of the tile that is kept sees exactly the pixels it would see in the whole image. The optional
fast path runs convolutions in channels_last layout under bfloat16 autocast where the hardware
computes bfloat16 natively.

The modules: :mod:`~nie_core.inference.enhancing` (:func:`enhance`),
:mod:`~nie_core.inference.scoring` (:func:`score`, :func:`score_images`; the scorer's input
handling, :func:`prepare_scorer_input`, comes from the model), :mod:`~nie_core.inference.tiling`,
:mod:`~nie_core.inference.ensemble` (the self-ensemble), :mod:`~nie_core.inference.fast_path`
(when the fast path is native, :func:`prepare_model`) and :mod:`~nie_core.inference.running`
(one batch through one model, shared by both entry points).
"""

from nie_core.inference.enhancing import enhance
from nie_core.inference.fast_path import (
    FastMode,
    cpu_bf16_native,
    cpuinfo_flags,
    fast_path_supported,
    prepare_model,
    usable_cpu_flags,
)
from nie_core.inference.scoring import (
    ScorerInput,
    prepare_scorer_input,
    score,
    score_images,
    scorer_input,
)

__all__ = [
    "FastMode",
    "ScorerInput",
    "cpu_bf16_native",
    "cpuinfo_flags",
    "enhance",
    "fast_path_supported",
    "prepare_model",
    "prepare_scorer_input",
    "score",
    "score_images",
    "scorer_input",
    "usable_cpu_flags",
]
