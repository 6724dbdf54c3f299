"""Reading the files the results blocks are rendered from, and where a block is rendered.

Each reader returns the figures a block needs, or raises :class:`SourceError` naming the file
that is missing or has an unexpected shape, so that a block is never rendered from a guess.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SourceError(Exception):
    """A source file is missing or does not have the shape a block needs."""


@dataclass(frozen=True)
class Context:
    """Where the block is rendered: links are relative to the README's folder."""

    root: Path
    readme: str

    def rel(self, path: str) -> str:
        """``path`` (relative to the repository root) as seen from the README."""
        base = (self.root / self.readme).parent
        return Path(os.path.relpath(self.root / path, base)).as_posix()

    def link(self, path: str, label: str | None = None) -> str:
        """A markdown link to ``path``, labelled with its path unless told otherwise."""
        return f"[{label or self.rel(path)}]({self.rel(path)})"


@dataclass(frozen=True)
class Stat:
    """A ``mean ± sd`` cell, with the number of decimals it was printed with."""

    mean: float
    sd: float
    places: int

    def fmt(self, value: float, sign: bool = False) -> str:
        """``value`` with this cell's decimals (and a sign when asked)."""
        return f"{value:{'+' if sign else ''}.{self.places}f}"


@dataclass(frozen=True)
class EvalTable:
    """A table written by ``nie eval`` or ``nie demo``: its title line, rows and footer."""

    title: str  # the bold first line, without the asterisks: command, date, machine
    columns: list[str]
    rows: dict[str, dict[str, Stat | None]]
    images: int
    text: str  # the whole file, stripped


def read(root: Path, path: str) -> str:
    """The text of ``path`` (relative to ``root``)."""
    file = root / path
    if not file.is_file():
        raise SourceError(f"source {path} is missing")
    return file.read_text()


def _table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of the first markdown table in ``lines`` (header first, no separator row)."""
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append(cells)
        elif rows:
            break
    return rows


def _stat(cell: str) -> Stat | None:
    match = re.fullmatch(r"(-?[\d.]+) ± ([\d.]+)", cell)
    if not match:
        return None
    places = len(match.group(1).partition(".")[2])
    return Stat(float(match.group(1)), float(match.group(2)), places)


def read_eval_table(root: Path, path: str) -> EvalTable:
    """Parse a ``nie eval`` / ``nie demo`` results table."""
    text = read(root, path).strip()
    lines = text.splitlines()
    title = lines[0].strip().strip("*")
    table = _table_rows(lines)
    if not table:
        raise SourceError(f"{path}: no table")
    columns = table[0][1:]
    rows = {r[0]: dict(zip(columns, map(_stat, r[1:]), strict=True)) for r in table[1:]}
    images = re.search(r"^(\d+) image\(s\)", text, re.M)
    if not images:
        raise SourceError(f"{path}: no 'N image(s)' line")
    return EvalTable(title, columns, rows, int(images.group(1)), text)


def row(table: EvalTable, path: str, test: Callable[[str], bool], what: str) -> str:
    """The name of the one row of ``table`` that passes ``test``."""
    names = [name for name in table.rows if test(name)]
    if len(names) != 1:
        raise SourceError(f"{path}: expected one {what} row, found {names}")
    return names[0]


def read_card(root: Path, path: str) -> dict[str, str]:
    """The ``- **Key:** value`` lines of a model card, its ``Note:`` line, and ``eval`` (the date
    and machine of its ``nie eval`` heading)."""
    text = read(root, path)
    card = dict(re.findall(r"^- \*\*(.+?):\*\* (.+)$", text, re.M))
    card.update(re.findall(r"^(Note): (.+)$", text, re.M))
    heading = re.search(r"^## `nie eval` \((.+)\)$", text, re.M)
    if heading:
        card["eval"] = heading.group(1)
    return card


def read_ranking(root: Path, path: str) -> dict[str, Any]:
    """The one line ``nie eval`` writes for a NIMA: pairs ranked right, images, folder."""
    text = read(root, path)
    match = re.search(r"in (\d+)/(\d+) pairs \(([\d.]+) %\) on (\d+) image\(s\) of (\S+)", text)
    if not match:
        raise SourceError(f"{path}: no 'in A/B pairs (P %) on N image(s)' line")
    right, pairs, percent, images, folder = match.groups()
    return {
        "right": int(right),
        "pairs": int(pairs),
        "percent": percent,
        "images": int(images),
        "folder": folder,
    }


def read_bench(root: Path, folder: str) -> tuple[str, dict[str, Any]]:
    """The ``Measured ...`` line of ``latest.md`` and the parsed ``latest.json`` of a run."""
    report = read(root, f"{folder}/latest.md")
    measured = next((ln for ln in report.splitlines() if ln.startswith("Measured ")), None)
    if measured is None:
        raise SourceError(f"{folder}/latest.md: no 'Measured ...' line")
    return measured, json.loads(read(root, f"{folder}/latest.json"))
