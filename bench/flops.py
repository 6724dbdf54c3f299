"""FLOPs: what a model's convolutions cost (:func:`conv_flops`) and how many per second the
machine can do (:func:`matmul_candidates`, the matmul peak a model's rate is compared with).

Both count a multiply-add as 2 FLOPs, so the ratio of their rates is a model FLOP utilisation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def conv_flops(model: nn.Module, *args: Any, **kwargs: Any) -> int:
    """FLOPs of the convolutions (and linear layers) in one ``model(*args, **kwargs)`` call.

    A convolution costs ``2 * C_in / groups * C_out * k_h * k_w * H_out * W_out`` per image
    (a multiply-add counted as 2 FLOPs); elementwise work (ReLU, residual adds, mean shifts,
    pixel shuffles) is not counted. The model is copied to the ``meta`` device, so nothing is
    computed; tensor arguments are replaced by meta tensors of the same shape.
    """
    meta_model = copy.deepcopy(model).to("meta")
    total = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            per_output = 2 * module.in_channels // module.groups * kernel
            total += per_output * output.numel()
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * output.numel()

    handles = [
        module.register_forward_hook(count)
        for module in meta_model.modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    to_meta = lambda v: v.to("meta") if isinstance(v, torch.Tensor) else v  # noqa: E731
    try:
        with torch.no_grad():
            meta_model(*map(to_meta, args), **{k: to_meta(v) for k, v in kwargs.items()})
    finally:
        for handle in handles:
            handle.remove()
    return total


def matmul_candidates(
    flops_per_call: float = 0.0, size: int = 2048, bf16: bool = True, device: str = "cpu"
) -> dict[str, tuple[Callable[[], object], float]]:
    """Square ``size`` x ``size`` matrix products in bfloat16 and float32 on all of torch's
    threads, as ``{name: (run, flops)}``; their rate is the machine's practical peak.

    One call runs as many products as make about ``flops_per_call`` FLOPs (at least one), so
    that a peak measurement lasts about as long as the work it is compared with and is as
    exposed to other processes. A product of two n x n matrices is 2 n^3 FLOPs (a multiply-add
    counts as 2). ``bf16=False`` leaves the bfloat16 product out (where it is emulated, see
    :func:`bench.machine.bf16_native`). On a GPU the products are only queued: callers
    synchronise.
    """
    product_flops = 2.0 * size**3
    products = max(1, round(flops_per_call / product_flops))
    generator = torch.Generator().manual_seed(0)
    candidates: dict[str, tuple[Callable[[], object], float]] = {}
    dtypes = ((torch.bfloat16, "matmul_bf16"),) if bf16 else ()
    for dtype, name in (*dtypes, (torch.float32, "matmul_fp32")):
        a = torch.randn(size, size, generator=generator).to(device, dtype)
        b = torch.randn(size, size, generator=generator).to(device, dtype)
        out = torch.empty(size, size, dtype=dtype, device=device)

        def run(a: torch.Tensor = a, b: torch.Tensor = b, out: torch.Tensor = out) -> None:
            for _ in range(products):
                torch.matmul(a, b, out=out)

        candidates[name] = (run, products * product_flops)
    return candidates
