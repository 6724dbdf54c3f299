"""Inference: seamless tiled super-resolution, geometric self-ensemble and NIMA scoring.

Images are float32 (N, 3, H, W) tensors in [0, 1]. Tiling bounds memory for large images without
changing the result: every tile is run with a margin of the model's receptive radius, so the part
of the tile that is kept sees exactly the pixels it would see in the whole image. The optional
fast path runs convolutions in channels_last layout under bfloat16 autocast where the hardware
computes bfloat16 natively.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FastMode",
    "cpu_bf16_native",
    "enhance",
    "fast_path_supported",
    "prepare_model",
    "score",
]

FastMode = bool | Literal["auto"]

# CPU feature flags (Linux /proc/cpuinfo names) for native bfloat16 dot products: AVX-512 BF16
# (vdpbf16ps) or AMX tiles. torch.backends.cpu.get_cpu_capability() reports only "AVX512" on
# torch 2.14, with or without them, so the flags are read directly.
_NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def fast_path_supported(device: torch.device | str) -> bool:
    """Whether channels_last + bfloat16 autocast is expected to be fast and native on ``device``.

    CPU: :func:`cpu_bf16_native` (oneDNN is available, the CPU has AVX-512 BF16 or AMX-BF16 and
    ``ONEDNN_MAX_CPU_ISA`` does not forbid them). CUDA: the GPU computes bfloat16
    natively (Ampere or newer). Any other device: False. ``NIE_FAST_PATH=off`` in the
    environment answers False everywhere (float32 only, e.g. to time a machine without bf16).
    """
    device = torch.device(device)
    if os.environ.get("NIE_FAST_PATH", "").lower() in ("0", "off", "false", "no"):
        return False
    if device.type == "cuda":
        # Ask about the GPU named, not the current one: bf16 is native from compute capability 8.0
        # (Ampere) on, and a node may mix generations.
        if not torch.cuda.is_available():
            return False
        index = torch.cuda.current_device() if device.index is None else device.index
        if not 0 <= index < torch.cuda.device_count():
            return False
        return torch.cuda.get_device_capability(index) >= (8, 0)
    if device.type == "cpu":
        return cpu_bf16_native()
    return False


def cpu_bf16_native() -> bool:
    """Whether this CPU computes bfloat16 convolutions and matmuls natively through oneDNN: oneDNN
    is available and :func:`_cpu_flags` has AVX-512 BF16 or AMX-BF16. Without them, bfloat16
    autocast is emulated (10-40x slower than float32 on AVX2-only CPUs)."""
    return torch.backends.mkldnn.is_available() and bool(_cpu_flags() & _NATIVE_BF16_CPU_FLAGS)


# bf16 flags that oneDNN may still use under each ``ONEDNN_MAX_CPU_ISA`` cap (oneDNN's names,
# lower case); a cap not listed here (ALL, DEFAULT, a future name) removes none.
_NO_BF16: frozenset[str] = frozenset()
_BF16_FLAGS_UNDER_ONEDNN_ISA_CAP = {
    **dict.fromkeys(
        ("sse41", "avx", "avx2", "avx2_vnni", "avx2_vnni_2", "avx512_core", "avx512_core_vnni"),
        _NO_BF16,
    ),
    **dict.fromkeys(
        ("avx512_core_bf16", "avx512_core_fp16", "avx10_1_512"), frozenset({"avx512_bf16"})
    ),
    **dict.fromkeys(
        ("avx512_core_amx", "avx512_core_amx_fp16", "avx10_1_512_amx", "avx10_1_512_amx_fp16"),
        _NATIVE_BF16_CPU_FLAGS,
    ),
}


def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as oneDNN may use them: ``/proc/cpuinfo``'s flags (empty where that
    file does not exist) less the bfloat16 ones that ``ONEDNN_MAX_CPU_ISA`` (or the older
    ``DNNL_MAX_CPU_ISA``) caps away, e.g. ``ONEDNN_MAX_CPU_ISA=AVX2``, which makes an AVX-512 BF16
    machine compute like an AVX2-only one (bf16 emulated). Read on every call: the environment
    may change, the file is read once."""
    flags = _proc_cpuinfo_flags()
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    allowed = _BF16_FLAGS_UNDER_ONEDNN_ISA_CAP.get(cap.strip().lower())
    if allowed is None:
        return flags
    return flags - (_NATIVE_BF16_CPU_FLAGS - allowed)


@functools.cache
def _proc_cpuinfo_flags() -> frozenset[str]:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def prepare_model(
    model: nn.Module, device: torch.device | str = "cpu", fast: FastMode = "auto"
) -> nn.Module:
    """Move ``model`` to ``device`` in eval mode; with the fast path, convert its 4-D weights to
    channels_last so convolutions need no layout conversion per call. Returns the same module."""
    device = torch.device(device)
    model = model.to(device).eval()
    if _resolve_fast(fast, device):
        model = model.to(memory_format=torch.channels_last)
    return model


def enhance(
    model: nn.Module,
    x: torch.Tensor,
    scale: int | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    self_ensemble: bool = False,
    fast: FastMode = "auto",
) -> torch.Tensor:
    """Run a super-resolution / restoration model: (N, 3, H, W) -> (N, 3, H*s, W*s), float32 in
    [0, 1] (clamped), on ``x``'s device.

    Args:
        model: an EDSR-like model (``forward(x)``, attribute ``scale``) or an MDSR-like one
            (``forward(x, scale)``, attribute ``scales``); both carry ``receptive_radius``.
        x: float images in [0, 1]; they may live on another device than the model (only tiles
            are moved).
        scale: the upscaling factor; required for a multi-scale model with several ``scales``,
            optional (but checked) for a single-scale one.
        tile_size: process the image in tiles of at most ``tile_size`` x ``tile_size`` input
            pixels (plus the overlap on each side); None or a size >= the image disables tiling.
            Tiles are spread evenly, so every tile has about the same size.
        tile_overlap: margin in input pixels added on each side of a tile and thrown away
            afterwards; defaults to ``model.receptive_radius``, with which the tiled output
            equals the untiled one up to float rounding (zero padding at the image border is the
            same in both, because a tile's outer edge there is the image edge).
        self_ensemble: average the outputs for the 8 flips/rotations of the input, each mapped
            back ("geometric self-ensemble", EDSR+ in Lim et al. 2017; 8x the compute).
        fast: True: channels_last + bfloat16 autocast; False: float32 NCHW; "auto": fast when
            :func:`fast_path_supported` says so for the model's device.

    The output is assembled in one preallocated tensor and each tile runs under
    ``torch.inference_mode``, so no autograd graph is kept; the result is an ordinary tensor.
    """
    _check_image_batch(x, "x")
    scale, forward = _bind_scale(model, scale)
    overlap = _resolve_overlap(model, tile_size, tile_overlap)
    device = _model_device(model)
    run_tile = functools.partial(
        _run_forward, forward, device=device, fast=_resolve_fast(fast, device)
    )

    n, channels, height, width = x.shape
    out_shape = (n, channels, height * scale, width * scale)
    out = torch.empty(out_shape, dtype=torch.float32, device=x.device)
    with _eval_mode(model), torch.inference_mode():
        if not self_ensemble:
            _forward_tiled(run_tile, x, scale, tile_size, overlap, out)
        else:
            out.zero_()
            for rotations, flip in _DIHEDRAL_GROUP:
                view = _dihedral(x, rotations, flip)
                view_shape = (n, channels, view.shape[2] * scale, view.shape[3] * scale)
                view_out = torch.empty(view_shape, dtype=torch.float32, device=x.device)
                _forward_tiled(run_tile, view, scale, tile_size, overlap, view_out)
                out += _dihedral_inverse(view_out, rotations, flip)
            out /= len(_DIHEDRAL_GROUP)
        out.clamp_(0.0, 1.0)
    return out


def score(
    scorer: nn.Module,
    x: torch.Tensor,
    resize: int | None | Literal["auto"] = "auto",
    fast: FastMode = False,
) -> torch.Tensor:
    """NIMA score distributions: (N, 3, H, W) in [0, 1] -> probabilities (N, 10) over the
    buckets 1..10, float32 on ``x``'s device.

    ``resize``: images are resized to ``resize`` x ``resize`` (bilinear with antialiasing, aspect
    ratio not kept), the input size of the NIMA networks (Talebi & Milanfar 2018 feed 224 x 224
    crops); None keeps the size; "auto" uses the scorer's ``input_size`` attribute (224 when it
    has none; None for technical-quality scorers trained on unresized crops, which must see the
    pixels as they are). ``fast`` as in :func:`enhance`; off by default so that scores
    used as metrics do not depend on the machine.
    """
    _check_image_batch(x, "x")
    if resize == "auto":
        resize = getattr(scorer, "input_size", 224)
    if resize is not None and resize < 1:
        raise ValueError(f"resize must be a positive size or None, got {resize}")
    device = _model_device(scorer)
    use_fast = _resolve_fast(fast, device)
    with _eval_mode(scorer), torch.inference_mode():
        images = x.to(device=device, dtype=torch.float32)
        if resize is not None and images.shape[-2:] != (resize, resize):
            images = F.interpolate(
                images, size=(resize, resize), mode="bilinear", align_corners=False, antialias=True
            )
        # channels_last in float32 too: MnasNet-NIMA runs about twice as fast on CPU for a batch
        # of 16 (its outputs matched the NCHW ones bit for bit in bench/ measurements).
        images = images.contiguous(memory_format=torch.channels_last)
        probs = _run_forward(scorer, images, device=device, fast=use_fast)
    return probs.to(x.device).clone()  # clone outside inference mode -> an ordinary tensor


# --------------------------------------------------------------------------- internals


def _check_image_batch(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode, then restore each one's own previous mode."""
    previous_modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in previous_modes:
            module.training = training


def _resolve_fast(fast: FastMode, device: torch.device) -> bool:
    if fast == "auto":
        return fast_path_supported(device)
    if isinstance(fast, bool):
        return fast
    raise ValueError(f"fast must be True, False or 'auto', got {fast!r}")


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _bind_scale(
    model: nn.Module, scale: int | None
) -> tuple[int, Callable[[torch.Tensor], torch.Tensor]]:
    """The upscaling factor to use and a one-argument forward function for it."""
    model_scales = getattr(model, "scales", None)
    if model_scales is not None:  # multi-scale model (MDSR): forward(x, scale)
        model_scales = tuple(model_scales)
        if scale is None:
            if len(model_scales) != 1:
                raise ValueError(f"model serves scales {model_scales}; pass scale=")
            scale = model_scales[0]
        if scale not in model_scales:
            raise ValueError(f"scale {scale!r} is not among the model's scales {model_scales}")
        return scale, functools.partial(model, scale=scale)
    model_scale = getattr(model, "scale", None)
    if not isinstance(model_scale, int):
        raise ValueError(
            f"{type(model).__name__} has neither an int `scale` nor `scales` attribute"
        )
    if scale is not None and scale != model_scale:
        raise ValueError(f"scale {scale!r} requested from a model with fixed scale {model_scale}")
    return model_scale, model


def _resolve_overlap(model: nn.Module, tile_size: int | None, tile_overlap: int | None) -> int:
    if tile_size is not None and (isinstance(tile_size, bool) or tile_size < 1):
        raise ValueError(f"tile_size must be a positive int or None, got {tile_size!r}")
    if tile_overlap is not None:
        if tile_overlap < 0:
            raise ValueError(f"tile_overlap must be >= 0, got {tile_overlap}")
        return tile_overlap
    radius = getattr(model, "receptive_radius", None)
    if radius is None:
        if tile_size is None:
            return 0
        raise ValueError(
            f"{type(model).__name__} has no receptive_radius attribute; pass tile_overlap="
        )
    return int(radius)


def _run_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    *,
    device: torch.device,
    fast: bool,
) -> torch.Tensor:
    """Move ``images`` to ``device``, run ``forward``, return float32 (bf16 autocast if fast)."""
    images = images.to(device=device, dtype=torch.float32, non_blocking=True)
    if not fast:
        return forward(images).float()
    images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        return forward(images).float()


def _tile_spans(length: int, tile_size: int | None) -> list[tuple[int, int]]:
    """Split ``range(length)`` into the fewest near-equal spans of at most ``tile_size``."""
    if tile_size is None or tile_size >= length:
        return [(0, length)]
    count = math.ceil(length / tile_size)
    bounds = [i * length // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _forward_tiled(
    run_tile: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    tile_size: int | None,
    overlap: int,
    out: torch.Tensor,
) -> None:
    """Fill ``out`` (N, C, H*scale, W*scale) with the model output for ``x`` (N, C, H, W).

    Each tile covers the core ``[y0, y1) x [x0, x1)`` and is computed from the window grown by
    ``overlap`` on each side, clipped to the image; only the core's output is kept.
    """
    height, width = x.shape[-2:]
    for y0, y1 in _tile_spans(height, tile_size):
        top, bottom = max(0, y0 - overlap), min(height, y1 + overlap)
        for x0, x1 in _tile_spans(width, tile_size):
            left, right = max(0, x0 - overlap), min(width, x1 + overlap)
            tile_out = run_tile(x[:, :, top:bottom, left:right])
            expected = (x.shape[0], out.shape[1], (bottom - top) * scale, (right - left) * scale)
            if tuple(tile_out.shape) != expected:
                raise ValueError(
                    f"model output has shape {tuple(tile_out.shape)}, expected {expected} "
                    f"for an input of shape {tuple(x[:, :, top:bottom, left:right].shape)} "
                    f"at scale {scale}"
                )
            out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = tile_out[
                :,
                :,
                (y0 - top) * scale : (y1 - top) * scale,
                (x0 - left) * scale : (x1 - left) * scale,
            ]


# The 8 symmetries of the square as (quarter turns, horizontal flip after turning).
_DIHEDRAL_GROUP: tuple[tuple[int, bool], ...] = tuple(
    (rotations, flip) for rotations in range(4) for flip in (False, True)
)


def _dihedral(x: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    turned = torch.rot90(x, rotations, dims=(-2, -1))
    return turned.flip(-1) if flip else turned


def _dihedral_inverse(y: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    if flip:
        y = y.flip(-1)
    return torch.rot90(y, -rotations, dims=(-2, -1))
