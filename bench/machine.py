"""What the benchmarks measure on: the CPU (model, instruction set, native bfloat16 or not) or the
GPU, and the settings that change which kernels run (torch's thread count: :func:`threads`).

Every benchmark that compares bfloat16 with float32 first asks :func:`bf16_native`: on a CPU
without native bfloat16 (AVX2 only, or AVX-512 capped by ``ONEDNN_MAX_CPU_ISA``) bf16 autocast
and bf16 matmuls are emulated, 10-40x slower than float32, so those variants are skipped there
and their targets reported as not applicable (:data:`NO_BF16`), never as failed.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

# The reason written in tables where bf16 variants were skipped.
NO_BF16 = "skipped: no native bf16 on this CPU"
NOT_APPLICABLE_NO_BF16 = "not applicable on this machine: no native bf16 on this CPU"
NO_CUDA = "bench: --device cuda needs a CUDA GPU, and torch.cuda.is_available() is False here"

# Environment variables that change the kernels torch runs (named in the machine line).
KERNEL_SETTINGS = ("NIE_FAST_PATH", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def bf16_native(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively: on CPU, ``nie_core.inference``'s detection
    (AVX-512 BF16 / AMX flags, honouring ``ONEDNN_MAX_CPU_ISA``); on CUDA, compute capability
    8.0 or newer. ``NIE_FAST_PATH`` is not consulted: it chooses NIE's path, not the hardware's."""
    from nie_core.inference import cpu_bf16_native

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)
    return device.type == "cpu" and cpu_bf16_native()


@contextmanager
def threads(count: int) -> Iterator[None]:
    """Temporarily run torch on ``count`` intra-op threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _cpuinfo_field(key: str) -> str | None:
    """The value of the first ``key : value`` line of ``/proc/cpuinfo`` (None if absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def _cpu_isa(flags: frozenset[str]) -> str:
    """The widest x86 vector instruction set in ``flags`` ("AVX-512", "AVX2", ...)."""
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")):
        if flag in flags:
            return name
    return platform.machine() or "unknown"


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What the numbers were measured on (device, CPU, ISA, threads, library versions, load)."""
    from nie_core.inference import cpuinfo_flags, fast_path_supported, usable_cpu_flags

    raw = cpuinfo_flags()
    usable = usable_cpu_flags()  # less the bf16 flags an ONEDNN_MAX_CPU_ISA cap takes away
    info: dict[str, Any] = {
        "device": device,
        "cpu": _cpuinfo_field("model name") or platform.processor() or platform.machine(),
        "cpu_isa": _cpu_isa(raw),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16_flags": sorted(raw & {"avx512_bf16", "amx_bf16", "amx_tile"}),
        "cpu_bf16": sorted(usable & {"avx512_bf16", "amx_bf16"}),
        "bf16_native": bf16_native("cpu"),
        "fast_path_cpu": fast_path_supported("cpu"),
        "settings": {k: os.environ[k] for k in KERNEL_SETTINGS if os.environ.get(k)},
        "cuda": torch.cuda.is_available(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if info["cuda"]:
        index = torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        info["gpu"] = torch.cuda.get_device_name(index)
        info["gpu_capability"] = f"{major}.{minor}"
        info["gpu_count"] = torch.cuda.device_count()
        info["cuda_version"] = torch.version.cuda
        info["gpu_bf16_native"] = (major, minor) >= (8, 0)
    return info


def cpu_description(info: Mapping[str, Any]) -> str:
    """The CPU, its instruction set and whether it computes bf16 natively."""
    isa = info.get("cpu_isa", "?")
    aten = info.get("aten_cpu_capability")
    if aten:
        isa += f" (ATen kernels: {aten})"
    usable = info.get("cpu_bf16", [])
    if info.get("bf16_native", bool(usable)):
        bf16 = f"native bf16 ({', '.join(usable)})"
    elif info.get("cpu_bf16_flags"):
        bf16 = "no native bf16 (the CPU has " + ", ".join(info["cpu_bf16_flags"]) + ", capped away)"
    else:
        bf16 = "no native bf16: bf16 is emulated"
    return f"{info.get('cpu', '?')}, {isa}, {bf16}"


def device_line(info: Mapping[str, Any]) -> str:
    """One sentence naming the device that was measured."""
    if info.get("device", "cpu") == "cuda":
        return (
            f"Device measured: GPU {info.get('gpu', '?')} (compute capability "
            f"{info.get('gpu_capability', '?')}, CUDA {info.get('cuda_version', '?')}); "
            f"host CPU {cpu_description(info)}."
        )
    line = f"Device measured: CPU, {cpu_description(info)}."
    if info.get("cuda"):
        return line + (
            f" A GPU ({info.get('gpu', 'CUDA')}) was present; its benchmark is "
            "`python -m bench.run_all --device cuda`."
        )
    return line + " No GPU on this machine: the CUDA path is not measured in this run."


def machine_line(info: Mapping[str, Any]) -> str:
    """One line for a Markdown table's caption."""
    gpu = info.get("gpu", "CUDA") if info.get("cuda") else "no GPU"
    settings = info.get("settings") or {}
    set_part = "; " + ", ".join(f"{k}={v}" for k, v in settings.items()) if settings else ""
    return (
        f"{cpu_description(info)}, {info['logical_cpus']} logical CPUs ({info['torch_threads']} "
        f"torch threads), {gpu}; torch {info['torch']}, Python {info['python']}{set_part}; "
        f"1-min load average {info['load_average_1min']} at the start"
    )
