"""The import graph between NIE's top-level packages, read from the source (no imports run).

    python tools/import_graph.py            # edges with their files and lines; exit 1 on a
                                            # cycle or an edge that points up the layers

Layers, lowest first: ``nie_core`` (pure PyTorch) <- ``nie_tracking`` (MLflow) <- ``ray_jobs``
(Ray Train/Tune), ``serve_app`` (Ray Serve) <- ``nie_cli`` (the ``nie`` command). ``bench`` may
import any of them; nothing imports ``bench`` or ``tests``. Every ``import`` is counted, also
those inside functions (they still tie the packages together).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nie_core", "nie_tracking", "ray_jobs", "serve_app", "nie_cli", "bench")
# What each package may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "nie_core": set(),
    "nie_tracking": {"nie_core"},
    "ray_jobs": {"nie_core", "nie_tracking"},
    "serve_app": {"nie_core", "nie_tracking"},
    "nie_cli": {"nie_core", "nie_tracking", "ray_jobs", "serve_app"},
    "bench": {"nie_core", "nie_tracking", "ray_jobs", "serve_app", "nie_cli"},
}


def edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(importer, imported) -> ["file:line", ...] for imports between different packages."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    target = name.split(".")[0]
                    if target in PACKAGES and target != package:
                        where = f"{path.relative_to(root)}:{node.lineno}"
                        found[(package, target)].append(where)
    return dict(found)


def cycles(graph: dict[tuple[str, str], list[str]]) -> list[tuple[str, str]]:
    """Pairs of packages that import each other (directly)."""
    return sorted((a, b) for (a, b) in graph if a < b and (b, a) in graph)


def violations(graph: dict[tuple[str, str], list[str]]) -> list[tuple[str, str]]:
    """Edges that point up or sideways in the layers."""
    return sorted((a, b) for (a, b) in graph if b not in ALLOWED[a])


def main() -> int:
    graph = edges()
    for (a, b), places in sorted(graph.items()):
        print(f"{a} -> {b}  ({len(places)}: {', '.join(places)})")
    bad = violations(graph)
    for a, b in cycles(graph):
        print(f"cycle: {a} <-> {b}")
    for a, b in bad:
        print(f"not allowed: {a} -> {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
