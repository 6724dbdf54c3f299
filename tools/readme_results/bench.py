"""The blocks rendered from ``make bench``'s committed runs (``bench/results/``): run times, the
AVX2-capped run, the inference weights' PSNR, the missed or narrowly met targets with the
benchmarks' own evidence, and the ``latest`` blocks that ``bench/run_all.py`` also writes."""

from __future__ import annotations

from typing import Any

from .sources import Context, SourceError, read, read_bench
from .wording import NARROW_MARGIN, ceiling_verdict, join

BENCH = "bench/results"
BENCH_AVX2 = "bench/results/avx2"
BENCH_CUDA = "bench/results/cuda"


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
        f"scored {join(parts)} PSNR against the photo."
    )


def _evidence(result: dict[str, Any], target: dict[str, Any]) -> str:
    """The benchmark's own figures that bound a target it missed."""
    details, name = result["details"], result["name"]
    if name == "inference":
        shares = [f"{m} {d['mfu_fast_vs_bf16_peak']:.0%}" for m, d in details["models"].items()]
        return f"Fast path against the bf16 matmul peak, per model: {', '.join(shares)}."
    if name == "training" and "speedup_ceiling_at_bf16_peak" in details:
        ceiling = details["speedup_ceiling_at_bf16_peak"]
        return ceiling_verdict(ceiling, target, "a step at 100 % of the bf16 peak")
    if name == "serve" and "score" in target["name"]:
        cpu = details["cpu_seconds_per_image"]["http_unbatched"]
        model = details["model_images_per_s_one_thread"]
        return (
            f"Per image, the unbatched HTTP path cost the machine {cpu['machine'] * 1e3:.0f} ms "
            f"of CPU (clients {cpu['clients'] * 1e3:.0f} ms, Scorer replica "
            f"{cpu['scorer'] * 1e3:.0f} ms); NIMA alone on one thread ran {model['1']:.1f} "
            f"images/s at batch 1 and {model['16']:.1f} at batch 16. "
            + ceiling_verdict(
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
    report = read(ctx.root, f"{folder}/latest.md")
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
