"""One line naming the machine a result was measured on, for the files that record results
(``nie eval``, ``nie demo``'s summary, model cards): architecture, CPU model, whether the CPU
computes bf16 natively, torch's thread count, and the settings that change the kernels."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from nie_core.inference import cpu_bf16_native

__all__ = ["cpu_model", "describe_machine"]

# Environment variables that change which kernels run (and so the numbers measured).
KERNEL_SETTINGS = ("NIE_FAST_PATH", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def describe_machine() -> str:
    """E.g. ``x86_64, Intel(R) Xeon(R) Processor, native bf16, 2 torch threads``."""
    parts = [platform.machine(), cpu_model()]
    parts.append("native bf16" if cpu_bf16_native() else "no native bf16")
    parts.append(f"{torch.get_num_threads()} torch threads")
    parts += [f"{name}={os.environ[name]}" for name in KERNEL_SETTINGS if os.environ.get(name)]
    return ", ".join(parts)


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ("unknown CPU" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown CPU"
