"""``nie demo`` end to end in --fast mode on the session's Ray cluster: the MLflow store holds the
runs and registered models, the summary and the report are written, a second call reuses every
stage, and the service deployed with the demo's models answers."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from PIL import Image

from nie_cli.demo import StageResult, config_hash, run_stage

STAGES = ("l2", "probe", "scorer", "hybrid", "sweep")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- stage reuse (no Ray)


def test_run_stage_reuses_resumes_and_restarts(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "job"
    calls: list[str] = []

    def train(tag: str):
        def run() -> dict:
            calls.append(tag)
            (folder / "best").mkdir(parents=True, exist_ok=True)
            (folder / "best" / "checkpoint.pt").write_text(tag)
            return {"checkpoint_dir": str(folder / "best"), "tag": tag}

        return run

    logs: list[str] = []
    first = run_stage("job", folder, {"lr": 1}, "best/checkpoint.pt", train("a"), log=logs.append)
    assert calls == ["a"] and not first.reused and first.result["tag"] == "a"

    again = run_stage("job", folder, {"lr": 1}, "best/checkpoint.pt", train("b"), log=logs.append)
    assert calls == ["a"] and again.reused and again.result == first.result
    assert again.config_hash == first.config_hash

    # Another upstream (e.g. a retrained NIMA) or other settings: the folder starts afresh.
    (folder / "stale.txt").write_text("from the old run")
    other = run_stage("job", folder, {"lr": 1}, "best/checkpoint.pt", train("c"),
                      upstream=["new-nima"], log=logs.append)  # fmt: skip
    assert calls == ["a", "c"] and not other.reused
    assert not (folder / "stale.txt").exists()

    # An interrupted attempt with the same settings keeps its folder (the job resumes from it).
    digest = config_hash({"lr": 2})
    (folder / "demo_stage.json").write_text(json.dumps({"config_hash": digest, "finished": False}))
    (folder / "checkpoint_epoch_1").mkdir()
    resumed = run_stage("job", folder, {"lr": 2}, "best/checkpoint.pt", train("d"),
                        log=logs.append)  # fmt: skip
    assert calls == ["a", "c", "d"] and not resumed.reused
    assert (folder / "checkpoint_epoch_1").is_dir()
    assert any("resuming" in line for line in logs)

    # A finished marker whose result files are gone is not trusted.
    (folder / "best" / "checkpoint.pt").unlink()
    run_stage("job", folder, {"lr": 2}, "best/checkpoint.pt", train("e"), log=logs.append)
    assert calls == ["a", "c", "d", "e"]


def test_config_hash_follows_config_and_upstream() -> None:
    base = config_hash({"a": {"b": 1}, "c": [1, 2]})
    assert base == config_hash({"c": [1, 2], "a": {"b": 1}})  # key order does not matter
    assert base != config_hash({"a": {"b": 2}, "c": [1, 2]})
    assert base != config_hash({"a": {"b": 1}, "c": [1, 2]}, upstream=["x"])
    assert len(base) == 16


# --------------------------------------------------------------------------- the whole demo


@pytest.fixture(scope="module")
def fast_demo(ray_cluster, tmp_path_factory):
    """One ``nie demo --fast`` on the session cluster (reused by every test below)."""
    from nie_cli.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo"), fast=True)


@pytest.mark.ray
@pytest.mark.slow
def test_demo_tracks_every_run_and_registers_the_models(fast_demo) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(fast_demo.layout.tracking_uri)
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    assert {"nie-enhancer", "nie-nima", "nie-tune"} <= set(experiments)

    stages = fast_demo.stages
    assert set(stages) == set(STAGES)
    assert all(isinstance(s, StageResult) and not s.reused for s in stages.values())
    enhancer_runs = client.search_runs([experiments["nie-enhancer"]])
    by_name = {r.info.run_name: r for r in enhancer_runs}
    assert set(by_name) == {stages[k].result["run_name"] for k in ("l2", "probe", "hybrid")}
    assert all(r.info.status == "FINISHED" for r in enhancer_runs)
    assert by_name[stages["l2"].result["run_name"]].data.params["loss.gamma"] == "0.0"
    assert by_name[stages["probe"].result["run_name"]].data.params["loss.gamma"] == "8.0"
    hybrid_params = by_name[stages["hybrid"].result["run_name"]].data.params
    assert float(hybrid_params["loss.gamma"]) == fast_demo.gamma > 0
    assert (
        hybrid_params["loss.guard.views"] == "2"
        and hybrid_params["loss.guard.lowpass_factor"] == "2"
    )
    for run in enhancer_runs:
        assert {"val_psnr_y", "bicubic_psnr_y", "val_nima_mean", "train_loss"} <= set(
            run.data.metrics
        )

    # The sweep: a parent run with one nested trial run per gamma.
    sweep = stages["sweep"].result
    trials = client.search_runs(
        [experiments["nie-tune"]],
        filter_string=f"tags.mlflow.parentRunId = '{sweep['mlflow_run_id']}'",
    )
    assert sorted(float(t.data.params["loss.gamma"]) for t in trials) == [0.0, 0.4]
    assert Path(sweep["table"]).is_file()

    # All start from the zoo checkpoint; the L2 model and the probe are scored by the zoo's NIMA,
    # the hybrid model by the scorer the NIMA job hardened (tracked in MLflow, Ray Train).
    for key in ("l2", "probe", "hybrid"):
        assert by_name[stages[key].result["run_name"]].data.params["model.weights"] == "nie-photos"
    for key in ("l2", "probe"):
        params = by_name[stages[key].result["run_name"]].data.params
        assert params["loss.nima_checkpoint"] == "zoo:nima@nie-quality"
    hardened = stages["scorer"].result
    assert hybrid_params["loss.nima_checkpoint"] == str(Path(hardened["checkpoint_dir"]))
    (nima_run,) = client.search_runs([experiments["nie-nima"]])
    assert nima_run.info.run_id == hardened["mlflow_run_id"] and nima_run.info.status == "FINISHED"
    assert nima_run.data.params["model.weights"] == "zoo:nima@nie-quality"
    assert "val_emd" in nima_run.data.metrics
    ratings = (fast_demo.layout.hardening / "ratings.csv").read_text()
    assert "_gamed.png" in ratings and "_l2.png" in ratings

    # Registered models, the alias pointing at the demo's runs.
    registered = {m.name for m in client.search_registered_models()}
    assert {"nie-edsr_baseline-x2-sr-l2", "nie-edsr_baseline-x2-sr-hybrid"} <= registered
    for key in ("l2", "hybrid"):
        result = stages[key].result
        version = client.get_model_version_by_alias(result["registered_name"], "latest-run")
        assert version.run_id == result["mlflow_run_id"]
        assert (Path(result["checkpoint_dir"]) / "checkpoint.pt").is_file()


@pytest.mark.ray
@pytest.mark.slow
def test_demo_summary_and_report(fast_demo) -> None:
    table = fast_demo.summary
    assert table.images == ["0801.png", "0802.png", "0803.png", "0804.png"]  # every image
    stats = table.summary()
    rows = list(stats)
    assert rows[0] == "bicubic" and rows[-1] == "reference" and len(rows) == 6
    assert rows[1].startswith("EDSR x2, zoo") and "gaming probe" in rows[3]
    for row in rows[:-1]:
        assert set(stats[row]) == {"psnr_y", "ssim_y", "gmsd", "artifacts", "niqe",
                                   "lr_psnr_y", "nima"}  # fmt: skip
        assert 20.0 < stats[row]["psnr_y"]["mean"] < 45.0
        assert stats[row]["psnr_y"]["n"] == 4
    assert set(stats["reference"]) == {"niqe", "nima"}  # no-reference metrics only
    assert all(1.0 <= s["nima"]["mean"] <= 10.0 for s in stats.values())
    for needed in ("PSNR-Y", "NIQE", "LR-consistency", "GMSD", "Artifacts", "±",
                   "hybrid minus L2", "Protocol"):  # fmt: skip
        assert needed in fast_demo.summary_table, needed
    summary = json.loads((fast_demo.layout.runs / "demo_summary.json").read_text())
    assert summary["images"] == table.images and summary["machine"] and summary["date"]
    assert (fast_demo.layout.runs / "demo_summary.md").read_text().strip() == (
        fast_demo.summary_table.strip()
    )

    report = fast_demo.report
    text = report.read_text()
    for figure in ("psnr_by_gamma_sr.png", "training_by_epoch_sr.png", "outputs_sr.png"):
        assert (report.parent / figure).read_bytes()[:8] == PNG_MAGIC
        assert figure in text
    assert "demo-edsr_baseline-x2-hybrid" in text  # the by-epoch table names the runs
    assert "Summary (from `nie demo`)" in text and "LR-consistency" in text
    # The report's output assessment averages the same images as the summary (it took 3 of 4).
    header = next(line for line in text.splitlines() if line.startswith("| method | 08"))
    assert [c.strip() for c in header.split("|")[2:-2]] == [Path(i).stem for i in table.images]


@pytest.mark.ray
@pytest.mark.slow
def test_demo_leaves_sigint_to_us(fast_demo) -> None:
    """Ray Train and Tune install SIGINT handlers on the thread that calls them and keep them;
    the demo trains on a worker thread, so after it Ctrl-C is still a KeyboardInterrupt."""
    import signal

    handler = signal.getsignal(signal.SIGINT)
    assert not getattr(handler, "__module__", "").startswith("ray"), handler


@pytest.mark.ray
@pytest.mark.slow
def test_second_demo_run_reuses_every_stage_and_ctrl_c_ends_the_service(
    fast_demo, tmp_path
) -> None:
    """`nie demo` again in the same folder, in its own process with an embedded Ray, as from a
    terminal: it trains nothing, prints the same table, serves, and one Ctrl-C ends the service
    and every process the command started."""
    import httpx
    from mlflow.tracking import MlflowClient

    from tests.conftest import free_port
    from tests.processes import NieProcess, wait_until_gone

    client = MlflowClient(fast_demo.layout.tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs_before = len(client.search_runs(experiments))
    port = free_port()
    demo = NieProcess(["demo", "--fast", "--workdir", str(fast_demo.layout.workdir),
                       "--port", str(port)], tmp_path / "demo.log")  # fmt: skip
    try:
        demo.wait_for(r"serving until Ctrl-C", timeout_s=600)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
        started = demo.descendants()
        assert started  # Ray's processes, at least
        demo.ctrl_c()
        assert demo.proc.wait(timeout=90) == 0
        assert wait_until_gone(started, timeout_s=60) == set()
    finally:
        demo.stop()
    out = demo.output()
    assert out.count("reusing the finished run") == len(STAGES)
    assert len(client.search_runs(experiments)) == runs_before  # nothing was trained again
    rows = [line for line in fast_demo.summary_table.splitlines() if line.startswith("|")]
    assert rows and all(row in out for row in rows)  # the same models give the same table
    assert "mlflow ui --backend-store-uri " + fast_demo.layout.tracking_uri in out
    assert out.rstrip().splitlines()[-1] == "nie demo: stopped; the service and Ray have shut down"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)


@pytest.mark.ray
@pytest.mark.slow
def test_demo_service_answers(fast_demo) -> None:
    import httpx
    from ray import serve

    from nie_cli.demo import start_demo_service
    from tests.conftest import free_port

    url = start_demo_service(fast_demo, port=free_port())
    try:
        models = httpx.get(f"{url}/v1/models", timeout=60).json()
        names = {m["name"]: m for m in models["models"]}
        assert set(names) == {"edsr_x2_baseline", "edsr_x2_hybrid"}
        assert names["edsr_x2_hybrid"]["origin"].startswith(
            "models:/nie-edsr_baseline-x2-sr-hybrid/"
        )
        assert models["scorer"]["trained"] is True

        buffer = io.BytesIO()
        Image.new("RGB", (20, 16), (120, 60, 200)).save(buffer, format="PNG")
        response = httpx.post(
            f"{url}/v1/enhance",
            files={"image": ("in.png", buffer.getvalue(), "image/png")},
            data={"model": "edsr_x2_hybrid"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        with Image.open(io.BytesIO(response.content)) as out:
            assert out.format == "PNG" and out.size == (40, 32)
    finally:
        serve.shutdown()


# --------------------------------------------------------------------------- Ctrl-C while training


@pytest.mark.ray
@pytest.mark.slow
def test_ctrl_c_while_training_stops_the_demo_and_marks_the_run_killed(tmp_path) -> None:
    """A fresh `nie demo --fast` (embedded Ray) gets one Ctrl-C during its first training
    stage: it ends within a bound with status 130 and a one-line goodbye, the MLflow run of that
    stage is KILLED (not RUNNING), and every process it started has ended."""
    from mlflow.tracking import MlflowClient

    from tests.processes import NieProcess, wait_until_gone

    demo = NieProcess(["demo", "--fast", "--no-serve", "--workdir", str(tmp_path / "w")],
                      tmp_path / "demo.log")  # fmt: skip
    try:
        demo.wait_for(r"\[nie\] run .*: MLflow run [0-9a-f]+ at", timeout_s=300)
        time.sleep(3)  # Ray Train's controller and workers are starting or running
        started = demo.descendants()
        demo.ctrl_c()
        assert demo.proc.wait(timeout=90) == 130, demo.output()[-3000:]
        assert wait_until_gone(started, timeout_s=60) == set()
    finally:
        demo.stop()
    out = demo.output()
    assert out.rstrip().splitlines()[-1] == "nie demo: stopped by Ctrl-C", out[-3000:]
    assert "Gracefully aborting" not in out  # Ray Train's own handler never took the signal
    client = MlflowClient(f"sqlite:///{tmp_path / 'w' / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and {r.info.status for r in runs} == {"KILLED"}


@pytest.mark.ray
@pytest.mark.slow
def test_second_ctrl_c_during_the_sweep_forces_the_exit(fast_demo, tmp_path) -> None:
    """The sweep stage (run last: it removes the finished sweep of the module's demo so that
    it trains again) gets two Ctrl-C in a row: the second forces the exit, and still no
    process the command started is left."""
    import shutil

    from tests.processes import NieProcess, wait_until_gone

    sweep_dir = Path(fast_demo.stages["sweep"].result["sweep_dir"])
    shutil.rmtree(sweep_dir)
    demo = NieProcess(["demo", "--fast", "--no-serve", "--workdir",
                       str(fast_demo.layout.workdir)], tmp_path / "demo.log")  # fmt: skip
    try:
        demo.wait_for(r"\[7/8\] gamma sweep", timeout_s=300)
        time.sleep(5)  # trials are being placed or are training
        started = demo.descendants()
        demo.ctrl_c()
        time.sleep(0.5)
        demo.ctrl_c()
        assert demo.proc.wait(timeout=60) == 130, demo.output()[-3000:]
        assert wait_until_gone(started, timeout_s=60) == set()
    finally:
        demo.stop()
    assert "nie: forced to stop" in demo.output()


@pytest.mark.ray
@pytest.mark.slow
def test_next_commands_printed_by_the_demo_run(fast_demo, tmp_path) -> None:
    """The `next:` lines name files and models that exist: run the enhance and score lines."""
    import shlex

    from nie_cli.demo import next_commands
    from nie_cli.main import main

    lines = next_commands(fast_demo, served=False)
    assert any(" serve mlflow_tracking_uri=" in line for line in lines)  # workdir is not cwd
    for line in lines:
        words = shlex.split(line.split("   (")[0])
        if words[1] not in ("enhance", "score"):
            continue
        words = [str(tmp_path / "out") if w == "enhanced/" else w for w in words]
        assert main(words[1:]) == 0, line
    assert len(list((tmp_path / "out").glob("*.png"))) == 1
