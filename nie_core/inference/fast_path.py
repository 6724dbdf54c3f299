"""The fast path: channels_last layout under bfloat16 autocast, taken where it is native.

Whether a device computes bfloat16 natively (CUDA from Ampere on; a CPU with AVX-512 BF16 or AMX
that oneDNN may use), how a ``fast`` argument ("auto", True, False) resolves on a device, and
:func:`prepare_model`, which readies a model's weights for the path chosen.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

import torch
from torch import nn

__all__ = ["FastMode", "cpu_bf16_native", "fast_path_supported", "prepare_model", "resolve_fast"]

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
    is available and :func:`usable_cpu_flags` has AVX-512 BF16 or AMX-BF16. Without them, bfloat16
    autocast is emulated (10-40x slower than float32 on AVX2-only CPUs)."""
    return torch.backends.mkldnn.is_available() and bool(
        usable_cpu_flags() & _NATIVE_BF16_CPU_FLAGS
    )


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


def usable_cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as oneDNN may use them: ``/proc/cpuinfo``'s flags (empty where that
    file does not exist) less the bfloat16 ones that ``ONEDNN_MAX_CPU_ISA`` (or the older
    ``DNNL_MAX_CPU_ISA``) caps away, e.g. ``ONEDNN_MAX_CPU_ISA=AVX2``, which makes an AVX-512 BF16
    machine compute like an AVX2-only one (bf16 emulated). Read on every call: the environment
    may change, the file is read once."""
    flags = cpuinfo_flags()
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    allowed = _BF16_FLAGS_UNDER_ONEDNN_ISA_CAP.get(cap.strip().lower())
    if allowed is None:
        return flags
    return flags - (_NATIVE_BF16_CPU_FLAGS - allowed)


@functools.cache
def cpuinfo_flags() -> frozenset[str]:
    """The CPU's feature flags as ``/proc/cpuinfo`` lists them (empty where it does not exist)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def resolve_fast(fast: FastMode, device: torch.device) -> bool:
    """``fast`` as a bool for ``device``: "auto" asks :func:`fast_path_supported`."""
    if fast == "auto":
        return fast_path_supported(device)
    if isinstance(fast, bool):
        return fast
    raise ValueError(f"fast must be True, False or 'auto', got {fast!r}")


def prepare_model(
    model: nn.Module, device: torch.device | str = "cpu", fast: FastMode = "auto"
) -> nn.Module:
    """Move ``model`` to ``device`` in eval mode; with the fast path, convert its 4-D weights to
    channels_last so convolutions need no layout conversion per call. Returns the same module."""
    device = torch.device(device)
    model = model.to(device).eval()
    if resolve_fast(fast, device):
        model = model.to(memory_format=torch.channels_last)
    return model
