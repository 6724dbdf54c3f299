"""``nie tune``: search-space and objective checks, the plots, and real sweeps on local Ray.

The sweeps use tiny enhancers (two trials at once, each two DDP workers of half a CPU, or one
worker of one CPU) and the session's trained NIMA as the scorer of the hybrid loss and of the
NIMA objective.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import pytest

from nie_core.config import load_config
from ray_jobs.config import EnhancerJobConfig, TuneJobConfig
from ray_jobs.fault_injection import Faults
from ray_jobs.pareto import pareto_mask
from ray_jobs.plots import plot_metric_by_param, plot_pareto

from .conftest import tiny_enhancer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tune_config(job: EnhancerJobConfig, tmp: Path, *overrides: str) -> TuneJobConfig:
    cfg = load_config(TuneJobConfig, None, [f"storage_path={tmp / 'tune'}", *overrides])
    return replace(cfg, job=job)


@pytest.fixture
def job(sample_data, tmp_path, mlflow_uri) -> EnhancerJobConfig:
    """A tiny enhancer job with an untrained scorer (enough for the checks made before Ray)."""
    return tiny_enhancer(
        sample_data, tmp_path, mlflow_uri,
        "loss.allow_untrained_nima=true", "loss.nima_backbone=mnasnet0_5",
    )  # fmt: skip


# --------------------------------------------------------------------------- checks, no Ray


def test_space_merges_the_default_with_flat_and_nested_keys(job, tmp_path):
    from ray_jobs.tune import search_space

    cfg = tune_config(job, tmp_path)
    assert search_space(cfg) == {
        "loss.gamma": ("uniform", [0.0, 1.0]),
        "optim.lr": ("loguniform", [1e-5, 1e-3]),
    }
    cfg = tune_config(
        job, tmp_path,
        "space.loss.gamma={grid: [0.0, 0.4]}",  # nested, from a dotted override
        "space.optim.lr=null",  # drops a default key
        "space.run.batch_size={randint: [2, 4]}",
    )  # fmt: skip
    assert search_space(cfg) == {
        "loss.gamma": ("grid", [0.0, 0.4]),
        "run.batch_size": ("randint", [2, 4]),
    }


def test_number_of_trials_defaults_to_one_pass_over_a_grid(job, tmp_path):
    from ray_jobs.tune import resolve

    assert resolve(tune_config(job, tmp_path)).num_samples == 8
    grid = resolve(tune_config(job, tmp_path, "space.loss.gamma={grid: [0.0, 0.4]}"))
    assert grid.num_samples == 1
    assert resolve(tune_config(job, tmp_path, "num_samples=3")).num_samples == 3


@pytest.mark.parametrize("recipe", ["tune_sample.yaml", "tune_div2k.yaml"])
def test_recipes_load_with_a_valid_space(recipe):
    from ray_jobs.tune import check_space_keys, resolve, search_space

    path = Path(__file__).resolve().parents[2] / "ray_jobs" / "recipes" / recipe
    cfg = resolve(load_config(TuneJobConfig, path))
    space = search_space(cfg)
    check_space_keys(space, cfg.job)
    assert cfg.strategy == "pareto" and set(space) == {"loss.gamma", "optim.lr"}
    assert cfg.job.loss.nima_checkpoint is not None  # the NIMA objective needs a scorer


def test_empty_space_is_refused(job, tmp_path):
    from ray_jobs.tune import run_tune

    cfg = tune_config(job, tmp_path, "space.loss.gamma=null", "space.optim.lr=null")
    with pytest.raises(ValueError, match="empty search space"):
        run_tune(cfg)
    assert not (tmp_path / "tune").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("space.loss.gama={uniform: [0, 1]}", r"unknown config key 'loss.gama'; did you mean 'loss.gamma'"),
        ("space.optimiser.lr={uniform: [0, 1]}", r"unknown config key 'optimiser'"),
        ("space.run.batch_size={uniform: [2, 8]}", r"'run.batch_size'.*expected int, got float"),
        ("space.data.task={choice: [sr, denoise]}", r"'data.task'.*got str 'denoise'"),
        ("space.run.name={choice: [a, b]}", r"'run.name' is set by the sweep"),
        ("space.tracking.register={choice: [true]}", r"'tracking.register' is set by the sweep"),
        ("space.loss.gamma={normal: [0, 1]}", r"unknown distribution 'normal'"),
        ("space.loss.gamma={uniform: [1, 0]}", r"uniform needs low < high"),
        ("space.optim.lr={loguniform: [0, 1e-3]}", r"loguniform needs low > 0"),
        ("space.loss.gamma={choice: []}", r"choice needs a non-empty list"),
        ("space.loss.gamma=0.4", r"expected one of .*fixed values belong under job"),
    ],
)  # fmt: skip
def test_bad_space_keys_and_distributions_are_named(job, tmp_path, override, message):
    from ray_jobs.tune import run_tune

    with pytest.raises(ValueError, match=message):
        run_tune(tune_config(job, tmp_path, override))


def test_objectives_no_trial_reports_are_refused(sample_data, tmp_path, mlflow_uri):
    from ray_jobs.tune import run_tune

    no_scorer = tiny_enhancer(sample_data, tmp_path, mlflow_uri)  # gamma 0, no NIMA checkpoint
    only_lr = ("space.loss.gamma=null",)
    with pytest.raises(ValueError, match=r"'nima' \(val_nima_mean\) is reported by no trial"):
        run_tune(tune_config(no_scorer, tmp_path, *only_lr, "objective=nima"))
    with pytest.raises(ValueError, match=r"'nima' \(val_nima_mean\) is reported by no trial"):
        run_tune(tune_config(no_scorer, tmp_path, *only_lr, "objective={psnr: 1, nima: 0.5}"))
    with pytest.raises(ValueError, match=r"'nima' \(val_nima_mean\) is reported by no trial"):
        run_tune(tune_config(no_scorer, tmp_path, *only_lr, "strategy=pareto"))
    with pytest.raises(ValueError, match="unknown objective 'sharpness'"):
        run_tune(tune_config(no_scorer, tmp_path, *only_lr, "objective=sharpness"))
    # Sampling gamma > 0 needs a scorer too: the sweep names the trial settings that would fail.
    with pytest.raises(
        ValueError, match=r"a trial with loss.gamma=1.0.*needs loss.nima_checkpoint"
    ):
        run_tune(tune_config(no_scorer, tmp_path))


def test_strategy_specific_space_checks(job, tmp_path):
    from ray_jobs.tune import run_tune

    with pytest.raises(ValueError, match=r"strategy 'grid' needs \{grid.*\['optim.lr'\]"):
        run_tune(tune_config(job, tmp_path, "strategy=grid", "space.loss.gamma={grid: [0, 1]}"))
    with pytest.raises(ValueError, match=r"Optuna, which takes no grid values: \['loss.gamma'\]"):
        run_tune(tune_config(job, tmp_path, "strategy=pareto", "space.loss.gamma={grid: [0, 1]}"))
    with pytest.raises(ValueError, match="two different metrics"):
        run_tune(
            tune_config(job, tmp_path, "strategy=pareto", "pareto_objectives=[psnr, val_psnr_y]")
        )
    with pytest.raises(ValueError, match=r"asha_grace_epochs \(3\) exceeds job.run.epochs \(2\)"):
        run_tune(tune_config(job, tmp_path, "asha_grace_epochs=3"))


def test_rerun_with_other_settings_is_refused(job, tmp_path):
    import yaml

    from nie_core.config import config_to_dict
    from ray_jobs.tune import SWEEP_FILE, resolve, run_tune

    first = resolve(tune_config(job, tmp_path, "name=s1", "num_samples=4"))
    sweep_dir = tmp_path / "tune" / "s1"
    sweep_dir.mkdir(parents=True)
    (sweep_dir / SWEEP_FILE).write_text(yaml.safe_dump(config_to_dict(first)))
    with pytest.raises(ValueError, match=r"started with other settings \(changed: num_samples\)"):
        run_tune(tune_config(job, tmp_path, "name=s1", "num_samples=6"))


def test_cli_reports_a_bad_space_in_one_line(sample_data, tmp_path, capsys):
    from nie_cli.main import main

    status = main(["tune", f"job.data.root={sample_data['div2k']}", "space.loss.gamma=null",
                   "space.optim.lr=null", f"storage_path={tmp_path}"])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("nie tune: error: empty search space")


def test_asha_decisions_are_written_for_the_trials_to_carry_out(tmp_path):
    """ASHA's rule, but Tune is always told to continue; each trial reads its decision file and
    stops itself. A trial that reached the last epoch is never stopped."""
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from ray_jobs.tune import CooperativeASHA

    asha = CooperativeASHA(
        str(tmp_path), max_t=4, time_attr="epoch", metric="objective", mode="max",
        grace_period=1, reduction_factor=2,
    )  # fmt: skip
    a, b, c = (SimpleNamespace(trial_id=name) for name in "abc")
    for trial in (a, b, c):
        asha.on_trial_add(None, trial)

    def report(trial, epoch: int, objective: float) -> str:
        answer = asha.on_trial_result(None, trial, {"epoch": epoch, "objective": objective})
        assert answer == TrialScheduler.CONTINUE
        return (tmp_path / f"trial_{trial.trial_id}" / f"epoch_{epoch}").read_text()

    assert report(a, 1, 30.0) == "continue"  # the first at a rung sets the bar
    assert report(b, 1, 20.0) == "stop"  # below the rung's median
    assert report(c, 1, 40.0) == "continue"
    assert report(a, 2, 31.0) == "continue"
    assert report(c, 2, 29.0) == "stop"
    assert report(a, 4, 32.0) == "continue"
    assert report(c, 4, 1.0) == "continue"  # worst at the top rung, but already done


# --------------------------------------------------------------------------- plots, no Ray


def test_plots_accept_rows_dataframes_and_csv_cells(tmp_path):
    import pandas as pd

    rows = [
        {"trial": "a", "loss.gamma": 0.0, "val_psnr_y": 30.0, "val_nima_mean": 4.0},
        {"trial": "b", "loss.gamma": 0.4, "val_psnr_y": 29.0, "val_nima_mean": 5.0},
        {"trial": "c", "loss.gamma": 0.4, "val_psnr_y": 28.0, "val_nima_mean": 4.5},
        {"trial": "d", "loss.gamma": 0.8, "val_psnr_y": None, "val_nima_mean": 6.0},
    ]
    pareto = plot_pareto(rows, tmp_path / "p.png", label_by="trial")
    by_gamma = plot_metric_by_param(pd.DataFrame(rows), tmp_path / "g.png", reference=31.0)
    # A table read back from CSV: numbers as numbers, the front flag as text.
    csv_rows = [dict(r, on_front=str(r["trial"] in "ab")) for r in rows[:3]]
    marked = plot_pareto(csv_rows, tmp_path / "sub" / "m.png", front_by="on_front")
    for path in (pareto, by_gamma, marked):
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    with pytest.raises(ValueError, match="no row has numeric values of both 'val_psnr_y' and 'x'"):
        plot_pareto(rows, tmp_path / "none.png", y="x")
    with pytest.raises(ValueError, match="'optim.lr' and 'val_psnr_y'"):
        plot_metric_by_param(rows, tmp_path / "none.png", param="optim.lr")


# --------------------------------------------------------------------------- sweeps on Ray


def _read_table(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _child_runs(uri: str, parent_id: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_run(parent_id).info.experiment_id
    return client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}'")


@pytest.mark.ray
@pytest.mark.slow
def test_pareto_sweep_resumes_without_rerunning_finished_trials(
    ray_cluster, sample_data, trained_nima, tmp_path, mlflow_uri
):
    """Four Optuna trials (two at a time, each 2 DDP workers); the first trial to start crashes
    once in its second epoch. The rerun resumes only that trial, from its epoch-1 checkpoint,
    in the same MLflow run; then the table, both plots and the best config are complete."""
    from mlflow.tracking import MlflowClient

    from ray_jobs.tune import run_tune

    _, nima = trained_nima
    job = tiny_enhancer(
        sample_data, tmp_path, mlflow_uri, f"loss.nima_checkpoint={nima.checkpoint_dir}",
        "run.progress=false", "tracking.log_images=false",
    )  # fmt: skip
    cfg = tune_config(
        job, tmp_path, "name=sweep", "strategy=pareto", "num_samples=4",
        "max_concurrent_trials=2", "objective={psnr: 1.0, nima: 2.0}",
    )  # fmt: skip
    client = MlflowClient(mlflow_uri)

    first = run_tune(cfg, faults=Faults(fail_after_step=4, fail_first_trials=1))
    assert not first.resumed
    assert len(first.errored) == 1 and len(first.rows) == 4
    crashed = first.errored[0]
    assert sorted(r["status"] for r in first.rows) == ["ERROR", "FINISHED", "FINISHED", "FINISHED"]
    assert client.get_run(first.mlflow_run_id).info.status == "FAILED"
    done_before = {r["trial"]: r for r in first.rows if r["status"] == "FINISHED"}

    second = run_tune(cfg)  # the same command again
    assert second.resumed and second.errored == []
    assert second.mlflow_run_id == first.mlflow_run_id
    rows = {r["trial"]: r for r in second.rows}
    assert set(rows) == set(done_before) | {crashed}
    assert all(r["status"] == "FINISHED" and r["epochs"] == 2 for r in rows.values())
    for trial, before in done_before.items():  # not run again: identical results
        assert rows[trial]["objective"] == before["objective"]
        assert rows[trial]["mlflow_run_id"] == before["mlflow_run_id"]

    # One child run per trial, no duplicates; per-epoch metrics; the crashed trial went on
    # from step 3 (its epoch-1 checkpoint) in the same run.
    children = _child_runs(mlflow_uri, second.mlflow_run_id)
    assert sorted(c.info.run_name for c in children) == sorted(rows)
    assert all(c.info.status == "FINISHED" for c in children)
    for child in children:
        losses = client.get_metric_history(child.info.run_id, "train_loss")
        assert len(losses) == 2, child.info.run_name
        assert "loss.gamma" in child.data.params and "optim.lr" in child.data.params
    resumed_run = rows[crashed]["mlflow_run_id"]
    steps = [m.value for m in client.get_metric_history(resumed_run, "resumed_from_step")]
    assert sorted(steps) == [0, 3]

    # The table: sampled params inside the space, the objective as configured, the front.
    table = _read_table(second.table)
    assert len(table) == 4
    for row in table:
        assert 0.0 <= float(row["loss.gamma"]) <= 1.0
        assert 1e-5 <= float(row["optim.lr"]) <= 1e-3
        psnr, nima_mean = float(row["val_psnr_y"]), float(row["val_nima_mean"])
        assert 1.0 <= nima_mean <= 10.0
        assert math.isclose(float(row["objective"]), psnr + 2.0 * nima_mean, rel_tol=1e-9)
    points = [(float(r["val_psnr_y"]), float(r["val_nima_mean"])) for r in table]
    assert [r["on_front"] == "True" for r in table] == pareto_mask(points)
    assert sorted(second.front) == sorted(r["trial"] for r in table if r["on_front"] == "True")

    # The best config loads as an enhancer job with the best trial's params.
    best = max(second.rows, key=lambda r: r["objective"])
    assert second.best_trial == best["trial"]
    best_job = load_config(EnhancerJobConfig, second.best_config)
    assert best_job.loss.gamma == pytest.approx(best["loss.gamma"], rel=1e-12)
    assert best_job.optim.lr == pytest.approx(best["optim.lr"], rel=1e-12)
    assert best_job.run.name == "sweep-best"
    assert best_job.model.n_feats == 16 and best_job.tracking.parent_run_id is None

    for path in (second.pareto_plot, second.gamma_plot):
        assert Path(path).read_bytes().startswith(PNG_MAGIC)
    artifacts = {a.path for a in client.list_artifacts(second.mlflow_run_id)}
    assert {"results.csv", "pareto.png", "psnr_by_gamma.png", "best_config.yaml"} <= artifacts
    parent = client.get_run(second.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_finished"] == 4
    assert parent.data.tags["nie.best_trial"] == best["trial"]


@pytest.mark.ray
@pytest.mark.slow
def test_asha_sweep_over_a_gamma_grid(ray_cluster, sample_data, trained_nima, tmp_path, mlflow_uri):
    """ASHA on a weighted objective over four gamma values (one 1-CPU worker per trial): every
    trial finishes or is stopped after the grace epoch, and stopped trials' runs are closed."""
    from mlflow.tracking import MlflowClient

    from ray_jobs.tune import run_tune

    _, nima = trained_nima
    job = tiny_enhancer(
        sample_data, tmp_path, mlflow_uri, f"loss.nima_checkpoint={nima.checkpoint_dir}",
        "scaling.num_workers=1", "scaling.cpus_per_worker=1.0", "run.progress=false",
        "tracking.log_images=false",
    )  # fmt: skip
    gammas = [0.0, 0.25, 0.5, 0.75]
    cfg = tune_config(
        job, tmp_path, "strategy=asha", f"space.loss.gamma={{grid: {gammas}}}",
        "space.optim.lr=null", "objective={psnr: 1.0, nima: 1.0}", "asha_grace_epochs=1",
        "asha_reduction_factor=2",
    )  # fmt: skip
    result = run_tune(cfg)
    assert result.name == "tune-asha-edsr_baseline-x2-sr" and result.errored == []
    assert sorted(r["loss.gamma"] for r in result.rows) == gammas
    client = MlflowClient(mlflow_uri)
    for row in result.rows:
        assert row["status"] in ("FINISHED", "STOPPED")
        assert row["epochs"] == (2 if row["status"] == "FINISHED" else 1)
        expected = row["val_psnr_y"] + row["val_nima_mean"]
        assert row["objective"] == pytest.approx(expected, rel=1e-12)
        run = client.get_run(row["mlflow_run_id"])
        assert run.info.status == ("FINISHED" if row["status"] == "FINISHED" else "KILLED")
    finished = [r for r in result.rows if r["status"] == "FINISHED"]
    assert finished  # the first trial at a rung always goes on
    assert result.best_trial == max(finished, key=lambda r: r["objective"])["trial"]
    best_job = load_config(EnhancerJobConfig, result.best_config)
    assert best_job.loss.gamma in gammas and best_job.scaling.num_workers == 1
    assert Path(result.gamma_plot).read_bytes().startswith(PNG_MAGIC)
    assert Path(result.pareto_plot).read_bytes().startswith(PNG_MAGIC)
