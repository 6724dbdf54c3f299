"""ray_jobs.epochs: the epoch loop both jobs run, on a tiny model without a Ray cluster
(MLflow logging and Ray Train's report are recorded instead)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ray_jobs.epochs as epochs_module
from nie_core.training import train_step
from ray_jobs.config import RunSettings
from ray_jobs.epochs import EpochLoop
from ray_jobs.fault_injection import NO_FAULTS, Faults
from ray_jobs.progress import Progress
from ray_jobs.worker import LoopConfig, Resumed, WorkerEnv


class Sampler:
    def __init__(self) -> None:
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """What the loop sends to MLflow and to Ray Train."""
    calls: dict[str, list] = {"metrics": [], "artifacts": [], "reports": []}

    def log_metrics(uri: str, run_id: str, metrics: dict, step: int) -> None:
        calls["metrics"].append((step, dict(metrics)))

    def log_artifact(run_id: str, path: str, artifact_path: str) -> None:
        calls["artifacts"].append((path, artifact_path))

    monkeypatch.setattr(epochs_module.tracking, "log_metrics", log_metrics)
    monkeypatch.setattr(
        epochs_module.tracking, "client", lambda uri: SimpleNamespace(log_artifact=log_artifact)
    )
    monkeypatch.setattr(epochs_module, "report", lambda *args: calls["reports"].append(args))
    return calls


def make_loop(tmp_path: Path, faults: Faults = NO_FAULTS, **fields) -> EpochLoop:
    torch.manual_seed(0)
    env = WorkerEnv(rank=0, world_size=1, device=torch.device("cpu"), fast=False)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loop = LoopConfig({"run": {"epochs": 2}}, "run-id", "file:///mlruns", tmp_path, faults)
    return EpochLoop(loop, env, model, optimizer, scheduler, steps_per_epoch=3, batch_size=4,
                     progress=Progress(env, 2, 0), **fields)  # fmt: skip


def data(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(epoch)
    return [(torch.randn(4, 2, generator=generator), torch.randn(4, 1, generator=generator))
            for _ in range(3)]  # fmt: skip


def test_an_epoch_steps_sums_on_the_device_and_steps_the_scheduler(tmp_path, logged) -> None:
    loop = make_loop(tmp_path)
    sampler = Sampler()
    losses: list[torch.Tensor] = []

    def step(batch):
        terms = train_step(loop.model, batch, F.mse_loss, loop.optimizer)
        losses.append(terms["loss"])
        return {"loss": terms["loss"], "twice": 2 * terms["loss"]}

    sums = loop.run_epoch(0, [SimpleNamespace(sampler=sampler), object()], data, step)

    assert sampler.epochs == [0] and loop.global_step == 3
    assert sums == {"loss": float(losses[0] + losses[1] + losses[2]),
                    "twice": float(2 * losses[0] + 2 * losses[1] + 2 * losses[2])}  # fmt: skip
    assert loop.scheduler.get_last_lr() == [0.05] and loop.train_seconds > 0
    assert logged["metrics"] == []  # no mid-epoch validation asked for


def test_mid_epoch_validation_runs_every_n_steps_but_not_at_an_epochs_end(tmp_path, logged) -> None:
    loop = make_loop(tmp_path, validate_every=2)
    step = lambda batch: train_step(loop.model, batch, F.mse_loss, loop.optimizer)  # noqa: E731
    calls = []

    def validate() -> dict[str, float]:
        calls.append(loop.global_step)
        return {"val_x": float(loop.global_step)}

    for epoch in loop.epochs():
        loop.run_epoch(epoch, [], data, step, validate)
    # Steps 1..6: 2 and 4 validate; 6 ends epoch 2, where the job validates anyway.
    assert calls == [2, 4]
    assert logged["metrics"] == [(2, {"val_x": 2.0}), (4, {"val_x": 4.0})]


def test_the_lr_logged_is_the_one_the_epoch_trained_with(tmp_path, logged) -> None:
    """Issue 21 item 7: the scheduler steps at an epoch's end, and the epoch's metrics used to
    read the lr after that (the next epoch's). The lr halves every epoch here: 0.1, then 0.05."""
    loop = make_loop(tmp_path)
    used: list[float] = []

    def step(batch):
        used.append(loop.optimizer.param_groups[0]["lr"])
        return train_step(loop.model, batch, F.mse_loss, loop.optimizer)

    logged_lr = []
    for epoch in loop.epochs():
        loop.run_epoch(epoch, [], data, step)
        logged_lr.append(loop.epoch_metrics(epoch, {}, {})["lr"])
    assert used == [0.1] * 3 + [0.05] * 3
    assert logged_lr == [0.1, 0.05] and loop.scheduler.get_last_lr() == [0.025]


def test_the_injected_fault_crashes_at_its_step_once(tmp_path, logged) -> None:
    loop = make_loop(tmp_path, Faults(fail_after_step=2))
    step = lambda batch: train_step(loop.model, batch, F.mse_loss, loop.optimizer)  # noqa: E731
    with pytest.raises(RuntimeError, match="injected worker failure at step 2"):
        loop.run_epoch(0, [], data, step)
    assert loop.global_step == 2 and (tmp_path / "injected_failure.done").exists()


def test_finishing_an_epoch_prints_logs_and_reports_a_checkpoint(tmp_path, logged, capsys):
    loop = make_loop(tmp_path, global_step=3, resumed_from=3, train_seconds=1.5)
    grid, missing = tmp_path / "grid.png", tmp_path / "none.png"
    grid.write_bytes(b"png")
    metrics = loop.epoch_metrics(1, {"train_loss": 2.0}, {"val_psnr_y": 30.0}, {"extra": 1.0})
    assert list(metrics) == ["train_loss", "val_psnr_y", "lr", "epoch", "global_step",
                             "resumed_from_step", "extra"]  # fmt: skip

    out = loop.finish_epoch(1, metrics, "patches_per_s", {"model_name": "linear"},
                            artifacts={grid: "validation", missing: "validation"})  # fmt: skip

    line = capsys.readouterr().err
    assert line.startswith("[nie] epoch 2/2  train_loss 2  val_psnr_y 30  ")
    assert "steps/s" in line and "samples/s" in line and "ETA 0s" in line
    assert "samples_per_s" not in out and out["patches_per_s"] > 0 and out["steps_per_s"] > 0
    assert out["epoch"] == 2 and out["global_step"] == 3 and out["resumed_from_step"] == 3
    assert logged["metrics"] == [(3, out)]
    assert logged["artifacts"] == [(str(grid), "validation")]
    ((env, reported, state, config),) = logged["reports"]
    assert reported is out and config == {"run": {"epochs": 2}} and env.rank == 0
    assert state["model_name"] == "linear" and state["epoch"] == 2
    assert state["global_step"] == 3 and state["train_seconds"] == 1.5
    assert state["config"] == config and state["metrics"]["train_loss"] == 2.0
    assert torch.equal(state["model"]["weight"], loop.model.weight)
    assert state["optimizer"] == loop.optimizer.state_dict()


def test_start_resumes_and_counts_the_steps(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(epochs_module, "resume", lambda *args: Resumed(1, 7, 3.5))
    made = make_loop(tmp_path)
    run = RunSettings(epochs=3, batch_size=4, steps_per_epoch=2, validate_every_steps=5)
    start = (made.loop, made.env, made.model, made.optimizer, made.scheduler, run)
    loop = EpochLoop.start(*start, available_steps=10, too_large="data")
    assert (loop.steps_per_epoch, loop.batch_size, loop.validate_every) == (2, 4, 5)
    assert (loop.global_step, loop.resumed_from, loop.train_seconds) == (7, 7, 3.5)
    assert loop.epochs() == range(1, 3) and loop.progress.start_epoch == 1
    assert EpochLoop.start(*start[:-1], RunSettings(), 5, "data").steps_per_epoch == 5
    with pytest.raises(ValueError, match=r"^batch_size 4 x 1 workers is larger than the set \(3"):
        EpochLoop.start(*start, available_steps=0, too_large="set (3 items)")
