"""The command line of one benchmark module: ``--quick`` and ``--out``, the run timed and
stamped with the machine it ran on, its result written and printed."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.machine import machine_info
from bench.report import QUICK_RESULTS_DIR, RESULTS_DIR, BenchResult, results_dir, write_result


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
    """``run(quick)``, with the seconds it took and the machine (of ``device``) it ran on."""
    machine = machine_info(device)
    start = time.perf_counter()
    result = run(quick)
    result.seconds = round(time.perf_counter() - start, 1)
    result.machine = machine
    result.quick = quick
    return result
