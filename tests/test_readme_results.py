"""tools/readme_results: README results come from the files commands wrote, worded by rules."""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tools" / "readme_results"
spec = importlib.util.spec_from_file_location(
    "readme_results", PACKAGE / "__init__.py", submodule_search_locations=[str(PACKAGE)]
)
package = importlib.util.module_from_spec(spec)
sys.modules["readme_results"] = package  # its modules import each other, relative to it
spec.loader.exec_module(package)
cli = importlib.import_module("readme_results.__main__")
blocks = importlib.import_module("readme_results.blocks")
demo = importlib.import_module("readme_results.demo")
bench = importlib.import_module("readme_results.bench")
sources = importlib.import_module("readme_results.sources")
wording = importlib.import_module("readme_results.wording")

HYBRID_ROW = "| EDSR x2, hybrid (gamma 16) | "


def _copy(tmp_path: Path) -> Path:
    """The READMEs and every source of their blocks, copied into a fresh tree."""
    paths = set(cli.READMES)
    for block in blocks.BLOCKS.values():
        paths.update(block.sources)
    for path in paths:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    return tmp_path


def _block(text: str, name: str) -> str:
    return text.split(blocks.opening(name), 1)[1].split(blocks.closing(name))[0]


def _set_hybrid(root: Path, niqe: str, lr_consistency: str, nima: str) -> None:
    """Replace the hybrid row's NIQE, LR-consistency and NIMA cells in the demo summary."""
    path = root / demo.DEMO_SUMMARY
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(HYBRID_ROW):
            cells = line.strip("|").split("|")
            cells[5:8] = [f" {niqe} ", f" {lr_consistency} ", f" {nima} "]
            lines[i] = "|" + "|".join(cells) + "|"
    path.write_text("\n".join(lines) + "\n")


def _comparison(root: Path) -> str:
    return demo.render_demo_comparison(sources.Context(root, "README.md"))


def test_the_committed_readmes_are_up_to_date_with_their_sources() -> None:
    report = cli.run(ROOT, check=True)
    assert (report.stale, report.errors) == ([], [])
    for readme, names in {
        "README.md": {"demo-time", "demo-summary", "demo-comparison", "demo-gamma-sweep",
                      "zoo-table", "fault-tolerance", "bench-times", "latest", "latest-cuda"},
        "bench/README.md": {"bench-weights-psnr", "bench-avx2", "bench-targets", "latest",
                            "latest-cuda"},
    }.items():  # fmt: skip
        text = (ROOT / readme).read_text()
        assert all(blocks.opening(n) in text for n in names), readme


def test_an_edited_number_is_reported_and_regeneration_restores_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy(tmp_path)
    readme = root / "README.md"
    original = readme.read_text()
    summary, sweep = _block(original, "demo-summary"), _block(original, "demo-gamma-sweep")
    assert "| EDSR x2, L2 | 35.65 ± 7.21 |" in summary and "PSNR-Y 33.38, " in sweep
    edited = original.replace(summary, summary.replace("35.65 ± 7.21", "35.75 ± 7.21")).replace(
        sweep, sweep.replace("PSNR-Y 33.38, ", "PSNR-Y 33.54, ")
    )
    readme.write_text(edited)

    assert cli.main(["--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "stale: README.md: block 'demo-summary'" in err
    assert "stale: README.md: block 'demo-gamma-sweep'" in err
    assert "demo-comparison" not in err and readme.read_text() == edited  # --check writes nothing

    assert cli.main(["--root", str(root)]) == 0
    assert readme.read_text() == original
    assert cli.main(["--check", "--root", str(root)]) == 0


def test_a_missing_source_fails_the_check(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / demo.DEMO_SWEEP).unlink()
    report = cli.run(root, check=True)
    assert report.errors == [
        "README.md: block 'demo-gamma-sweep': source docs/results/demo_gamma_sweep.csv is missing"
    ]
    assert cli.main(["--root", str(root)]) == 1  # also when rewriting


def test_the_comparison_sentences_follow_the_data(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    committed = _comparison(root)
    assert "the hybrid model scores about the same as the L2 model" in committed
    assert "on PSNR-Y it scores about the same as the L2 model" in committed
    assert "0 rate the hybrid output better than the L2 output, 1 worse (artifacts)" in committed
    assert "NIQE about the same, LR-consistency about the same" in committed

    # Hybrid with a clearly better NIQE and LR-consistency, and a lower NIMA.
    _set_hybrid(root, "2.00 ± 0.42", "62.00 ± 3.34", "5.000 ± 0.196")
    flipped = _comparison(root)
    assert "the hybrid model scores clearly lower than the L2 model" in flipped
    assert "2 rate the hybrid output better than the L2 output, 1 worse" in flipped
    assert "NIQE clearly lower, LR-consistency clearly higher" in flipped
    assert "reproduces its input less well" not in flipped

    _set_hybrid(root, "2.00 ± 0.42", "45.00 ± 3.34", "5.610 ± 0.196")
    worse = _comparison(root)
    assert "1 rate the hybrid output better than the L2 output, 2 worse" in worse
    assert "reproduces its input less well" in worse


def test_the_wording_thresholds() -> None:
    words = wording.size_word
    assert [words(d) for d in (0.19, -0.19, 0.2, -0.49, 0.5, -0.79, 0.8, 3.0)] == [
        "about the same", "about the same", "slightly higher", "slightly lower", "higher",
        "lower", "clearly higher", "clearly higher",
    ]  # fmt: skip
    stat = sources.Stat
    assert wording.effect(stat(5.0, 1.0, 2), stat(4.0, 1.0, 2)) == 1.0
    assert wording.verdict(-0.3, lower_better=True) == "better"
    assert wording.verdict(-0.3, lower_better=False) == "worse"
    assert wording.verdict(0.1, lower_better=False) == "same"


def test_the_sweep_trend_follows_the_data(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    ctx = sources.Context(root, "README.md")
    assert "PSNR-Y falls at every step and NIMA rises at every step" in (
        demo.render_demo_sweep(ctx)
    )
    path = root / demo.DEMO_SWEEP
    header, *rows = path.read_text().splitlines()
    gamma = header.split(",").index("val_nima_mean")
    swapped = [r.split(",") for r in rows]
    swapped[1][gamma], swapped[2][gamma] = swapped[2][gamma], swapped[1][gamma]
    path.write_text("\n".join([header, *(",".join(r) for r in swapped)]) + "\n")
    assert "NIMA does not move one way at every step" in demo.render_demo_sweep(ctx)


def test_the_bench_verdicts_follow_the_data(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    ctx = sources.Context(root, "bench/README.md")
    committed = bench.render_bench_targets(ctx)
    assert "so this target cannot be met on this machine" in committed
    assert "Met narrowly (within 5%): hybrid step / L2 step" in committed

    path = root / bench.BENCH / "latest.json"
    run = json.loads(path.read_text())
    for result in run["results"]:
        if result["name"] == "serve":
            result["details"]["batching_gain_ceiling"] = 3.4
        for target in result["targets"]:
            if target["name"].startswith("hybrid step"):
                target["value"] = 1.0
    path.write_text(json.dumps(run))
    changed = bench.render_bench_targets(ctx)
    assert "3.40x, not short of the limit, so this machine does not rule the target out" in changed
    assert "hybrid step" not in changed
