"""The results quoted in README.md and bench/README.md, regenerated from the files commands wrote.

    python tools/readme_results.py            # rewrite every results block in place
    python tools/readme_results.py --check    # exit 1 naming each stale block or missing source

A results block is a passage between two HTML comments that name it and its sources::

    <!-- results:demo-summary (from docs/results/demo_summary.md; python tools/readme_results.py) -->
    ...text rendered from the source files, never typed by hand...
    <!-- /results:demo-summary -->

The ``latest`` and ``latest-cuda`` blocks (``<!-- latest:start -->`` ... ``<!-- latest:end -->``)
are written by ``make bench`` (``bench/run_all.py``); this script renders them the same way from
the committed ``bench/results/latest.md``, so that a hand edit there is caught too.

Sentences that compare methods follow explicit rules, so that they never claim more than the
numbers show:

* **Difference in standard deviations.** ``d = (mean_a - mean_b) / sqrt((sd_a**2 + sd_b**2) / 2)``
  with the standard deviations over images that the tables print. ``|d| < 0.2``: "about the
  same"; ``< 0.5``: "slightly" higher/lower; ``< 0.8``: higher/lower; otherwise "clearly".
  A judge rates one output *better* only when ``d`` is at least 0.2 in its better direction
  (NIQE: lower is better).
* **Trends over a sweep**: a metric "rises" or "falls" only when every step goes that way.
* **Benchmark targets**: "cannot be met on this machine" only when the benchmark's own ceiling
  row is on the wrong side of the limit; "met narrowly" when within 5 % of the limit.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
READMES = ("README.md", "bench/README.md")
COMMAND = "python tools/readme_results.py"

DEMO_SUMMARY = "docs/results/demo_summary.md"
DEMO_SWEEP = "docs/results/demo_gamma_sweep.csv"
FAULTS = "docs/results/fault_tolerance.md"
ZOO_EDSR_CARD = "nie_core/model_zoo/edsr_baseline_x2_nie-photos.md"
ZOO_NIMA_CARD = "nie_core/model_zoo/nima_efficientnet_lite0_nie-quality.md"
ZOO_EDSR_VALID = "docs/results/zoo_edsr_valid_photos.md"
ZOO_EDSR_UNSEEN = "docs/results/zoo_edsr_unseen_skimage.md"
ZOO_NIMA_VALID = "docs/results/zoo_nima_ranking_valid_photos.md"
ZOO_NIMA_UNSEEN = "docs/results/zoo_nima_ranking_unseen_skimage.md"
BENCH = "bench/results"
BENCH_AVX2 = "bench/results/avx2"
BENCH_CUDA = "bench/results/cuda"

# Thresholds of the wording rules (see the module docstring).
SAME, SLIGHT, PLAIN = 0.2, 0.5, 0.8
NARROW_MARGIN = 0.05


class SourceError(Exception):
    """A source file is missing or does not have the shape a block needs."""


# ---------------------------------------------------------------------------------------------
# Reading the sources


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


def _read(root: Path, path: str) -> str:
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
    text = _read(root, path).strip()
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


def _row(table: EvalTable, path: str, test: Callable[[str], bool], what: str) -> str:
    names = [name for name in table.rows if test(name)]
    if len(names) != 1:
        raise SourceError(f"{path}: expected one {what} row, found {names}")
    return names[0]


def read_card(root: Path, path: str) -> dict[str, str]:
    """The ``- **Key:** value`` lines of a model card, its ``Note:`` line, and ``eval`` (the date
    and machine of its ``nie eval`` heading)."""
    text = _read(root, path)
    card = dict(re.findall(r"^- \*\*(.+?):\*\* (.+)$", text, re.M))
    card.update(re.findall(r"^(Note): (.+)$", text, re.M))
    heading = re.search(r"^## `nie eval` \((.+)\)$", text, re.M)
    if heading:
        card["eval"] = heading.group(1)
    return card


def read_ranking(root: Path, path: str) -> dict[str, Any]:
    """The one line ``nie eval`` writes for a NIMA: pairs ranked right, images, folder."""
    text = _read(root, path)
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
    report = _read(root, f"{folder}/latest.md")
    measured = next((ln for ln in report.splitlines() if ln.startswith("Measured ")), None)
    if measured is None:
        raise SourceError(f"{folder}/latest.md: no 'Measured ...' line")
    return measured, json.loads(_read(root, f"{folder}/latest.json"))


# ---------------------------------------------------------------------------------------------
# Wording rules


def effect(a: Stat, b: Stat) -> float:
    """Difference of the means over the pooled standard deviation (``d`` above)."""
    pooled = math.sqrt((a.sd**2 + b.sd**2) / 2)
    if pooled == 0:
        return 0.0 if a.mean == b.mean else math.copysign(math.inf, a.mean - b.mean)
    return (a.mean - b.mean) / pooled


def size_word(d: float) -> str:
    """'about the same', 'slightly higher', 'lower', 'clearly higher', ... for a given d."""
    size = abs(d)
    if size < SAME:
        return "about the same"
    prefix = "slightly " if size < SLIGHT else "" if size < PLAIN else "clearly "
    return prefix + ("higher" if d > 0 else "lower")


def verdict(d: float, lower_better: bool) -> str:
    """'better', 'worse' or 'same' for the first of the two compared outputs."""
    oriented = -d if lower_better else d
    return "better" if oriented >= SAME else "worse" if oriented <= -SAME else "same"


@dataclass(frozen=True)
class Metric:
    """How a column of the results tables is named in sentences."""

    name: str
    unit: str
    lower_better: bool = False


METRICS = {
    "PSNR-Y": Metric("PSNR-Y", " dB"),
    "SSIM-Y": Metric("SSIM-Y", ""),
    "NIQE": Metric("NIQE", "", lower_better=True),
    "LR-consistency": Metric("LR-consistency", " dB"),
    "NIMA": Metric("NIMA", ""),
}


def metric_of(column: str) -> Metric:
    """The metric a table column holds (its header starts with the metric's name)."""
    for prefix, metric in METRICS.items():
        if column.startswith(prefix):
            return metric
    raise SourceError(f"unknown column {column!r}")


def compare(a: Stat, b: Stat, metric: Metric) -> str:
    """``PSNR-Y slightly higher (+1.55 dB, d = +0.49)``: a against b, worded by the rules."""
    d = effect(a, b)
    note = "; lower is better" if metric.lower_better else ""
    diff = a.fmt(a.mean - b.mean, sign=True)
    return f"{metric.name} {size_word(d)} ({diff}{metric.unit}, d = {d:+.2f}{note})"


def trend(values: list[float]) -> str:
    """'rises at every step', 'falls at every step' or 'does not move one way'."""
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    if steps and all(s > 0 for s in steps):
        return "rises at every step"
    if steps and all(s < 0 for s in steps):
        return "falls at every step"
    return "does not move one way at every step"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------------------------------------
# Blocks


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


def _demo_rows(ctx: Context) -> tuple[EvalTable, str, str, str]:
    table = read_eval_table(ctx.root, DEMO_SUMMARY)
    bicubic = _row(table, DEMO_SUMMARY, lambda n: n.startswith("bicubic"), "bicubic")
    l2 = _row(table, DEMO_SUMMARY, lambda n: n.endswith(", L2"), "L2 model")
    hybrid = _row(table, DEMO_SUMMARY, lambda n: "hybrid" in n, "hybrid model")
    return table, bicubic, l2, hybrid


SETTINGS = {
    "NIE_FAST_PATH=off": "`NIE_FAST_PATH=off` trains in float32",
    "ONEDNN_MAX_CPU_ISA=AVX2": "`ONEDNN_MAX_CPU_ISA=AVX2` caps oneDNN's kernels to AVX2",
    "ATEN_CPU_CAPABILITY=avx2": "`ATEN_CPU_CAPABILITY=avx2` caps ATen's kernels to AVX2",
}


def render_demo_time(ctx: Context) -> str:
    """The demo's training time, with the date, machine and settings of its run."""
    table = read_eval_table(ctx.root, DEMO_SUMMARY)
    match = re.fullmatch(r"nie demo summary \((.+); training (\d+)m(\d+)s\)", table.title)
    if not match:
        raise SourceError(f"{DEMO_SUMMARY}: no '(..., training NmSSs)' title")
    machine, minutes, seconds = match.groups()
    settings = [text for key, text in SETTINGS.items() if key in machine.split(", ")]
    how = f" Settings in that line: {'; '.join(settings)}." if settings else ""
    if len(settings) == len(SETTINGS):
        how += " Together: float32 on AVX2 kernels, the path a CPU without native bf16 takes."
    return (
        f"Its training part took {int(minutes)} min {int(seconds)} s in the run recorded in "
        f"{ctx.link(DEMO_SUMMARY)} ({machine}).{how}"
    )


def render_demo_summary(ctx: Context) -> str:
    """The summary ``nie demo`` wrote, verbatim."""
    table = read_eval_table(ctx.root, DEMO_SUMMARY)
    return (
        f"From {ctx.link(DEMO_SUMMARY)} (written by `nie demo` as `runs/demo_summary.md`):\n\n"
        f"{table.text}"
    )


def _comparisons(table: EvalTable, a: str, b: str) -> list[str]:
    out = []
    for column in table.columns:
        x, y = table.rows[a][column], table.rows[b][column]
        if x is not None and y is not None:
            out.append(compare(x, y, metric_of(column)))
    return out


def _column(table: EvalTable, name: str) -> str:
    return next(c for c in table.columns if metric_of(c).name == name)


def render_demo_comparison(ctx: Context) -> str:
    """What the demo summary shows, worded by the rules of the module docstring."""
    table, bicubic, l2, hybrid = _demo_rows(ctx)
    lines = [
        f"What the numbers of {ctx.link(DEMO_SUMMARY)} show, worded by fixed rules "
        f"(`tools/readme_results.py`): d is the difference of two means over their pooled "
        f'standard deviation over the images; |d| < {SAME} reads "about the same", below '
        f'{SLIGHT} "slightly" higher or lower, below {PLAIN} higher or lower, above that '
        f'"clearly". Differences are those of the rounded means in the table. d compares '
        f"each difference with the spread between images, not image by image; with "
        f"{table.images} images and one training run per model, no difference is tested for "
        f"significance.",
        "",
    ]
    for a, b in ((l2, bicubic), (hybrid, bicubic), (hybrid, l2)):
        lines.append(f"- {a} against {b}: {_join(_comparisons(table, a, b))}.")
    stats = {
        m: (table.rows[hybrid][_column(table, m)], table.rows[l2][_column(table, m)])
        for m in ("NIMA", "PSNR-Y", "NIQE", "LR-consistency")
    }
    words = {m: size_word(effect(*ab)) for m, ab in stats.items()}

    def than(word: str) -> str:
        return "about the same as" if word == "about the same" else f"{word} than"

    lines += [
        "",
        f"On NIMA, the score the hybrid loss raises, the hybrid model scores {than(words['NIMA'])}"
        f" the L2 model; on PSNR-Y it scores {than(words['PSNR-Y'])} the L2 model.",
    ]
    judges = ("NIQE", "LR-consistency")
    better = [m for m in judges if verdict(effect(*stats[m]), METRICS[m].lower_better) == "better"]
    detail = f"NIQE {words['NIQE']}, LR-consistency {words['LR-consistency']}"
    if not better:
        said = "neither rates the hybrid output better than the L2 output"
    elif len(better) == len(judges):
        said = "both rate the hybrid output better than the L2 output"
    else:
        said = f"only {better[0]} rates the hybrid output better than the L2 output"
    lines[-1] += f" Of the two judges the hybrid loss never saw, {said} ({detail})."
    if verdict(effect(*stats["LR-consistency"]), False) == "worse":
        lines[-1] += (
            " A lower LR-consistency means that the hybrid output, downscaled again, reproduces"
            " its input less well."
        )
    return "\n".join(lines)


def render_demo_sweep(ctx: Context) -> str:
    """The gamma sweep's PSNR-Y and NIMA, and which way they move."""
    rows = csv.DictReader(_read(ctx.root, DEMO_SWEEP).splitlines())
    trials = sorted(rows, key=lambda r: float(r["loss.gamma"]))
    done = [t for t in trials if t["status"] == "FINISHED"]
    if len(done) < 2:
        raise SourceError(f"{DEMO_SWEEP}: fewer than two finished trials")
    gammas = [float(t["loss.gamma"]) for t in done]
    psnr = [float(t["val_psnr_y"]) for t in done]
    nima = [float(t["val_nima_mean"]) for t in done]
    epochs = sorted({t["epochs"] for t in done})
    g = _join([f"{x:g}" for x in gammas])
    text = (
        f"The gamma sweep ({ctx.link(DEMO_SWEEP)}, written by `nie demo`'s stage 5: one run of "
        f"{_join(epochs)} epoch(s) per gamma, no spread; the file records no date or machine) "
        f"measured PSNR-Y {_join([f'{p:.2f}' for p in psnr])} dB and NIMA "
        f"{_join([f'{n:.2f}' for n in nima])} at gamma {g}"
    )
    if len(done) < len(trials):
        text += f" ({len(trials) - len(done)} trial(s) did not finish)"
    text += f". As gamma grows, PSNR-Y {trend(psnr)} and NIMA {trend(nima)}."
    if gammas[0] == 0:
        text += (
            f" The smallest nonzero gamma swept, {gammas[1]:g}, changed NIMA by "
            f"{nima[1] - nima[0]:+.3f} and PSNR-Y by {psnr[1] - psnr[0]:+.2f} dB from gamma 0"
        )
        text += "." if 0.4 in gammas else "; the report's gamma 0.4 was not swept."
    return text


def _psnr_cell(ctx: Context, path: str, label: str) -> tuple[str, str]:
    table = read_eval_table(ctx.root, path)
    model = _row(table, path, lambda n: n.startswith("model"), "model")
    column = _column(table, "PSNR-Y")
    m, b = table.rows[model][column], table.rows["bicubic"][column]
    if m is None or b is None:
        raise SourceError(f"{path}: no PSNR-Y of the model and bicubic")
    cell = (
        f"PSNR-Y {m.fmt(m.mean)} ± {m.fmt(m.sd)} dB vs bicubic {b.fmt(b.mean)} ± {b.fmt(b.sd)} "
        f"({m.fmt(m.mean - b.mean, sign=True)} dB) on {table.images} {label} "
        f"({ctx.link(path, 'table')})"
    )
    return cell, f"{ctx.link(path)}: {table.title}"


def _ranking_cell(ctx: Context, path: str, label: str) -> str:
    r = read_ranking(ctx.root, path)
    return (
        f"{r['right']}/{r['pairs']} pairs ({r['percent']} %) on {r['images']} {label} "
        f"({ctx.link(path, 'result')})"
    )


def _card_cells(ctx: Context, path: str) -> tuple[str, str]:
    card = read_card(ctx.root, path)
    for key in ("File", "Steps", "Wall time"):
        if key not in card:
            raise SourceError(f"{path}: no '{key}' line")
    size = re.search(r"\((.+?)\)", card["File"])
    steps = re.fullmatch(r"(\d+) \((.+)\)", card["Steps"])
    if not size or not steps:
        raise SourceError(f"{path}: unexpected File or Steps line")
    trained = f"{int(steps.group(1)):,} steps ({steps.group(2)}), {card['Wall time']}"
    if "wall time" in card.get("Note", ""):
        trained += " (of part of the run: see the card's note)"
    return size.group(1), trained


def render_zoo_table(ctx: Context) -> str:
    """The model zoo table: sizes and steps from the cards, results from ``nie eval``."""
    edsr_size, edsr_trained = _card_cells(ctx, ZOO_EDSR_CARD)
    nima_size, nima_trained = _card_cells(ctx, ZOO_NIMA_CARD)
    valid, valid_line = _psnr_cell(ctx, ZOO_EDSR_VALID, "validation photographs")
    unseen, unseen_line = _psnr_cell(
        ctx, ZOO_EDSR_UNSEEN, "other scikit-image images never trained on"
    )
    nima_valid = _ranking_cell(ctx, ZOO_NIMA_VALID, "validation photographs")
    nima_unseen = _ranking_cell(ctx, ZOO_NIMA_UNSEEN, "other scikit-image images")
    nima_eval = read_card(ctx.root, ZOO_NIMA_CARD).get("eval", "no date")
    edsr = "`zoo:edsr_baseline-x2@nie-photos`"
    nima = "`zoo:nima@nie-quality`"
    rows = [
        "| model | file | trained on | result (from the committed `nie eval` output) |",
        "|---|---|---|---|",
        f"| {edsr} ({ctx.link(ZOO_EDSR_CARD, 'card')}) | {edsr_size} | the 15 training "
        f"photographs of `nie data photos`, L2 loss; {edsr_trained} | {valid}; {unseen} |",
        f"| {nima} ({ctx.link(ZOO_NIMA_CARD, 'card')}) | {nima_size} | synthetic ratings of "
        f"crops of the 15 training photographs, clean and degraded (`nie data ratings`); "
        f"{nima_trained} | ranks reference > x2 bicubic > x4 bicubic in {nima_valid} and in "
        f"{nima_unseen} |",
    ]
    return "\n".join(rows) + (
        f"\n\nDates and machines, from the first line of each table: {valid_line}; "
        f"{unseen_line}. The two ranking files record none; the card of {nima} dates its "
        f"ranking on the validation photographs ({nima_eval})."
    )


def render_faults(ctx: Context) -> str:
    """The node-loss and replica-loss figures of the committed fault-test run."""
    text = _read(ctx.root, FAULTS)
    title = re.search(r"^\*\*(.+)\*\*$", text, re.M)
    raw = dict(re.findall(r"^\[(node loss|replica loss)\] (\{.*\})$", text, re.M))
    if not title or len(raw) != 2:
        raise SourceError(f"{FAULTS}: no bold date line or no [node loss]/[replica loss] JSON")
    node, replica = json.loads(raw["node loss"]), json.loads(raw["replica loss"])
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(replica["status_codes"].items()))
    only_503 = set(replica["status_codes"]) <= {"200", "503"}
    after = replica["failed_sent_after_kill"]
    return (
        f"Measured in the run recorded in {ctx.link(FAULTS)} ({title.group(1)}):\n\n"
        f"- node loss: the job resumed from step {node['resumed_from_step']} (checkpoints "
        f"registered at the kill: {node['registered_checkpoint_steps_at_kill']}) and finished "
        f"{node['kill_to_job_done_s']} s after the kill, in {node['mlflow_runs']} MLflow run(s), "
        f"status {node['mlflow_status']};\n"
        f"- replica loss: {replica['clients']} clients sent {replica['requests_sent']} requests "
        f"in {replica['load_s']:g} s; {replica['requests_failed']} failed "
        f"(status codes {codes}; {'every failure a 503' if only_503 else 'not only 503s'}), "
        f"{replica['failed_in_flight_at_kill']} of them in flight at the kill, "
        f"{'none' if after == 0 else after} sent after it; the replacement replica was running "
        f"{replica['replica_back_after_kill_s']} s after the kill."
    )


def render_bench_times(ctx: Context) -> str:
    """The measured-on line (date, machine, total time) of each committed CPU run."""
    lines = ['Times of the committed full runs (each report\'s first line, with its "Total"):', ""]
    for folder, what in ((BENCH, "this machine as it is"), (BENCH_AVX2, "capped to AVX2")):
        measured, _ = read_bench(ctx.root, folder)
        lines.append(f"- {what}, {ctx.link(f'{folder}/latest.md')}: {measured}")
    return "\n".join(lines)


def _targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for r in run["results"] for t in r.get("targets", [])]


def _value(target: dict[str, Any]) -> str:
    v = target["value"]
    return f"{v:.3g}{target['unit']} (limit {target['op']} {target['limit']:g}{target['unit']})"


def targets_summary(run: dict[str, Any]) -> list[str]:
    """One bullet each for the met, not met and not applicable targets of a run."""
    groups: dict[str, list[str]] = {"met": [], "not met": [], "not applicable": []}
    for t in _targets(run):
        if t.get("not_applicable"):
            groups["not applicable"].append(t["name"])
        else:
            groups["met" if t["met"] else "not met"].append(f"{t['name']} {_value(t)}")
    return [f"- {k}: {'; '.join(v)}" for k, v in groups.items() if v]


def render_bench_avx2(ctx: Context) -> str:
    """The AVX2-capped run: its line, the time of each benchmark and its targets."""
    measured, run = read_bench(ctx.root, BENCH_AVX2)
    times = {r["name"]: r.get("seconds", 0.0) for r in run["results"]}
    longest = max(times, key=times.__getitem__)
    per = ", ".join(f"{name} {s:.0f} s" for name, s in times.items())
    head = (
        f"From {ctx.link(f'{BENCH_AVX2}/latest.md')} and `latest.json`: {measured} Per benchmark: "
        f"{per} ({longest} the longest). Its targets:"
    )
    return "\n".join([head, "", *targets_summary(run)])


def render_bench_weights_psnr(ctx: Context) -> str:
    """The PSNR the inference benchmark's bilinear-like weights reach, per model."""
    measured, run = read_bench(ctx.root, BENCH)
    inference = next((r for r in run["results"] if r["name"] == "inference"), None)
    if inference is None:
        raise SourceError(f"{BENCH}/latest.json: no inference result")
    models = inference["details"]["models"]
    parts = [
        f"{name} {m['psnr_fp32_db']:.2f} dB ({m['lr_side']}x{m['lr_side']} input)"
        for name, m in models.items()
    ]
    when = measured.split(" on: ")[0].removeprefix("Measured ")
    return (
        f"In the run of {when} ({ctx.link(f'{BENCH}/latest.json')}) their float32 outputs "
        f"scored {_join(parts)} PSNR against the photo."
    )


def _evidence(result: dict[str, Any], target: dict[str, Any]) -> str:
    """The benchmark's own figures that bound a target it missed."""
    details, name = result["details"], result["name"]
    if name == "inference":
        shares = [f"{m} {d['mfu_fast_vs_bf16_peak']:.0%}" for m, d in details["models"].items()]
        return f"Fast path against the bf16 matmul peak, per model: {', '.join(shares)}."
    if name == "training" and "speedup_ceiling_at_bf16_peak" in details:
        ceiling = details["speedup_ceiling_at_bf16_peak"]
        return _ceiling(ceiling, target, "a step at 100 % of the bf16 peak")
    if name == "serve" and "score" in target["name"]:
        cpu = details["cpu_seconds_per_image"]["http_unbatched"]
        model = details["model_images_per_s_one_thread"]
        return (
            f"Per image, the unbatched HTTP path cost the machine {cpu['machine'] * 1e3:.0f} ms "
            f"of CPU (clients {cpu['clients'] * 1e3:.0f} ms, Scorer replica "
            f"{cpu['scorer'] * 1e3:.0f} ms); NIMA alone on one thread ran {model['1']:.1f} "
            f"images/s at batch 1 and {model['16']:.1f} at batch 16. "
            + _ceiling(
                details["batching_gain_ceiling"],
                target,
                "batching that left the Scorer only NIMA's batch-16 time",
            )
            + f" Without the clients' CPU: {details['batching_gain_ceiling_server_only']:.2f}x."
        )
    if name == "serve":
        ratio = details["replica_over_in_process_model_median"]
        where = "no slower than" if ratio <= 1 else "slower than"
        return (
            f"The model step inside the replica was {where} in process (medians {ratio:.3f}x); "
            f"the rest of a call took {details['served_other_ms_median']:.1f} ms through Serve "
            f"against {details['in_process_other_ms_median']:.1f} ms in process (medians)."
        )
    return ""


def _ceiling(ceiling: float, target: dict[str, Any], what: str) -> str:
    below = ceiling < target["limit"] if target["op"] == ">=" else ceiling > target["limit"]
    verdict_ = (
        "short of the limit, so this target cannot be met on this machine"
        if below
        else "not short of the limit, so this machine does not rule the target out"
    )
    return f"Ceiling ({what}): {ceiling:.2f}x, {verdict_}."


def render_bench_targets(ctx: Context) -> str:
    """Every target of the last CPU run that was missed or met narrowly, with its evidence."""
    measured, run = read_bench(ctx.root, BENCH)
    counted = [t for t in _targets(run) if not t.get("not_applicable")]
    met = sum(t["met"] for t in counted)
    source = ctx.link(f"{BENCH}/latest.json")
    lines = [f"{met} of {len(counted)} targets met in the run of {source} ({measured}):", ""]
    for result in run["results"]:
        notes = [n for n in result.get("notes", []) if n.startswith("Not settled")]
        for t in result.get("targets", []):
            if t.get("not_applicable"):
                continue
            margin = abs(t["value"] - t["limit"]) / abs(t["limit"])
            if t["met"] and margin >= NARROW_MARGIN:
                continue
            head = "Not met" if not t["met"] else f"Met narrowly (within {NARROW_MARGIN:.0%})"
            text = f"- **{head}: {t['name']}, {_value(t)}.**"
            evidence = _evidence(result, t) if not t["met"] else ""
            text += f" {evidence}" if evidence else ""
            text += "".join(f" The run notes: {n}" for n in notes)
            lines.append(text)
    if len(lines) == 2:
        lines.append("- every target met with more than 5 % to spare.")
    return "\n".join(lines)


def _render_bench_latest(ctx: Context, folder: str) -> str:
    """What ``make bench`` writes between the ``latest`` markers, from the committed report."""
    report = _read(ctx.root, f"{folder}/latest.md")
    head, _, rest = report.partition("\n## ")
    targets = rest.split("\n## ", 1)[0].strip()
    if not targets.startswith("Targets"):
        raise SourceError(f"{folder}/latest.md: no '## Targets' section")
    body = head.split("\n", 1)[1].strip() + "\n\nTargets:" + targets.removeprefix("Targets")
    table = ctx.rel(f"{folder}/latest.md")
    return f"{body}\n\nFull tables: [{table}]({table})."


def render_bench_latest(ctx: Context) -> str:
    """The ``latest`` block of ``make bench`` (CPU)."""
    return _render_bench_latest(ctx, BENCH)


def render_bench_latest_cuda(ctx: Context) -> str:
    """The ``latest-cuda`` block: the committed CUDA run, or a line saying there is none."""
    if (ctx.root / BENCH_CUDA / "latest.md").is_file():
        return _render_bench_latest(ctx, BENCH_CUDA)
    return (
        f"Not measured: no `--device cuda` run is committed (no {ctx.rel(BENCH_CUDA)}/latest.md)."
    )


@dataclass(frozen=True)
class Block:
    """A results block: the files it is rendered from and how."""

    sources: tuple[str, ...]
    render: Callable[[Context], str]
    bench_markers: bool = False  # ``<!-- NAME:start -->`` markers shared with bench/run_all.py


BLOCKS: dict[str, Block] = {
    "demo-time": Block((DEMO_SUMMARY,), render_demo_time),
    "demo-summary": Block((DEMO_SUMMARY,), render_demo_summary),
    "demo-comparison": Block((DEMO_SUMMARY,), render_demo_comparison),
    "demo-gamma-sweep": Block((DEMO_SWEEP,), render_demo_sweep),
    "zoo-table": Block(
        (
            ZOO_EDSR_CARD,
            ZOO_NIMA_CARD,
            ZOO_EDSR_VALID,
            ZOO_EDSR_UNSEEN,
            ZOO_NIMA_VALID,
            ZOO_NIMA_UNSEEN,
        ),
        render_zoo_table,
    ),
    "fault-tolerance": Block((FAULTS,), render_faults),
    "bench-times": Block((f"{BENCH}/latest.md", f"{BENCH_AVX2}/latest.md"), render_bench_times),
    "bench-avx2": Block(
        (f"{BENCH_AVX2}/latest.md", f"{BENCH_AVX2}/latest.json"), render_bench_avx2
    ),
    "bench-weights-psnr": Block(
        (f"{BENCH}/latest.md", f"{BENCH}/latest.json"), render_bench_weights_psnr
    ),
    "bench-targets": Block((f"{BENCH}/latest.md", f"{BENCH}/latest.json"), render_bench_targets),
    "latest": Block((f"{BENCH}/latest.md",), render_bench_latest, bench_markers=True),
    "latest-cuda": Block((), render_bench_latest_cuda, bench_markers=True),
}


# ---------------------------------------------------------------------------------------------
# Finding and rewriting blocks

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


def run(root: Path = ROOT, check: bool = False) -> Report:
    """Regenerate (with ``check``: only compare) the blocks of every README."""
    report = Report([], [])
    for readme in READMES:
        path = root / readme
        if not path.is_file():
            report.errors.append(f"{readme} is missing")
            continue
        text = path.read_text()
        new_text = regenerate(text, Context(root, readme), report)
        if not check and new_text != text:
            path.write_text(new_text)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 naming each stale block")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    args = parser.parse_args(argv)
    report = run(args.root, check=args.check)
    for line in report.stale:
        print(f"{'stale' if args.check else 'rewritten'}: {line}", file=sys.stderr)
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    return 1 if report.errors or (args.check and report.stale) else 0


if __name__ == "__main__":
    sys.exit(main())
