"""The benchmark helpers: FLOP counting, interleaved timing, targets, reports, test weights."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.bilinear_weights import bilinear_like_weights_
from bench.flops import conv_flops, matmul_candidates
from bench.report import BenchResult, Target, markdown_table, write_result
from bench.run_all import summary_markdown
from bench.timing import time_interleaved
from nie_core.models import create_model


def test_conv_flops_counts_multiply_adds_twice() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),  # depthwise, 5 x 6 output
        nn.Flatten(),
        nn.Linear(8 * 5 * 6, 4),
    )
    expected = 2 * 3 * 8 * 9 * 10 * 12 + 2 * 1 * 8 * 9 * 5 * 6 + 2 * 240 * 4
    assert conv_flops(model, torch.rand(1, 3, 10, 12)) == expected
    assert conv_flops(model, torch.rand(2, 3, 10, 12)) == 2 * expected
    assert model[0].weight.device.type == "cpu"  # the model itself is left alone


def test_conv_flops_of_edsr_baseline_x2_at_256() -> None:
    # Per LR pixel: head 2*3*64*9, 33 body convs 2*64*64*9 each, upsampler 2*64*256*9, and the
    # tail 2*64*3*9 on 4 output pixels.
    per_pixel = 2 * 3 * 64 * 9 + 33 * 2 * 64 * 64 * 9 + 2 * 64 * 256 * 9 + 4 * 2 * 64 * 3 * 9
    model = create_model("edsr_baseline", scale=2)
    assert conv_flops(model, torch.rand(1, 3, 256, 256)) == per_pixel * 256 * 256


def test_time_interleaved_runs_each_candidate_in_turn_rotating_the_order() -> None:
    calls: list[str] = []
    timings = time_interleaved(
        {name: lambda name=name: calls.append(name) for name in "abc"}, repeats=3, warmup=1
    )
    # warm-up in order, then rounds starting at a, b, c
    assert "".join(calls) == "abc" + "abc" + "bca" + "cab"
    assert set(timings) == {"a", "b", "c"} and len(timings["a"].samples) == 3
    assert timings["a"].best <= timings["a"].median
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        time_interleaved({"a": lambda: None}, repeats=0)


def test_matmul_candidates_scale_products_to_the_work_compared() -> None:
    one = matmul_candidates(flops_per_call=0, size=64)
    three = matmul_candidates(flops_per_call=3 * 2 * 64**3, size=64)
    assert one["matmul_bf16"][1] == 2 * 64**3 and three["matmul_fp32"][1] == 3 * 2 * 64**3
    three["matmul_bf16"][0]()  # runs


def test_targets_and_reports(tmp_path) -> None:
    assert Target("t", 2.6, 2.5, ">=").met and not Target("t", 2.4, 2.5, ">=").met
    assert Target("t", 1.1, 1.15, "<=").met and not Target("t", 1.2, 1.15, "<=").met
    assert markdown_table(["a", "b", "c", "d", "e"], [[1234.6, 123.4, 2.345, 0.1234, 7]]) == [
        "| a | b | c | d | e |",
        "|---|---|---|---|---|",
        "| 1,235 | 123.4 | 2.35 | 0.123 | 7 |",
    ]
    result = BenchResult(
        name="demo",
        title="Demo",
        headers=["x"],
        rows=[[1]],
        targets=[Target("speed", 3.0, 2.5, ">=", "x")],
    )
    json_path, md_path = write_result(result, tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["targets"][0]["met"] is True
    assert md_path.read_text().startswith("# Demo\n")

    failed = {"name": "serve", "failed": True, "seconds": 1.0, "error": ["boom"]}
    report = summary_markdown([saved, failed], MACHINE, quick=True, out_dir=tmp_path)
    assert "Test CPU" in report and "(quick run)" in report
    assert "| speed | 3x | >= 2.5x | yes |" in report
    assert "FAILED: boom" in report and "## Demo" in report
    assert "Device measured: CPU, Test CPU, AVX-512 (ATen kernels: AVX512), native bf16" in report


MACHINE = {
    "device": "cpu",
    "cpu": "Test CPU",
    "cpu_isa": "AVX-512",
    "aten_cpu_capability": "AVX512",
    "logical_cpus": 2,
    "torch_threads": 2,
    "cpu_bf16_flags": ["avx512_bf16"],
    "cpu_bf16": ["avx512_bf16"],
    "bf16_native": True,
    "cuda": False,
    "torch": "2.x",
    "python": "3.11",
    "load_average_1min": 1.0,
}


def test_the_report_names_the_device_measured_and_never_says_no_gpu_on_one() -> None:
    from bench.machine import device_line, machine_line

    assert "No GPU on this machine" in device_line(MACHINE)
    gpu = {**MACHINE, "device": "cuda", "cuda": True, "gpu": "NVIDIA H200",
           "gpu_capability": "9.0", "cuda_version": "13.0"}  # fmt: skip
    for line in (device_line(gpu), machine_line(gpu)):
        assert "NVIDIA H200" in line and "no gpu" not in line.lower()
    assert device_line(gpu).startswith("Device measured: GPU NVIDIA H200 (compute capability 9.0")
    cpu_on_gpu_machine = {**gpu, "device": "cpu"}
    assert "A GPU (NVIDIA H200) was present" in device_line(cpu_on_gpu_machine)
    capped = {**MACHINE, "cpu_bf16": [], "bf16_native": False, "cpu_isa": "AVX-512",
              "settings": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}  # fmt: skip
    assert "no native bf16 (the CPU has avx512_bf16, capped away)" in machine_line(capped)
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in machine_line(capped)


def test_machine_info_follows_the_onednn_isa_cap(monkeypatch) -> None:
    from bench.machine import bf16_native, machine_info

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    info = machine_info()
    assert bf16_native("cpu") is False and info["bf16_native"] is False
    assert info["cpu_bf16"] == [] and info["settings"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert info["device"] == "cpu" and "cpu_isa" in info and "aten_cpu_capability" in info


def test_targets_that_do_not_apply_are_not_failures(tmp_path) -> None:
    from bench.inference import _row, _targets
    from bench.machine import NO_BF16, NOT_APPLICABLE_NO_BF16

    skipped = Target.skipped("needs bf16", 0.75, ">=", NOT_APPLICABLE_NO_BF16)
    assert skipped.met is None
    result = BenchResult(name="demo", title="Demo", headers=["x"], rows=[[1]], targets=[skipped])
    json_path, _ = write_result(result, tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["targets"][0]["met"] is None
    report = summary_markdown([saved], MACHINE, quick=False, out_dir=tmp_path)
    assert f"| needs bf16 | - | >= 0.75 | {NOT_APPLICABLE_NO_BF16} |" in report
    assert "**no**" not in report
    # The inference benchmark on a CPU without native bf16: fp32 measured, fast path skipped.
    measured = {"lr_side": 256, "gflop": 180.0, "fp32_gflops": 60.0,
                "mfu_fp32_vs_fp32_peak": 0.5, "fast_skipped": NO_BF16}  # fmt: skip
    assert _row("edsr_baseline", measured)[3] == NO_BF16
    assert all(t.met is None for t in _targets(measured))


def test_reference_models_have_nie_models_layer_shapes() -> None:
    from bench.reference import reference_model

    x = torch.rand(1, 3, 12, 12)
    for name, factor, shape in (("edsr_baseline", 2, {}), ("edsr", 4, {"n_resblocks": 2})):
        ours = create_model(name, scale=factor, **shape)
        plain = reference_model(name, factor, **shape)
        assert conv_flops(plain, x) == conv_flops(ours, x)
        assert sum(p.numel() for p in plain.parameters()) == sum(
            p.numel() for p in ours.parameters()
        )
        assert plain(x).shape == (1, 3, 12 * factor, 12 * factor)


def test_cuda_benchmark_fails_in_one_line_without_a_gpu(capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from bench import gpu
    from bench.run_all import main

    assert main(["--device", "cuda"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        gpu.main(["--device", "cuda"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [gpu.NO_CUDA, gpu.NO_CUDA]


def test_cuda_benchmark_code_runs_on_cpu_at_tiny_sizes(tmp_path) -> None:
    """Every measurement of bench/gpu.py, for real, at tiny sizes on the CPU (no timing checks;
    the eager torch.compile backend: inductor's C++ compilation takes minutes here)."""
    from bench import gpu

    result = gpu.main(["--device", "cpu", "--quick", "--compile-backend", "eager",
                       "--out", str(tmp_path)])  # fmt: skip
    assert result is not None and result.machine["device"] == "cpu"
    assert len(result.rows) == 6 + len(gpu.QUICK.nima_batches) and len(result.targets) == 7
    saved = json.loads((tmp_path / "gpu.json").read_text())
    assert set(saved["details"]["training"]["steps_per_s"]) == {
        "reference", "nie_l2", "nie_hybrid", "nie_l2_compiled", "reference_edsr", "nie_edsr"
    }  # fmt: skip
    assert all(r > 0 for r in saved["details"]["inference"]["images_per_s"]["edsr_x4"].values())
    assert (tmp_path / "gpu.md").read_text().startswith("# Device speed")


@pytest.mark.parametrize("scale", [2, 3])
def test_bilinear_like_weights_upsample_bilinearly(scale: int) -> None:
    torch.manual_seed(0)
    model = create_model("edsr_baseline", scale=scale, n_resblocks=2, n_feats=16)
    bilinear_like_weights_(model, detail_rms=0.0)
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        out = model(x)
    expected = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    # Away from the border (zero padding there vs. edge replication in F.interpolate).
    inner = (..., slice(scale, -scale), slice(scale, -scale))
    torch.testing.assert_close(out[inner], expected[inner], rtol=0, atol=1e-5)


def test_bilinear_like_weights_add_a_detail_of_the_requested_size() -> None:
    torch.manual_seed(0)
    model = create_model("edsr_baseline", scale=2, n_resblocks=2, n_feats=16)
    plain = bilinear_like_weights_(
        create_model("edsr_baseline", scale=2, n_resblocks=2, n_feats=16), detail_rms=0.0
    )
    bilinear_like_weights_(model, detail_rms=0.02)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        detail = model(x) - plain(x)
    rms = detail[..., 4:-4, 4:-4].square().mean().sqrt().item()
    assert 0.005 < rms < 0.04


def test_update_readme_replaces_only_the_marked_section(tmp_path) -> None:
    from bench.run_all import update_readme

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- latest:start -->\nold\n<!-- latest:end -->\noutro\n")
    report = "# NIE benchmarks\n\nMeasured on X.\n\n## Targets\n\n| t |\n\n## Inference\n\n| x |\n"
    assert update_readme(report, readme)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- latest:start -->\nMeasured on X.\n\nTargets:\n\n| t |")
    assert "old" not in text and "## Inference" not in text and text.endswith("-->\noutro\n")
    readme.write_text("no markers")
    assert not update_readme(report, readme)
    readme.write_text("a\n<!-- latest-cuda:start -->\nnot measured\n<!-- latest-cuda:end -->\nb\n")
    assert not update_readme(report, readme)  # the CPU markers are not there
    assert update_readme(report, readme, "results/cuda/latest.md", marker="cuda")
    assert "Measured on X." in readme.read_text() and "not measured" not in readme.read_text()


def test_balanced_timing_repeats_fast_candidates_within_a_turn(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("bench.timing.time.perf_counter", lambda: clock[0])
    calls = {"slow": 0, "fast": 0}

    def work(name: str, seconds: float):
        def run() -> None:
            calls[name] += 1
            clock[0] += seconds

        return run

    timings = time_interleaved(
        {"slow": work("slow", 3.0), "fast": work("fast", 1.0)}, repeats=2, warmup=1, balance=True
    )
    assert calls == {"slow": 1 + 2, "fast": 1 + 2 * 3}
    assert timings["fast"].samples == (1.0, 1.0) and timings["slow"].samples == (3.0, 3.0)


def test_more_rounds_run_until_the_minimum_settles_or_time_runs_out(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("bench.timing.time.perf_counter", lambda: clock[0])

    def taking(seconds: list[float]):
        durations = iter(seconds)

        def run() -> None:
            clock[0] += next(durations)

        return run

    # Warm-up 5, then 2.0 and 1.0 disagree; the third round (1.03125) is within 5% of 1.0.
    settled = time_interleaved(
        {"a": taking([5, 2.0, 1.0, 1.03125, 9, 9])}, repeats=2, max_seconds=100
    )
    assert settled["a"].samples == (2.0, 1.0, 1.03125) and settled["a"].stable
    # Never settling: rounds stop once they have taken max_seconds.
    busy = time_interleaved({"a": taking([5, 1, 2, 4, 8, 16, 32])}, repeats=2, max_seconds=10)
    assert busy["a"].samples == (1, 2, 4, 8) and not busy["a"].stable
    assert time_interleaved({"a": taking([5, 1, 2, 4])}, repeats=2)["a"].samples == (1, 2)


def test_the_training_benchmark_times_the_losses_the_demo_trains_with() -> None:
    from bench import training
    from bench.machine import bf16_native
    from nie_core.losses.guards import GamingGuard

    assert training.HYBRID_OVERHEAD_TARGET == 1.3
    hybrid_cfg, l2_cfg = (
        training.recipe(training.HYBRID_RECIPE),
        training.recipe(training.L2_RECIPE),
    )
    hybrid, l2 = training.job_loss(hybrid_cfg), training.job_loss(l2_cfg)
    assert hybrid.gamma == hybrid_cfg.loss.gamma > 0 and hybrid.guard == hybrid_cfg.loss.guard
    assert hybrid.training and not hybrid.scorer.training  # the guard's views apply
    assert hybrid.scorer.input_size is None  # the zoo NIMA scores the outputs unresized
    assert l2.gamma == 0 and l2.scorer is None
    assert training.describe_loss(l2_cfg) == "L2"
    described = training.describe_loss(hybrid_cfg)
    assert described.startswith(f"L2 + {hybrid_cfg.loss.gamma:g} x (10 - NIMA mean)")
    guard = GamingGuard(views=2, flip=True, edge_weight=1.0)
    guarded = dataclasses.replace(
        hybrid_cfg, loss=dataclasses.replace(hybrid_cfg.loss, guard=guard)
    )
    assert training.describe_loss(guarded).endswith("guard 2 views, flips, edge anchor 1")
    # One step of each at tiny sizes: the benchmark's own step, in float32 channels_last and,
    # where this CPU computes bf16 natively, under bf16 autocast.
    lr, hr = training.photo_batch(batch=2, lr_patch=12)
    for cfg in (l2_cfg, hybrid_cfg):
        for bf16 in {False, bf16_native("cpu")}:
            step = training.make_step(True, cfg, lr, hr, bf16=bf16, n_resblocks=1, n_feats=8)
            assert math.isfinite(step())


def test_the_training_benchmark_finds_the_jobs_path_as_the_workers_do(monkeypatch) -> None:
    from bench.training import HYBRID_RECIPE, job_path, recipe
    from nie_core.inference import fast_path_supported

    cfg = recipe(HYBRID_RECIPE)

    def with_fast(mode: str):
        return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, fast=mode))

    assert job_path(with_fast("on")) == "bf16_cl" and job_path(with_fast("off")) == "fp32"
    auto = with_fast("auto")
    assert job_path(auto) == ("bf16_cl" if fast_path_supported("cpu") else "fp32")
    monkeypatch.setenv("NIE_FAST_PATH", "off")
    assert job_path(auto) == "fp32"


def test_quality_parity_is_not_applicable_without_native_bf16(monkeypatch, tmp_path) -> None:
    from bench import quality_parity
    from bench.machine import NOT_APPLICABLE_NO_BF16

    monkeypatch.setattr(quality_parity, "bf16_native", lambda device="cpu": False)
    result = quality_parity.main(["--out", str(tmp_path)])
    assert [t.met for t in result.targets] == [None]
    assert result.targets[0].not_applicable == NOT_APPLICABLE_NO_BF16
    saved = json.loads((tmp_path / "quality_parity.json").read_text())
    assert saved["details"] == {"bf16_native": False}
    assert "no native bf16" in (tmp_path / "quality_parity.md").read_text()
    # Relative data paths of a recipe are taken from the repository root.
    cfg = quality_parity.rooted(quality_parity.recipe(quality_parity.L2_RECIPE))
    assert Path(cfg.data.root) == quality_parity.ROOT / "data/photos/DIV2K"


def test_run_all_runs_the_quality_parity_row() -> None:
    from bench.run_all import BENCHMARKS

    assert "quality_parity" in BENCHMARKS
