"""ray_jobs.worker pieces that need no Ray cluster."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ray_jobs.fault_injection import Faults
from ray_jobs.worker import LoopConfig, WorkerEnv, all_reduce_sum, unwrap


def test_the_loop_config_goes_to_the_workers_and_back(tmp_path: Path) -> None:
    loop = LoopConfig({"run": {"epochs": 1}}, "abc", "file:///x", tmp_path, Faults(3))
    sent = loop.to_dict()
    assert sent == {"job": {"run": {"epochs": 1}}, "mlflow_run_id": "abc",
                    "tracking_uri": "file:///x", "run_dir": str(tmp_path),
                    "faults": {"fail_after_step": 3, "fail_first_trials": 0,
                               "pause_at_step": None}}  # fmt: skip
    assert LoopConfig.from_dict(sent) == loop


def test_the_fast_path_is_channels_last_and_bf16_only_when_asked() -> None:
    x = torch.rand(2, 3, 4, 4)
    for fast, bf16 in ((False, False), (True, False), (True, True)):
        env = WorkerEnv(rank=0, world_size=1, device=torch.device("cpu"), fast=fast, bf16=bf16)
        with env.autocast():
            assert torch.is_autocast_enabled("cpu") is bf16
        moved = env.to_device(x)
        assert moved.is_contiguous(memory_format=torch.channels_last) is fast
        assert torch.equal(moved, x)


def test_unwrap_and_a_sum_over_one_worker() -> None:
    model = nn.Linear(1, 1)
    assert unwrap(model) is model
    wrapper = nn.Module()
    wrapper.module = model
    assert unwrap(wrapper) is model
    assert all_reduce_sum([1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]
