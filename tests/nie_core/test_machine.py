"""nie_core.machine: the machine line written beside every recorded result."""

from __future__ import annotations

import platform

import pytest
import torch

from nie_core.inference import fast_path
from nie_core.machine import describe_machine


def test_machine_line_names_cpu_bf16_threads_and_kernel_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An AVX-512 BF16 + AMX CPU (stood in for), capped to AVX2 kernels: bf16 is emulated there.
    monkeypatch.setattr(
        fast_path, "cpuinfo_flags", lambda: frozenset({"avx2", "avx512_bf16", "amx_bf16"})
    )
    for name in ("NIE_FAST_PATH", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    native = describe_machine().split(", ")
    assert native[0] == platform.machine() and native[1]
    assert native[2] == (
        "native bf16" if torch.backends.mkldnn.is_available() else "no native bf16"
    )
    assert native[3] == f"{torch.get_num_threads()} torch threads" and len(native) == 4

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    capped = describe_machine().split(", ")
    assert capped[2] == "no native bf16" and capped[-1] == "ONEDNN_MAX_CPU_ISA=AVX2"
