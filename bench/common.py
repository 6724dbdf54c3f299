"""What every benchmark shares: interleaved timing, matmul peaks, FLOP counting, result files.

Timing on a shared machine: other processes only ever add time, so each candidate's *minimum*
over several rounds is its best estimate, and candidates are run in turn within each round
(interleaved), so that a busy phase of the machine slows all of them alike. Ratios of minima
taken in one run are what the benchmarks report and check.
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

# Re-exported: the benchmarks import these from here.
from bench.machine import machine_info, machine_line  # noqa: F401
from bench.report import (  # noqa: F401
    QUICK_RESULTS_DIR,
    RESULTS_DIR,
    BenchResult,
    Target,
    format_number,
    markdown_table,
    target_cells,
    write_result,
)

# --------------------------------------------------------------------------- timing


# Two samples within this fraction of each other: the minimum is taken as settled.
STABLE_TOLERANCE = 0.05


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of the repetitions of one candidate."""

    samples: tuple[float, ...]

    @property
    def best(self) -> float:
        """The minimum: the run least disturbed by other processes."""
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def stable(self) -> bool:
        """Whether the two fastest samples agree within ``STABLE_TOLERANCE``."""
        fastest = sorted(self.samples)[:2]
        return len(fastest) == 2 and fastest[1] <= fastest[0] * (1 + STABLE_TOLERANCE)


def time_interleaved(
    candidates: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    balance: bool = False,
    max_seconds: float | None = None,
) -> dict[str, Timing]:
    """Time each candidate in rounds: each round runs every candidate once, in an order rotated
    by one place each round.

    Every candidate first runs ``warmup`` times untimed (allocator, oneDNN kernel selection).
    Then ``repeats`` rounds run; with ``max_seconds``, more rounds follow while some candidate's
    minimum is not yet :attr:`Timing.stable` and the rounds so far took less than
    ``max_seconds`` (a busy machine gets more chances of a quiet moment). With ``balance``, a
    candidate k times faster than the slowest one (judged from the last warm-up) runs k times
    back to back per turn, and its sample is the turn's time / k: all turns then last about as
    long and are equally likely to be disturbed by other processes, which would otherwise
    favour the short candidates' minima. Returns a ``Timing`` (seconds per run) per name.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    warm_seconds = dict.fromkeys(candidates, 0.0)
    for _ in range(warmup):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            warm_seconds[name] = time.perf_counter() - start
    runs_per_turn = dict.fromkeys(candidates, 1)
    if balance and warmup > 0:
        longest = max(warm_seconds.values())
        runs_per_turn = {n: max(1, round(longest / max(s, 1e-9))) for n, s in warm_seconds.items()}
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    started = time.perf_counter()
    rounds = 0
    names = list(candidates)
    while True:
        # Each round starts one candidate further along, so that none is always first (right
        # after the previous round's checks) or last. Neighbours within a round stay neighbours:
        # where one candidate's after-effects (another process still finishing its part of a
        # request) must not always fall on the same other one, order them to alternate, as
        # bench/serve.py does.
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            run = candidates[name]
            start = time.perf_counter()
            for _ in range(runs_per_turn[name]):
                run()
            samples[name].append((time.perf_counter() - start) / runs_per_turn[name])
        rounds += 1
        timings = {name: Timing(tuple(values)) for name, values in samples.items()}
        if rounds < repeats:
            continue
        settled = all(timing.stable for timing in timings.values())
        if max_seconds is None or settled or time.perf_counter() - started >= max_seconds:
            return timings


def unsettled_note(timings: Mapping[str, Timing], context: str = "") -> list[str]:
    """A note naming the candidates whose minimum did not settle (empty when all did)."""
    names = [name for name, timing in timings.items() if not timing.stable]
    if not names:
        return []
    where = f" ({context})" if context else ""
    return [
        f"Not settled{where}: {', '.join(names)}: their two fastest rounds differ by more than "
        f"{STABLE_TOLERANCE:.0%} (the machine was busy), so these minima may be too slow."
    ]


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


# --------------------------------------------------------------------------- FLOPs


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


# --------------------------------------------------------------------------- the process


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``ru_maxrss`` is in KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@contextmanager
def threads(count: int) -> Iterator[None]:
    """Temporarily run torch on ``count`` intra-op threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------- running


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer repetitions (smoke run)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"results folder (default {RESULTS_DIR}; with --quick {QUICK_RESULTS_DIR})",
    )
    return parser


def results_dir(out: Path | None, quick: bool) -> Path:
    """Where results go: ``out`` if given, else the committed folder (a quick run's results
    go to a temporary folder instead, so they never replace the committed ones)."""
    if out is not None:
        return out
    return QUICK_RESULTS_DIR if quick else RESULTS_DIR


def run_and_report(
    run: Callable[[bool], BenchResult], argv: Sequence[str] | None, description: str
) -> BenchResult:
    """The ``main`` of one benchmark module: parse ``--quick/--out``, run, write, print."""
    args = argument_parser(description).parse_args(argv)
    result = timed_run(run, args.quick)
    write_result(result, results_dir(args.out, args.quick))
    print(result.to_markdown())
    return result


def timed_run(run: Callable[[bool], BenchResult], quick: bool, device: str = "cpu") -> BenchResult:
    machine = machine_info(device)
    start = time.perf_counter()
    result = run(quick)
    result.seconds = round(time.perf_counter() - start, 1)
    result.machine = machine
    result.quick = quick
    return result


# --------------------------------------------------------------------------- test images


def photo(name: str = "astronaut.png") -> Any:
    """One of scikit-image's bundled photographs as uint8 (H, W, 3) RGB."""
    from importlib import resources

    from nie_core.data.images import read_image

    return read_image(str(resources.files("skimage.data") / name))
