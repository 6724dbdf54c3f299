"""Run every benchmark (``make bench``) and write ``bench/results/latest.{json,md}``.

Each benchmark runs in its own Python process (``python -m bench.<name>``), so that one's
threads, allocations or Ray instance cannot affect the next; each writes its own
``<name>.json`` / ``<name>.md``, and this script gathers them into one report. A benchmark that
fails is reported as failed and the others still run; the exit status is then 1.

    python -m bench.run_all            # everything (about 15 minutes on 2 cores)
    python -m bench.run_all --quick    # smaller sizes, fewer rounds (a smoke run; results
                                       # go to $TMPDIR/nie-bench-quick, not bench/results)
    python -m bench.run_all --only inference,training
    python -m bench.run_all --device cuda   # the GPU benchmark (bench/gpu.py) instead; fails
                                            # with one line where CUDA is absent

On a CPU without native bf16 (AVX2 only, or ``ONEDNN_MAX_CPU_ISA=AVX2``) the bf16 variants are
skipped and their targets reported as not applicable (see bench/machine.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.machine import NO_CUDA, device_line, machine_info, machine_line
from bench.report import RESULTS_DIR, markdown_table, results_dir, target_cells

BENCHMARKS = ("inference", "training", "quality_parity", "memory", "data", "serve")
CUDA_BENCHMARKS = ("gpu",)
CUDA_RESULTS_DIR = RESULTS_DIR / "cuda"


def _run_one(name: str, quick: bool, out_dir: Path, device: str = "cpu") -> dict[str, Any]:
    command = [sys.executable, "-m", f"bench.{name}", "--out", str(out_dir)]
    if quick:
        command.append("--quick")
    if name in CUDA_BENCHMARKS:
        command += ["--device", device]
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        print(completed.stderr[-4000:], file=sys.stderr)
        return {"name": name, "failed": True, "seconds": round(seconds, 1),
                "error": completed.stderr.strip().splitlines()[-1:] or ["(no output)"]}  # fmt: skip
    print(f"[bench] {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return json.loads((out_dir / f"{name}.json").read_text())


def summary_markdown(
    results: list[dict[str, Any]], machine: dict[str, Any], quick: bool, out_dir: Path
) -> str:
    """The combined report: machine, every target, then each benchmark's own section."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    total = sum(r.get("seconds", 0.0) for r in results)
    lines = [
        "# NIE benchmarks" + (" (quick run)" if quick else ""),
        "",
        f"Measured {when} on: {machine_line(machine)}. Total {total / 60:.1f} min.",
        device_line(machine),
        "",
        "## Targets",
        "",
    ]
    target_rows = []
    for result in results:
        if result.get("failed"):
            target_rows.append(
                [result["name"], "FAILED: " + " ".join(result["error"]), "", "**no**"]
            )
            continue
        target_rows += [[t["name"], *target_cells(t)] for t in result["targets"]]
    lines += markdown_table(["target", "measured", "limit", "met"], target_rows)
    for result in results:
        if result.get("failed"):
            continue
        section = (out_dir / f"{result['name']}.md").read_text().splitlines()
        section[0] = "#" + section[0]  # the benchmark's title becomes a level-2 heading
        lines += ["", *section]
    return "\n".join(lines).rstrip() + "\n"


README = Path(__file__).resolve().parent / "README.md"
PROJECT_README = Path(__file__).resolve().parent.parent / "README.md"
_LATEST_START, _LATEST_END = "<!-- latest:start -->", "<!-- latest:end -->"


def update_readme(
    report: str, readme: Path = README, full_tables: str = "results/latest.md", marker: str = ""
) -> bool:
    """Replace the part of ``readme`` between the ``latest`` markers with the report's heading
    line and targets table (everything before the first benchmark section) and a link to
    ``full_tables`` (relative to ``readme``). Returns False when the markers are missing."""
    start, end = _LATEST_START, _LATEST_END
    if marker:  # e.g. "cuda": <!-- latest-cuda:start --> ... <!-- latest-cuda:end -->
        start, end = (m.replace("latest", f"latest-{marker}") for m in (start, end))
    text = readme.read_text()
    if start not in text or end not in text:
        return False
    summary = report.split("\n## ", 2)
    body = summary[0].split("\n", 1)[1].strip() + "\n\n## " + summary[1].strip()
    body = body.replace("## Targets", "Targets:", 1)
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    details = f"Full tables: [{full_tables}]({full_tables})."
    readme.write_text(f"{before}{start}\n{body}\n\n{details}\n{end}{after}")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, few rounds")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {BENCHMARKS}")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help=f"cpu: {BENCHMARKS}; cuda: {CUDA_BENCHMARKS} (results in {CUDA_RESULTS_DIR.name}/)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    available = CUDA_BENCHMARKS if args.device == "cuda" else BENCHMARKS
    names = [n.strip() for n in (args.only or ",".join(available)).split(",") if n.strip()]
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {unknown} for --device {args.device}; choose from {available}"
        )

    machine = machine_info(args.device)
    committed = CUDA_RESULTS_DIR if args.device == "cuda" else RESULTS_DIR
    out_dir = args.out if args.out or args.quick else committed
    out_dir = results_dir(out_dir, args.quick)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [_run_one(name, args.quick, out_dir, args.device) for name in names]
    report = summary_markdown(results, machine, args.quick, out_dir)
    (out_dir / "latest.md").write_text(report)
    (out_dir / "latest.json").write_text(
        json.dumps({"machine": machine, "quick": args.quick, "results": results}, indent=2) + "\n"
    )
    if out_dir == committed and set(names) == set(available) and not args.quick:
        marker = "cuda" if args.device == "cuda" else ""
        tables = "results/cuda/latest.md" if marker else "results/latest.md"
        update_readme(report, README, tables, marker)
        update_readme(report, PROJECT_README, f"bench/{tables}", marker)
    print(report)
    return 1 if any(r.get("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
