"""Benchmark results: targets, tables, and the JSON/Markdown files each benchmark writes and the
folder they go to."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUICK_RESULTS_DIR = Path(tempfile.gettempdir()) / "nie-bench-quick"


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: ``value <op> limit``."""

    name: str
    value: float | None
    limit: float
    op: Literal["<=", ">="]
    unit: str = ""
    # Why the target does not apply on this machine (e.g. it needs native bf16); then ``met`` is
    # None and the tables say so instead of "no".
    not_applicable: str = ""

    @property
    def met(self) -> bool | None:
        if self.not_applicable or self.value is None:
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    @classmethod
    def skipped(cls, name: str, limit: float, op: Literal["<=", ">="], why: str, unit: str = ""):
        """A target that could not be measured here, with the reason."""
        return cls(name, None, limit, op, unit, not_applicable=why)


def target_cells(t: Mapping[str, Any]) -> list[str]:
    """[measured, limit, met] cells of a target (from :meth:`BenchResult.to_json`)."""
    unit = t.get("unit", "")
    limit = f"{t['op']} {t['limit']:g}{unit}"
    if t.get("not_applicable") or t.get("value") is None:
        return ["-", limit, t.get("not_applicable") or "not measured"]
    return [f"{format_number(t['value'])}{unit}", limit, "yes" if t["met"] else "**no**"]


@dataclass
class BenchResult:
    """A benchmark's table, its targets and the raw numbers behind them."""

    name: str
    title: str
    headers: list[str]
    rows: list[list[Any]]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    quick: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = [{**asdict(t), "met": t.met} for t in self.targets]
        return data

    def to_markdown(self, heading_level: int = 2) -> str:
        lines = [f"{'#' * heading_level} {self.title}", ""]
        lines += markdown_table(self.headers, self.rows)
        if self.targets:
            lines += [""]
            lines += markdown_table(
                ["target", "measured", "limit", "met"],
                [[t["name"], *target_cells(t)] for t in self.to_json()["targets"]],
            )
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude == 0 or 0.01 <= magnitude < 10:
        return f"{value:.3g}" if magnitude >= 1 else f"{value:.3f}"
    if magnitude < 0.01:
        return f"{value:.2e}"
    return f"{value:,.1f}" if magnitude < 1000 else f"{value:,.0f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table; numbers go through :func:`format_number`, ``|`` in cells is escaped."""

    def cell(value: Any) -> str:
        return format_number(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return lines


def results_dir(out: Path | None, quick: bool) -> Path:
    """Where results go: ``out`` if given, else the committed folder (a quick run's results
    go to a temporary folder instead, so they never replace the committed ones)."""
    if out is not None:
        return out
    return QUICK_RESULTS_DIR if quick else RESULTS_DIR


def write_result(result: BenchResult, out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` and ``<name>.md``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{result.name}.json"
    md_path = out_dir / f"{result.name}.md"
    json_path.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    md_path.write_text(result.to_markdown(heading_level=1))
    return json_path, md_path
