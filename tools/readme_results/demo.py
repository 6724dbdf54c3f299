"""The blocks rendered from ``nie demo``'s results: its training time, its summary table verbatim,
the comparison of its three outputs in words, and its gamma sweep."""

from __future__ import annotations

import csv
import re

from .sources import Context, EvalTable, SourceError, read, read_eval_table, row
from .wording import (
    METRICS,
    PLAIN,
    SAME,
    SLIGHT,
    column_of,
    compare,
    effect,
    join,
    metric_of,
    size_word,
    trend,
    verdict,
)

DEMO_SUMMARY = "docs/results/demo_summary.md"
HYBRID_ABLATION = "docs/results/hybrid_ablation.md"
DEMO_SWEEP = "docs/results/demo_gamma_sweep.csv"


def _demo_rows(ctx: Context) -> tuple[EvalTable, str, str, str]:
    table = read_eval_table(ctx.root, DEMO_SUMMARY)
    bicubic = row(table, DEMO_SUMMARY, lambda n: n.startswith("bicubic"), "bicubic")
    l2 = row(table, DEMO_SUMMARY, lambda n: n.endswith(", L2"), "L2 model")
    hybrid = row(table, DEMO_SUMMARY, lambda n: "hybrid" in n, "hybrid model")
    return table, bicubic, l2, hybrid


SETTINGS = {
    "NIE_FAST_PATH=off": "`NIE_FAST_PATH=off` trains in float32",
    "ONEDNN_MAX_CPU_ISA=AVX2": "`ONEDNN_MAX_CPU_ISA=AVX2` caps oneDNN's kernels to AVX2",
    "ATEN_CPU_CAPABILITY=avx2": "`ATEN_CPU_CAPABILITY=avx2` caps ATen's kernels to AVX2",
}


def render_demo_time(ctx: Context) -> str:
    """The demo's training time, with the date, machine and settings of its run."""
    table = read_eval_table(ctx.root, DEMO_SUMMARY)
    match = re.fullmatch(
        r"nie demo summary \((.+); training (\d+)m(\d+)s(?:, all stages)?\)", table.title
    )
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


def render_hybrid_ablation(ctx: Context) -> str:
    """The hybrid-loss ablation that ``python -m tools.hybrid_ablation`` wrote, verbatim."""
    text = read(ctx.root, HYBRID_ABLATION).strip()
    return (
        f"From {ctx.link(HYBRID_ABLATION)} (written by `python -m tools.hybrid_ablation`):\n\n"
        f"{text}"
    )


def _comparisons(table: EvalTable, a: str, b: str) -> list[str]:
    out = []
    for column in table.columns:
        x, y = table.rows[a][column], table.rows[b][column]
        if x is not None and y is not None:
            out.append(compare(x, y, metric_of(column)))
    return out


def render_demo_comparison(ctx: Context) -> str:
    """What the demo summary shows, worded by the rules of ``wording``."""
    table, bicubic, l2, hybrid = _demo_rows(ctx)
    lines = [
        f"What the numbers of {ctx.link(DEMO_SUMMARY)} show, worded by fixed rules "
        f"(`tools/readme_results/wording.py`): d is the difference of two means over their "
        f'pooled standard deviation over the images; |d| < {SAME} reads "about the same", below '
        f'{SLIGHT} "slightly" higher or lower, below {PLAIN} higher or lower, above that '
        f'"clearly". Differences are those of the rounded means in the table. d compares '
        f"each difference with the spread between images, not image by image; with "
        f"{table.images} images and one training run per model, no difference is tested for "
        f"significance.",
        "",
    ]
    for a, b in ((l2, bicubic), (hybrid, bicubic), (hybrid, l2)):
        lines.append(f"- {a} against {b}: {join(_comparisons(table, a, b))}.")
    stats = {
        m: (table.rows[hybrid][column_of(table, m)], table.rows[l2][column_of(table, m)])
        for m in ("NIMA", "PSNR-Y", "NIQE", "LR-consistency", "GMSD", "artifacts")
        if any(metric_of(c).name == m for c in table.columns)
    }
    words = {m: size_word(effect(*ab)) for m, ab in stats.items()}

    def than(word: str) -> str:
        return "about the same as" if word == "about the same" else f"{word} than"

    lines += [
        "",
        f"On NIMA, the score the hybrid loss raises, the hybrid model scores {than(words['NIMA'])}"
        f" the L2 model; on PSNR-Y it scores {than(words['PSNR-Y'])} the L2 model.",
    ]
    lower_better = {m.name: m.lower_better for m in METRICS.values()}
    judges = [m for m in ("NIQE", "LR-consistency", "GMSD", "artifacts") if m in stats]
    verdicts = {m: verdict(effect(*stats[m]), lower_better[m]) for m in judges}
    detail = ", ".join(f"{m} {words[m]}" for m in judges)
    worse = [m for m in judges if verdicts[m] == "worse"]
    better = [m for m in judges if verdicts[m] == "better"]
    said = f"{len(better)} rate the hybrid output better than the L2 output, {len(worse)} worse" + (
        f" ({join(worse)})" if worse else ""
    )
    lines[-1] += f" Of the {len(judges)} judges NIMA is not, {said}: {detail}."
    if verdict(effect(*stats["LR-consistency"]), False) == "worse":
        lines[-1] += (
            " A lower LR-consistency means that the hybrid output, downscaled again, reproduces"
            " its input less well."
        )
    return "\n".join(lines)


def render_demo_sweep(ctx: Context) -> str:
    """The gamma sweep's PSNR-Y and NIMA, and which way they move."""
    rows = csv.DictReader(read(ctx.root, DEMO_SWEEP).splitlines())
    trials = sorted(rows, key=lambda r: float(r["loss.gamma"]))
    done = [t for t in trials if t["status"] == "FINISHED"]
    if len(done) < 2:
        raise SourceError(f"{DEMO_SWEEP}: fewer than two finished trials")
    gammas = [float(t["loss.gamma"]) for t in done]
    psnr = [float(t["val_psnr_y"]) for t in done]
    nima = [float(t["val_nima_mean"]) for t in done]
    epochs = sorted({t["epochs"] for t in done})
    g = join([f"{x:g}" for x in gammas])
    text = (
        f"The gamma sweep ({ctx.link(DEMO_SWEEP)}, written by `nie demo`'s stage 7: one run of "
        f"{join(epochs)} epoch(s) per gamma, no spread; the file records no date or machine) "
        f"measured PSNR-Y {join([f'{p:.2f}' for p in psnr])} dB and NIMA "
        f"{join([f'{n:.2f}' for n in nima])} at gamma {g}"
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
