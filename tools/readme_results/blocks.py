"""The results blocks: which files each is rendered from and by what, their marker comments, and
finding and replacing them in a README's text."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import bench, demo, faults, zoo
from .bench import BENCH, BENCH_AVX2
from .sources import Context, SourceError

COMMAND = "python -m tools.readme_results"


@dataclass(frozen=True)
class Block:
    """A results block: the files it is rendered from and how."""

    sources: tuple[str, ...]
    render: Callable[[Context], str]
    bench_markers: bool = False  # ``<!-- NAME:start -->`` markers shared with bench/run_all.py


_MD, _JSON = "latest.md", "latest.json"
_CPU_RUN = (f"{BENCH}/{_MD}", f"{BENCH}/{_JSON}")

BLOCKS: dict[str, Block] = {
    "demo-time": Block((demo.DEMO_SUMMARY,), demo.render_demo_time),
    "demo-summary": Block((demo.DEMO_SUMMARY,), demo.render_demo_summary),
    "demo-comparison": Block((demo.DEMO_SUMMARY,), demo.render_demo_comparison),
    "demo-gamma-sweep": Block((demo.DEMO_SWEEP,), demo.render_demo_sweep),
    "hybrid-ablation": Block((demo.HYBRID_ABLATION,), demo.render_hybrid_ablation),
    "zoo-table": Block(zoo.ZOO_SOURCES, zoo.render_zoo_table),
    "fault-tolerance": Block((faults.FAULTS,), faults.render_faults),
    "bench-times": Block((f"{BENCH}/{_MD}", f"{BENCH_AVX2}/{_MD}"), bench.render_bench_times),
    "bench-avx2": Block((f"{BENCH_AVX2}/{_MD}", f"{BENCH_AVX2}/{_JSON}"), bench.render_bench_avx2),
    "bench-weights-psnr": Block(_CPU_RUN, bench.render_bench_weights_psnr),
    "bench-targets": Block(_CPU_RUN, bench.render_bench_targets),
    "latest": Block((f"{BENCH}/{_MD}",), bench.render_bench_latest, bench_markers=True),
    "latest-cuda": Block((), bench.render_bench_latest_cuda, bench_markers=True),
}


_BLOCK = re.compile(
    r"^<!-- results:(?P<name>[a-z0-9-]+) \(from [^\n]*\) -->\n(?:(?P<body>.*?)\n)?"
    r"<!-- /results:(?P=name) -->$"
    r"|^<!-- (?P<bench>latest(?:-[a-z]+)?):start -->\n(?:(?P<bbody>.*?)\n)?"
    r"<!-- (?P=bench):end -->$",
    re.M | re.S,
)


def opening(name: str) -> str:
    """The first marker line of a block, naming its sources."""
    block = BLOCKS[name]
    if block.bench_markers:
        return f"<!-- {name}:start -->"
    return f"<!-- results:{name} (from {', '.join(block.sources)}; {COMMAND}) -->"


def closing(name: str) -> str:
    """The last marker line of a block."""
    return f"<!-- {name}:end -->" if BLOCKS[name].bench_markers else f"<!-- /results:{name} -->"


@dataclass
class Report:
    """What a pass over the READMEs found: blocks whose text differed, and errors (unknown
    blocks, missing sources, unmatched markers), whose blocks keep their old text."""

    stale: list[str]
    errors: list[str]


def regenerate(text: str, ctx: Context, report: Report) -> str:
    """``text`` with every block rendered afresh; what differed or failed goes to ``report``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name") or match.group("bench")
        if name not in BLOCKS:
            report.errors.append(f"{ctx.readme}: unknown results block {name!r}")
            return match.group(0)
        try:
            body = BLOCKS[name].render(ctx)
        except SourceError as error:
            report.errors.append(f"{ctx.readme}: block {name!r}: {error}")
            return match.group(0)
        new = f"{opening(name)}\n{body}\n{closing(name)}"
        if new != match.group(0):
            sources = ", ".join(BLOCKS[name].sources) or "none"
            report.stale.append(f"{ctx.readme}: block {name!r} (sources: {sources})")
        return new

    new_text = _BLOCK.sub(replace, text)
    opened = re.findall(r"^<!-- results:([a-z0-9-]+) ", new_text, re.M)
    closed = re.findall(r"^<!-- /results:([a-z0-9-]+) -->$", new_text, re.M)
    for name in sorted(set(opened) ^ set(closed)):
        report.errors.append(f"{ctx.readme}: block {name!r} has no matching start or end marker")
    return new_text
