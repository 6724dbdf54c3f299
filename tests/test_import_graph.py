"""tools/import_graph.py: the layers between NIE's packages, measured from the source."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)


def test_the_repository_has_no_cycle_and_no_upward_import() -> None:
    graph = import_graph.edges()
    assert ("ray_jobs", "nie_core") in graph  # the scan sees real imports
    assert ("nie_cli", "ray_jobs") in graph and ("nie_cli", "serve_app") in graph
    assert not [edge for edge in graph if edge[0] == "nie_core"], graph
    assert import_graph.cycles(graph) == []
    assert import_graph.violations(graph) == []


def test_cycles_and_upward_edges_are_reported(tmp_path: Path) -> None:
    for package, source in {
        "nie_core": "import torch\n",
        "ray_jobs": "from nie_core import x\ndef f():\n    from serve_app.app import y\n",
        "serve_app": "import ray_jobs.tracking\n",
        "bench": "import serve_app\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "m.py").write_text(source)
    graph = import_graph.edges(tmp_path)
    assert graph[("ray_jobs", "serve_app")] == ["ray_jobs/m.py:3"]  # imports in functions too
    assert import_graph.cycles(graph) == [("ray_jobs", "serve_app")]
    assert import_graph.violations(graph) == [("ray_jobs", "serve_app"), ("serve_app", "ray_jobs")]
